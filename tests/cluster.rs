//! Several real `serve` processes on loopback sharing one Redis: failover after kill -9 (ten
//! times), a node cut off from Redis by a proxy, the leader killed, and a drain with a
//! deadline. Every job history is run through the history checker.

mod common;
// `spawn_node_env` is for the scheduling tests.
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;
#[path = "common/history.rs"]
mod history;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use harness::{
    LEASE_MS, NodeProc, Proxy, RENEW_MS, fan_out_bundle, spawn_node, wait_for, wait_healthy,
    wait_terminal,
};
use history::check_history;
use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local;
use mirror_neuron::store::{AppendError, Store, seal};

async fn lease_holder(store: &Store, job: &str) -> Option<(String, u64)> {
    store.job_lease_holder(job).await.ok().flatten()
}

/// Checks the history, that the job completed with each of the `n` results counted once, and
/// returns the owners in the order they acquired the lease with their epochs.
async fn check_fan_out(store: &Store, job: &str, n: usize) -> Vec<(String, u64, i64)> {
    let events = check_history(store, job, true).await;
    let mut owners = vec![];
    let mut result = None;
    for e in &events {
        match &e.payload {
            JobEvent::LeaseAcquired { owner, epoch, .. } => {
                owners.push((owner.clone(), *epoch, e.timestamp_ms))
            }
            JobEvent::JobCompleted { result: r } => result = Some(r.clone()),
            _ => {}
        }
    }
    let result = result.unwrap_or_else(|| panic!("{job} did not complete"));
    let result = result.get("output").cloned().unwrap_or(result);
    assert_eq!(result["count"], n, "aggregator count: {result}");
    let workers: BTreeSet<String> = result["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        workers.len(),
        n,
        "every worker's result exactly once: {result}"
    );
    owners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_owner_hands_the_job_over_ten_times_out_of_ten() {
    let redis = common::redis();
    let dir = tempfile::tempdir().unwrap();
    let bundle = load_bundle(&fan_out_bundle(dir.path(), 6, 0.4)).unwrap();
    let mut failovers = vec![];
    for round in 0..10 {
        let store = common::store().await;
        let ns = store.keys().namespace().to_string();
        let mut nodes: Vec<NodeProc> = ["a", "b"]
            .iter()
            .map(|n| spawn_node(&format!("{n}{round}"), &ns, &redis.url, dir.path()))
            .collect();
        wait_healthy(&store, &[&format!("a{round}"), &format!("b{round}")]).await;
        let job = local::submit(&store, &bundle).await.unwrap();
        let (owner, epoch) = wait_for(Duration::from_secs(10), "an owner", || async {
            lease_holder(&store, &job).await
        })
        .await;
        // Kill it mid-job: once some results are in and the rest still run.
        wait_for(Duration::from_secs(10), "progress", || async {
            let v = store.job_view(&job).await.ok()??;
            (v.steps_finished >= 2).then_some(())
        })
        .await;
        let before = store.job_view(&job).await.unwrap().unwrap();
        assert!(
            !before.status.unwrap().is_terminal(),
            "round {round}: killed too late"
        );
        let victim = nodes.iter().position(|n| n.name == owner).unwrap();
        let killed_at = mirror_neuron::runtime::clock::now_ms();
        nodes[victim].kill9();
        let finished = tokio::time::timeout(
            Duration::from_secs(20),
            wait_terminal(&store, &job, Duration::from_secs(20)),
        )
        .await;
        if finished.is_err() {
            for n in &nodes {
                eprintln!("--- {} ---\n{}", n.name, n.log_text());
            }
            eprintln!("view: {:?}", store.job_view(&job).await);
            eprintln!("agents: {:?}", store.agent_views(&job).await);
            eprintln!(
                "nodes: {:?}",
                mirror_neuron::runtime::cluster::overview::nodes(&store, None).await
            );
        }
        let status = wait_terminal(&store, &job, Duration::from_secs(1)).await;
        assert_eq!(status, JobStatus::Completed, "round {round}");
        let owners = check_fan_out(&store, &job, 6).await;
        assert_eq!(owners.first().map(|o| o.0.as_str()), Some(owner.as_str()));
        let (new_owner, new_epoch, took_over_at) = owners.last().cloned().unwrap();
        assert_ne!(
            new_owner, owner,
            "round {round}: history shows the handover"
        );
        assert!(new_epoch > epoch, "the new owner holds a newer epoch");
        failovers.push(Duration::from_millis(
            (took_over_at - killed_at).max(0) as u64
        ));
    }
    failovers.sort();
    eprintln!(
        "failover after kill -9 (lease {LEASE_MS} ms): median {:?}, max {:?}",
        failovers[failovers.len() / 2],
        failovers[failovers.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_stops_acting_and_its_late_writes_are_fenced() {
    if common::skip_on_cluster("a proxy fronts one server; a cluster client learns every node") {
        return;
    }
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("127.0.0.1:{}", redis.port).parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let proxied_url = format!("redis://{}/", proxy.addr);
    // Same load, so the leader assigns by name: "a-cut" gets the job.
    let cut = spawn_node("a-cut", &ns, &proxied_url, dir.path());
    let _ok = spawn_node("b-ok", &ns, &redis.url, dir.path());
    wait_healthy(&store, &["a-cut", "b-ok"]).await;
    let bundle = load_bundle(&fan_out_bundle(dir.path(), 6, 0.4)).unwrap();
    let job = local::submit(&store, &bundle).await.unwrap();
    let (owner, old_epoch) = wait_for(Duration::from_secs(10), "an owner", || async {
        lease_holder(&store, &job).await
    })
    .await;
    assert_eq!(owner, "a-cut");
    wait_for(Duration::from_secs(10), "progress", || async {
        let v = store.job_view(&job).await.ok()??;
        (v.steps_finished >= 2).then_some(())
    })
    .await;

    proxy.cut();
    let status = wait_terminal(&store, &job, Duration::from_secs(20)).await;
    assert_eq!(status, JobStatus::Completed);
    // Keep the cut longer than the lease in any case, then heal.
    tokio::time::sleep(Duration::from_millis(LEASE_MS)).await;
    proxy.heal();
    // The cut node comes back, rejoins, and writes nothing more to the finished job.
    wait_healthy(&store, &["a-cut"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let owners = check_fan_out(&store, &job, 6).await;
    let (last_owner, last_epoch, _) = owners.last().cloned().unwrap();
    assert_eq!(last_owner, "b-ok", "the job finished on the other node");
    assert!(last_epoch > old_epoch);
    let log = cut.log_text();
    assert!(
        log.contains("job lease expired while Redis was unreachable")
            || log.contains("job lease lost")
            || log.contains("append rejected by fencing"),
        "the cut node noticed it lost the job:\n{log}"
    );
    // A write made now with the cut node's epoch is refused by the fenced append.
    let state = store.load_state(&job).await.unwrap();
    let late = seal(
        &job,
        state.seq,
        old_epoch,
        0,
        None,
        None,
        vec![JobEvent::JobResumed],
    );
    match store.append(&job, state.seq, old_epoch, &late).await {
        // A node may take the lease of the finished job once more (and give it back at
        // once, seeing it ended), so the current epoch is the last owner's or newer.
        Err(AppendError::StaleEpoch { writer, current }) => {
            assert_eq!(writer, old_epoch);
            assert!(current >= last_epoch, "{current} < {last_epoch}");
        }
        other => panic!("a stale epoch must be fenced, got {other:?}"),
    }
    check_history(&store, &job, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_leads_within_lease_plus_one_renew_after_the_leader_is_killed() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<NodeProc> = ["l1", "l2", "l3"]
        .iter()
        .map(|n| spawn_node(n, &ns, &redis.url, dir.path()))
        .collect();
    wait_healthy(&store, &["l1", "l2", "l3"]).await;
    let mut handovers = vec![];
    for _ in 0..2 {
        let (leader, epoch) = wait_for(Duration::from_secs(10), "a leader", || async {
            store.leader().await.ok().flatten()
        })
        .await;
        let i = nodes.iter().position(|n| n.name == leader).unwrap();
        let killed_at = Instant::now();
        nodes[i].kill9();
        let (next, next_epoch) = wait_for(Duration::from_secs(10), "a new leader", || async {
            store
                .leader()
                .await
                .ok()
                .flatten()
                .filter(|(n, _)| *n != leader)
        })
        .await;
        let took = killed_at.elapsed();
        handovers.push(took);
        assert!(next_epoch > epoch);
        assert_ne!(next, leader);
        // Polling adds up to 50 ms; process scheduling on a loaded 2-core machine a little more.
        let bound = Duration::from_millis(LEASE_MS + RENEW_MS + 250);
        assert!(
            took <= bound,
            "leader handover took {took:?}, bound {bound:?}"
        );
        nodes.remove(i);
    }
    eprintln!(
        "leader handover after kill -9 (lease {LEASE_MS} ms, renew {RENEW_MS} ms): {handovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_with_a_deadline_moves_work_away_and_undrain_restores_the_node() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let _a = spawn_node("d-a", &ns, &redis.url, dir.path());
    let _b = spawn_node("d-b", &ns, &redis.url, dir.path());
    wait_healthy(&store, &["d-a", "d-b"]).await;
    // Long steps, spread over both nodes; "d-a" owns the job (same load: by name).
    let bundle = load_bundle(&fan_out_bundle(dir.path(), 4, 1.0)).unwrap();
    let job = local::submit(&store, &bundle).await.unwrap();
    wait_for(Duration::from_secs(10), "work on d-a", || async {
        let agents = store.agent_views(&job).await.ok()?;
        agents
            .iter()
            .any(|a| a.node.as_deref() == Some("d-a") && a.inflight_message_id.is_some())
            .then_some(())
    })
    .await;
    let drain = mirror_neuron::runtime::cluster::ops::DrainRequest {
        node: "d-a".into(),
        reason: Some("test".into()),
        deadline_ms: 500,
        dry_run: false,
        ignore_system_jobs: true,
    };
    let drain_started = mirror_neuron::runtime::clock::now_ms();
    let started = mirror_neuron::runtime::cluster::ops::drain(&store, &drain)
        .await
        .unwrap();
    assert_eq!(started["node_status"], "draining");
    let status = wait_terminal(&store, &job, Duration::from_secs(30)).await;
    assert_eq!(status, JobStatus::Completed);
    let events = check_history(&store, &job, true).await;
    // No step was placed on the draining node after the drain began, and its work moved.
    for e in &events {
        if let JobEvent::AgentStepStarted { node: Some(n), .. } = &e.payload
            && e.timestamp_ms > drain_started + 100
        {
            assert_ne!(n, "d-a", "work placed on a draining node at seq {}", e.seq);
        }
    }
    let owners = check_fan_out(&store, &job, 4).await;
    assert_eq!(
        owners.last().map(|o| o.0.as_str()),
        Some("d-b"),
        "the job moved off d-a"
    );
    wait_for(Duration::from_secs(10), "the drain to complete", || async {
        let v = store.node_view("d-a").await.ok()??;
        (v.status().as_str() == "maintenance").then_some(())
    })
    .await;

    // Undrain with mark-eligible: d-a takes work again.
    let v = mirror_neuron::runtime::cluster::ops::undrain(&store, "d-a", None, true)
        .await
        .unwrap();
    assert_eq!(v["scheduling_eligible"], true);
    let job2 = local::submit(
        &store,
        &load_bundle(&fan_out_bundle(dir.path(), 6, 0.2)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        wait_terminal(&store, &job2, Duration::from_secs(30)).await,
        JobStatus::Completed
    );
    let events = check_history(&store, &job2, true).await;
    let on_a = events.iter().any(
        |e| matches!(&e.payload, JobEvent::AgentStepStarted { node: Some(n), .. } if n == "d-a"),
    );
    assert!(on_a, "an undrained node takes work again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_run_steps_from_the_archived_bundle_when_the_folder_is_gone() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let _a = spawn_node("x-a", &ns, &redis.url, dir.path());
    wait_healthy(&store, &["x-a"]).await;
    let root = dir.path().join("elsewhere");
    std::fs::create_dir_all(root.join("payloads/scripts")).unwrap();
    std::fs::write(
        root.join("payloads/scripts/hello.sh"),
        "echo '{\"greeting\": \"from the archive\"}'\n",
    )
    .unwrap();
    let manifest = serde_json::json!({
        "manifest_version": "1.0", "graph_id": "archived", "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "hello", "agent_type": "executor",
             "config": {"upload_path": "scripts/hello.sh", "command": ["bash", "hello.sh"],
                        "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
        ],
        "edges": [
            {"from_node": "start", "to_node": "hello", "message_type": "go"},
            {"from_node": "hello", "to_node": "sink", "message_type": "done"}
        ]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    let bundle = load_bundle(&root).unwrap();
    let job = local::submit(&store, &bundle).await.unwrap();
    // As if the job had been submitted from another machine: the folder is not here.
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(
        wait_terminal(&store, &job, Duration::from_secs(20)).await,
        JobStatus::Completed
    );
    let events = check_history(&store, &job, true).await;
    let result = events
        .iter()
        .find_map(|e| match &e.payload {
            JobEvent::JobCompleted { result } => Some(result.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(result.contains("from the archive"), "{result}");
}

/// Runs the CLI against the test namespace and parses its JSON output.
async fn cli_json(ns: &str, args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(args)
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", ns)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_commands_list_cordon_and_restore_a_node() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let _n = spawn_node("cli-a", &ns, &redis.url, dir.path());
    wait_healthy(&store, &["cli-a"]).await;

    let list = cli_json(&ns, &["node", "list", "--json"]).await;
    let row = &list.as_array().unwrap()[0];
    assert_eq!(row["name"], "cli-a");
    assert_eq!(row["status"], "healthy");
    assert!(row["cpu_cores"].as_u64().unwrap() >= 1);
    assert!(row["memory_mb"].as_u64().unwrap() > 0);
    assert_eq!(row["gpu_count"], 0);

    let dry = cli_json(&ns, &["node", "drain", "cli-a", "--dry-run", "--json"]).await;
    assert_eq!(dry["status"], "dry_run");
    assert_eq!(
        store
            .node_view("cli-a")
            .await
            .unwrap()
            .unwrap()
            .status()
            .as_str(),
        "healthy"
    );

    let m = cli_json(
        &ns,
        &[
            "node",
            "maintenance",
            "cli-a",
            "--enable",
            "--reason",
            "disk",
            "--json",
        ],
    )
    .await;
    assert_eq!(
        (m["status"].as_str(), m["scheduling_eligible"].as_bool()),
        (Some("maintenance"), Some(false))
    );
    let m = cli_json(
        &ns,
        &["node", "maintenance", "cli-a", "--disable", "--json"],
    )
    .await;
    assert_eq!(m["status"], "healthy");

    let d = cli_json(
        &ns,
        &[
            "node",
            "drain",
            "cli-a",
            "--deadline",
            "1s",
            "--wait",
            "--json",
        ],
    )
    .await;
    assert_eq!(d["drain"]["status"], "complete", "{d}");
    assert_eq!(d["status"], "maintenance");
    let u = cli_json(
        &ns,
        &["node", "undrain", "cli-a", "--mark-eligible", "--json"],
    )
    .await;
    assert_eq!(
        (u["status"].as_str(), u["scheduling_eligible"].as_bool()),
        (Some("healthy"), Some(true))
    );

    let unknown = tokio::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(["node", "maintenance", "ghost", "--enable"])
        .env("MN_REDIS_URL", &redis.url)
        .env("MN_REDIS_NAMESPACE", &ns)
        .output()
        .await
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("node ghost is not known"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_due_when_the_leader_is_killed_dispatch_exactly_once() {
    use mirror_neuron::runtime::schedules::create;
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<NodeProc> = ["s1", "s2", "s3"]
        .iter()
        .map(|n| spawn_node(n, &ns, &redis.url, dir.path()))
        .collect();
    wait_healthy(&store, &["s1", "s2", "s3"]).await;
    let (leader, _) = wait_for(Duration::from_secs(10), "a leader", || async {
        store.leader().await.ok().flatten()
    })
    .await;
    let bundle = load_bundle(&fan_out_bundle(dir.path(), 1, 0.1)).unwrap();
    // Five schedules due around the moment the leader dies (100 ms apart).
    let mut schedules = vec![];
    for i in 0..5u64 {
        let s = create(
            &store,
            &bundle,
            &serde_json::json!({"kind": "delayed", "delay_ms": 2_000 + 100 * i}),
            serde_json::json!({}),
        )
        .await
        .unwrap();
        schedules.push(s.schedule_id);
    }
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let i = nodes.iter().position(|n| n.name == leader).unwrap();
    nodes[i].kill9();

    for id in &schedules {
        let job = wait_for(Duration::from_secs(20), "the scheduled job", || async {
            let view = store.schedule_view(id).await.ok()??;
            (view["status"] == "completed").then(|| view["job_id"].as_str().map(String::from))?
        })
        .await;
        assert_eq!(
            wait_terminal(&store, &job, Duration::from_secs(20)).await,
            JobStatus::Completed
        );
        let view = store.schedule_view(id).await.unwrap().unwrap();
        assert_eq!(
            view["dispatches"].as_array().map(Vec::len),
            Some(1),
            "{view}"
        );
        let started: Vec<String> = store
            .list_jobs(&mirror_neuron::store::JobListFilter {
                status: None,
                limit: 0,
            })
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.job_id)
            .filter(|j| j.starts_with(id.as_str()))
            .collect();
        assert_eq!(
            started,
            vec![job.clone()],
            "schedule {id} started exactly one job"
        );
        check_history(&store, &job, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sweep_names_the_node_that_would_take_an_orphaned_job() {
    use mirror_neuron::domain::cluster::Action;
    use mirror_neuron::runtime::cluster::{ClusterConfig, Membership, join, what_to_do};
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let me = Membership {
        node: "r-a".into(),
        incarnation: "i1".into(),
        inventory: Default::default(),
    };
    join(&store, &me, &ClusterConfig::from_env().unwrap())
        .await
        .unwrap();
    let job = local::submit(
        &store,
        &load_bundle(&fan_out_bundle(dir.path(), 1, 0.1)).unwrap(),
    )
    .await
    .unwrap();
    // The leader reads views: let a projection worker build them.
    let projectors = mirror_neuron::runtime::Projectors::start(&store, "t", 1);
    wait_for(Duration::from_secs(10), "the job's view", || async {
        store.job_view(&job).await.ok()?
    })
    .await;
    projectors.stop().await;
    let actions = what_to_do(&store).await.unwrap();
    assert!(
        actions.contains(&Action::Assign {
            job_id: job.clone(),
            node: "r-a".into()
        }),
        "{actions:?}"
    );
    // Nothing was done: the job still has no owner.
    assert_eq!(store.job_lease_holder(&job).await.unwrap(), None);
}
