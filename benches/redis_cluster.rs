//! One Redis against a 3-master Redis Cluster on loopback, in the same run.
//!
//! `cargo bench --bench redis_cluster` starts both (AOF everysec, noeviction; the cluster's
//! masters on this same machine) and measures on each:
//! - fenced single-event appends, 64 concurrent jobs (events/s);
//! - fenced batched appends (100 per call), 64 concurrent jobs (events/s);
//! - job submissions, 32 concurrent submitters (jobs/s; each is a validated bundle plus one
//!   fenced append);
//! - projection catch-up on a full feed (events/s; 2 workers on one Redis, one per shard on
//!   the cluster).
//!
//! and prints cluster/single ratios. Every process shares this machine's cores, so the ratio
//! shows the cost or gain of the cluster's routing here, not what three machines would do.
//! `MN_BENCH_SCALE` (default 1.0) scales the counts.

use std::path::Path;
use std::time::{Duration, Instant};

use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::{Projectors, local, wait_projections_caught_up};
use mirror_neuron::store::{Store, Topology};

mod support;

use support::appends::{fenced, rate};

/// `submitters` tasks each submit `each` copies of the research_flow example.
async fn submissions(store: &Store, submitters: u64, each: u64) -> f64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/research_flow");
    let bundle = load_bundle(&path).unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..submitters {
        let (store, bundle) = (store.clone(), bundle.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                local::submit(&store, &bundle).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    rate(submitters * each, start.elapsed())
}

/// Events applied per second by projection workers catching up on `jobs` x `per_job` events.
async fn projection(store: &Store, workers: usize, jobs: u64, per_job: u64) -> f64 {
    fenced(store, "p", jobs, per_job, 100).await;
    let start = Instant::now();
    let p = Projectors::start(store, "bench", workers);
    wait_projections_caught_up(store, Duration::from_secs(600))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    p.stop().await;
    rate(jobs * (per_job + 1), elapsed)
}

struct Figures {
    single: f64,
    batched: f64,
    submits: f64,
    projection: f64,
}

async fn measure(topology: &Topology, scale: f64, workers: usize) -> Figures {
    let n = |x: f64| (x * scale).max(1.0) as u64;
    let open = |ns: &'static str| async move {
        let store = Store::connect_to(topology, ns).await.unwrap();
        store.migrate(0).await.unwrap();
        store
    };
    let store = open("bench").await;
    let single = fenced(&store, "s64", 64, n(300.0), 1).await;
    let batched = fenced(&store, "b", 64, n(2_000.0).div_ceil(100) * 100, 100).await;
    let submits = submissions(&store, 32, n(20.0)).await;
    let proj = open("proj").await;
    let projection = projection(&proj, workers, 200, n(300.0).div_ceil(100) * 100).await;
    Figures {
        single,
        batched,
        submits,
        projection,
    }
}

#[tokio::main]
async fn main() {
    let scale: f64 = std::env::var("MN_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let one = support::start_redis();
    let masters = support::start_cluster(3);
    let shards = 8;
    let cluster = Topology::Cluster {
        seeds: masters.iter().map(|m| m.url.clone()).collect(),
        shards,
    };
    let a = measure(
        &Topology::Single {
            url: one.url.clone(),
        },
        scale,
        2,
    )
    .await;
    let b = measure(&cluster, scale, shards as usize).await;

    println!("redis cluster benchmark (this machine; AOF everysec; all on loopback)");
    println!("                                       one redis   3-master cluster   ratio");
    let row = |name: &str, unit: &str, x: f64, y: f64| {
        println!(
            "  {name:<34} {x:>9.0} {unit:<6} {y:>9.0} {unit:<6}  {:.2}x",
            y / x
        )
    };
    row("fenced single-event, 64 jobs", "ev/s", a.single, b.single);
    row(
        "fenced batched (100), 64 jobs",
        "ev/s",
        a.batched,
        b.batched,
    );
    row(
        "job submissions, 32 submitters",
        "jobs/s",
        a.submits,
        b.submits,
    );
    row("projection catch-up", "ev/s", a.projection, b.projection);
    println!(
        "cluster: {shards} shards over 3 masters; projection workers: 2 on one redis, 1 per shard on the cluster"
    );
}
