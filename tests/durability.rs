//! A job survives the death of its runtime: the next owner resumes it from history, finished
//! agents stay finished, and only the work that was in flight is redone.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::executor::ExecutorPools;
use mirror_neuron::runtime::local;
use mirror_neuron::runtime::owner::{self, OwnerConfig, OwnerExit};
use mirror_neuron::store::Store;
use serde_json::json;

/// router -> step1 (fast) -> step2 (slow) -> sink; each executor appends its name to a log.
fn write_bundle(dir: &Path, log: &Path, slow_secs: u32) -> PathBuf {
    let root = dir.join("bundle");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let env = json!({"MN_TEST_LOG": log.display().to_string()});
    let manifest = json!({
        "manifest_version": "1.0",
        "graph_id": "durable",
        "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "step1", "agent_type": "executor",
             "config": {"command": "echo step1 >> \"$MN_TEST_LOG\"", "environment": env, "output_message_type": "one_done"}},
            {"node_id": "step2", "agent_type": "executor",
             "config": {"command": format!("echo started >> \"${{MN_TEST_LOG%.txt}}.started\"; sleep {slow_secs}; echo step2 >> \"$MN_TEST_LOG\""), "environment": env, "output_message_type": "two_done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [
            {"from_node": "start", "to_node": "step1", "message_type": "go"},
            {"from_node": "step1", "to_node": "step2", "message_type": "one_done"},
            {"from_node": "step2", "to_node": "sink", "message_type": "two_done"}
        ]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

fn cfg(node: &str) -> OwnerConfig {
    OwnerConfig {
        node: node.into(),
        lease_ttl: Duration::from_millis(1000),
        renew_every: Duration::from_millis(200),
        poll_every: Duration::from_millis(50),
        max_batch: 2000,
        temp_root: std::env::temp_dir().join("mn-test-runs"),
        cluster: None,
        health_stable: Duration::ZERO,
    }
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn events(store: &Store, job: &str) -> Vec<JobEvent> {
    store
        .history(job, 1, None)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event.unwrap().payload)
        .collect()
}

/// Waits until step2 is in flight in the history and its process is running its command
/// (killing a shell still starting up proves nothing about the runtime).
async fn wait_for_step2_in_flight(store: &Store, job: &str, log: &Path) {
    let marker = log.with_extension("started");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let started = events(store, job).await.iter().any(
            |e| matches!(e, JobEvent::AgentStepStarted { agent_id, .. } if agent_id == "step2"),
        );
        if started && marker.exists() {
            return;
        }
        assert!(Instant::now() < deadline, "step2 never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs owners named `node` until one finishes the job (the old lease must expire first).
async fn finish_with(store: &Store, job: &str, node: &str) -> OwnerExit {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let pools = Arc::new(ExecutorPools::new(4, []));
        let exit = owner::run(store.clone(), job.to_string(), cfg(node), pools, rx)
            .await
            .unwrap();
        if !matches!(exit, OwnerExit::NotOwner { .. }) {
            return exit;
        }
        assert!(Instant::now() < deadline, "lease never became free");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn check_resumed_history(store: &Store, job: &str, log: &Path) {
    assert_eq!(
        log_lines(log),
        vec!["step1", "step2"],
        "step1 ran once; the killed step2 attempt never finished"
    );
    let history = events(store, job).await;
    let epochs: Vec<u64> = history
        .iter()
        .filter_map(|e| match e {
            JobEvent::LeaseAcquired { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .collect();
    assert_eq!(
        epochs,
        vec![1, 2],
        "the lease changed hands once, with a new epoch"
    );
    let starts = |agent: &str| {
        history
            .iter()
            .filter_map(|e| match e {
                JobEvent::AgentStepStarted {
                    agent_id, attempt, ..
                } if agent_id == agent => Some(*attempt),
                _ => None,
            })
            .collect::<Vec<u32>>()
    };
    assert_eq!(
        starts("step1"),
        vec![1],
        "a finished agent is not run again"
    );
    assert_eq!(
        starts("step2"),
        vec![1, 2],
        "the in-flight step is redone once"
    );
    let finished_step2 = history
        .iter()
        .filter(|e| matches!(e, JobEvent::AgentStepped(step) if step.agent_id == "step2"))
        .count();
    assert_eq!(finished_step2, 1);
    assert_eq!(history.iter().filter(|e| e.is_terminal()).count(), 1);
    assert!(
        history.last().unwrap().is_terminal(),
        "nothing after the terminal event"
    );
}

#[tokio::test]
async fn an_owner_that_dies_mid_step_is_replaced_and_only_in_flight_work_is_redone() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let bundle = load_bundle(&write_bundle(dir.path(), &log, 2)).unwrap();
    let job = local::submit(&store, &bundle).await.unwrap();

    let (_tx, rx) = tokio::sync::watch::channel(false);
    let pools = Arc::new(ExecutorPools::new(4, []));
    let first = tokio::spawn(owner::run(
        store.clone(),
        job.clone(),
        cfg("node-a"),
        pools,
        rx,
    ));
    wait_for_step2_in_flight(&store, &job, &log).await;
    first.abort(); // the owner task dies: no cleanup code of its own runs
    let _ = first.await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        log_lines(&log),
        vec!["step1"],
        "the dead owner's step2 process was killed with it"
    );

    assert_eq!(
        finish_with(&store, &job, "node-b").await,
        OwnerExit::Finished(JobStatus::Completed)
    );
    check_resumed_history(&store, &job, &log).await;
}

#[tokio::test]
async fn a_runtime_killed_with_sigkill_is_recovered_by_another_process() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let bundle_dir = write_bundle(dir.path(), &log, 3);
    let bin = env!("CARGO_BIN_EXE_mirror-neuron");
    let with_env = |cmd: &mut std::process::Command| {
        cmd.env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", store.keys().namespace())
            .env("MN_JOB_LEASE_DURATION_MS", "1000")
            .env("MN_JOB_LEASE_RENEW_INTERVAL_MS", "200")
            .env("MN_TEMP_DIR", dir.path().join("runs"));
    };
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("run")
        .arg(&bundle_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    with_env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let job = loop {
        if let Some(j) = store.job_ids().await.unwrap().pop() {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_for_step2_in_flight(&store, &job, &log).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        log_lines(&log),
        vec!["step1"],
        "step2's shell died with the killed runtime"
    );

    let mut recover = std::process::Command::new(bin);
    recover.args(["job", "recover", &job, "--json"]);
    with_env(&mut recover);
    let out = recover.output().unwrap();
    assert!(
        out.status.success(),
        "recover failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["status"], "completed");
    assert_eq!(view["result"]["agent_id"], "sink");
    check_resumed_history(&store, &job, &log).await;
}

#[tokio::test]
async fn a_serving_node_adopts_a_job_whose_runtime_died() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let bundle = load_bundle(&write_bundle(dir.path(), &log, 2)).unwrap();
    let job = local::submit(&store, &bundle).await.unwrap();
    // A runtime took the job and died before doing anything (its lease runs out in 1 s).
    store
        .acquire_job_lease(&job, "dead-node", 1000)
        .await
        .unwrap();

    let bin = env!("CARGO_BIN_EXE_mirror-neuron");
    let mut serve = std::process::Command::new(bin)
        .arg("serve")
        .env("MN_GRPC_PORT", "0")
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", store.keys().namespace())
        .env("MN_NODE_NAME", "survivor")
        .env("MN_LEADER_SWEEP_INTERVAL_MS", "200")
        .env("MN_TEMP_DIR", dir.path().join("runs"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        if let Some(v) = store
            .job_view(&job)
            .await
            .unwrap()
            .filter(|v| v.status.is_some_and(|s| s.is_terminal()))
        {
            break v;
        }
        assert!(Instant::now() < deadline, "the node never finished the job");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view.status, Some(JobStatus::Completed));
    assert_eq!(view.lease_owner.as_deref(), Some("survivor"));
    assert_eq!(log_lines(&log), vec!["step1", "step2"]);
    // SIGTERM: the node stops cleanly.
    // SAFETY: kill(2) on the pid of a child we spawned.
    unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGTERM) };
    let status = serve.wait().unwrap();
    assert!(status.success(), "serve exits 0 on SIGTERM, got {status:?}");
}
