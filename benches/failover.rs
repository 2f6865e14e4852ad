//! Failover figures: the time from `kill -9` of a job's owner until another node holds the
//! job (its `lease_acquired` event), median and max over 10 runs, and the leader handover time
//! after the leader is killed, each for two lease durations. Several real `serve` processes
//! on loopback share one private redis-server.
//!
//! `cargo bench --bench failover`

#[path = "../tests/common/cluster.rs"]
#[allow(dead_code)]
mod harness;
mod support;

use std::time::{Duration, Instant};

use harness::{NodeProc, fan_out_bundle, spawn_node_with, wait_for, wait_healthy};
use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::clock::now_ms;
use mirror_neuron::runtime::local;
use mirror_neuron::store::Store;

const RUNS: usize = 10;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

async fn job_failover(url: &str, dir: &std::path::Path, lease: u64) -> Vec<Duration> {
    let bundle = load_bundle(&fan_out_bundle(dir, 6, 0.3)).unwrap();
    let mut out = vec![];
    for run in 0..RUNS {
        let ns = format!("bench-failover-{lease}-{run}-{}", std::process::id());
        let store = Store::connect(url, &ns).await.unwrap();
        let names: Vec<String> = ["a", "b"]
            .iter()
            .map(|n| format!("{n}{lease}-{run}"))
            .collect();
        let mut nodes: Vec<NodeProc> = names
            .iter()
            .map(|n| spawn_node_with(n, &ns, url, dir, lease, lease / 5))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        wait_healthy(&store, &names).await;
        let job = local::submit(&store, &bundle).await.unwrap();
        let (owner, _) = wait_for(Duration::from_secs(10), "an owner", || async {
            store.job_lease_holder(&job).await.ok().flatten()
        })
        .await;
        wait_for(Duration::from_secs(10), "progress", || async {
            let v = store.job_view(&job).await.ok()??;
            (v.steps_finished >= 2).then_some(())
        })
        .await;
        let killed = now_ms();
        nodes.retain_mut(|n| {
            if n.name == owner {
                n.kill9();
                false
            } else {
                true
            }
        });
        let took_over = wait_for(Duration::from_secs(60), "a new owner", || async {
            let history = store.history(&job, 1, None).await.ok()?;
            history.iter().rev().find_map(|h| match &h.event {
                Ok(e) => match &e.payload {
                    JobEvent::LeaseAcquired { owner: o, .. } if *o != owner => Some(e.timestamp_ms),
                    _ => None,
                },
                Err(_) => None,
            })
        })
        .await;
        out.push(Duration::from_millis((took_over - killed).max(0) as u64));
    }
    out
}

async fn leader_handover(url: &str, dir: &std::path::Path, lease: u64) -> Vec<Duration> {
    let ns = format!("bench-leader-{lease}-{}", std::process::id());
    let store = Store::connect(url, &ns).await.unwrap();
    let names: Vec<String> = (0..6).map(|i| format!("l{lease}-{i}")).collect();
    let mut nodes: Vec<NodeProc> = names
        .iter()
        .map(|n| spawn_node_with(n, &ns, url, dir, lease, lease / 5))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_healthy(&store, &names).await;
    let mut out = vec![];
    for _ in 0..5 {
        let (leader, _) = wait_for(Duration::from_secs(30), "a leader", || async {
            store.leader().await.ok().flatten()
        })
        .await;
        let killed = Instant::now();
        nodes.retain_mut(|n| {
            if n.name == leader {
                n.kill9();
                false
            } else {
                true
            }
        });
        loop {
            if let Ok(Some((l, _))) = store.leader().await
                && l != leader
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        out.push(killed.elapsed());
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let redis = support::start_redis();
    let dir = tempfile::tempdir().unwrap();
    println!("failover after kill -9 ({RUNS} runs each; renew and heartbeat every lease/5)");
    for lease in [1_000u64, 3_000] {
        let (median, max) = stats(job_failover(&redis.url, dir.path(), lease).await);
        println!(
            "  job lease {lease} ms: takeover median {} ms ({:.2} x lease), max {} ms ({:.2} x lease)",
            median.as_millis(),
            median.as_millis() as f64 / lease as f64,
            max.as_millis(),
            max.as_millis() as f64 / lease as f64
        );
        let (median, max) = stats(leader_handover(&redis.url, dir.path(), lease).await);
        println!(
            "  leader lease {lease} ms: handover median {} ms ({:.2} x lease), max {} ms ({:.2} x lease)",
            median.as_millis(),
            median.as_millis() as f64 / lease as f64,
            max.as_millis(),
            max.as_millis() as f64 / lease as f64
        );
    }
}
