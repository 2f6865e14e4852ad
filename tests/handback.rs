//! A local `run` (no `--target`) owns its job in the CLI process. Stopped by a signal it must
//! hand the job back; killed outright, its job must still go to a serving node once the
//! lease lapses, whatever the job's recovery policy. Real processes on a real Redis.

mod common;
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::{LEASE_MS, RENEW_MS, spawn_node, wait_for, wait_healthy, wait_terminal};
use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::store::Store;
use serde_json::json;

/// A job whose one executor sleeps `sleep_s` seconds, then reports; recovery as given.
fn slow_bundle(dir: &Path, sleep_s: u32, recovery: &str) -> PathBuf {
    let root = dir.join("slow");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "slow", "entrypoints": ["wait"],
        "nodes": [
            {"node_id": "wait", "agent_type": "executor",
             "config": {"command": format!("sleep {sleep_s}; echo '{{\"slept\": {sleep_s}}}'"),
                        "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [{"from_node": "wait", "to_node": "sink", "message_type": "done"}],
        "policies": {"recovery_mode": recovery}
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

/// `mirror-neuron run <bundle>` in this process's own Redis namespace, logging to `log`.
fn spawn_run(ns: &str, bundle: &Path, dir: &Path, log: &Path) -> tokio::process::Child {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .arg("run")
        .arg(bundle)
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", ns)
        .env("MN_HOME", dir.join("cli-home"))
        .env("MN_TEMP_DIR", dir.join("cli-runs"))
        .env("MN_JOB_LEASE_DURATION_MS", LEASE_MS.to_string())
        .env("MN_JOB_LEASE_RENEW_INTERVAL_MS", RENEW_MS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The job the run submitted (it prints `submitted job <id>`), once its step has started.
async fn job_with_step_running(store: &Store, log: &Path) -> String {
    let job = wait_for(Duration::from_secs(30), "the run to submit", || async {
        let text = std::fs::read_to_string(log).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("submitted job "))
            .map(|id| id.trim().to_string())
    })
    .await;
    wait_for(Duration::from_secs(30), "the step to start", || async {
        let history = store.history(&job, 1, None).await.ok()?;
        history
            .iter()
            .any(|h| {
                matches!(&h.event, Ok(e) if matches!(&e.payload,
                    JobEvent::AgentStepStarted { agent_id, .. } if agent_id == "wait"))
            })
            .then_some(())
    })
    .await;
    job
}

async fn store_in(ns: &str) -> Store {
    let store = common::connect(&common::redis().url, ns).await;
    store.migrate(0).await.unwrap();
    store
}

#[tokio::test]
async fn an_interrupted_run_hands_its_job_back_to_a_serving_node() {
    let dir = tempfile::tempdir().unwrap();
    let ns = common::namespace();
    let store = store_in(&ns).await;
    // `local_restart` is what a local run resolves to anyway: the job would wait for its
    // owner to come back if the run did not hand it back.
    let bundle = slow_bundle(dir.path(), 3, "local_restart");
    let log = dir.path().join("run.log");
    let mut run = spawn_run(&ns, &bundle, dir.path(), &log);
    let job = job_with_step_running(&store, &log).await;

    let pid = run.id().expect("the run is alive") as i32;
    // SAFETY: kill(2) sends a signal to the child this test spawned and still owns.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let sent = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(15), run.wait())
        .await
        .expect("the run exits promptly after SIGINT")
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(sent.elapsed() < Duration::from_secs(10), "{text}");
    assert!(text.contains(&format!("job {job} handed back")), "{text}");
    assert!(
        text.contains(&format!("mirror-neuron job cancel {job}")),
        "{text}"
    );
    // The history says who gave the job up and why; nobody holds its lease now.
    let history = store.history(&job, 1, None).await.unwrap();
    let released = history.iter().find_map(|h| match &h.event {
        Ok(e) => match &e.payload {
            JobEvent::LeaseReleased { owner, reason, .. } => Some((owner.clone(), reason.clone())),
            _ => None,
        },
        Err(_) => None,
    });
    let (owner, reason) = released.expect("a lease_released event");
    assert!(owner.starts_with("local-"), "{owner}");
    assert_eq!(reason.as_deref(), Some("local run interrupted"));
    assert_eq!(store.job_lease_holder(&job).await.unwrap(), None);

    let _node = spawn_node("adopter", &ns, &common::redis().url, dir.path());
    wait_healthy(&store, &["adopter"]).await;
    let end = wait_terminal(&store, &job, Duration::from_secs(60)).await;
    assert_eq!(end, JobStatus::Completed);
}

#[tokio::test]
async fn a_killed_runs_job_is_adopted_whatever_its_recovery_policy() {
    let dir = tempfile::tempdir().unwrap();
    let ns = common::namespace();
    let store = store_in(&ns).await;
    // `manual_recover`: a node owner lost this way would get its job paused for review.
    let bundle = slow_bundle(dir.path(), 2, "manual_recover");
    let log = dir.path().join("run.log");
    let mut run = spawn_run(&ns, &bundle, dir.path(), &log);
    let job = job_with_step_running(&store, &log).await;
    run.kill().await.unwrap(); // SIGKILL: no chance to hand anything back

    let node = spawn_node("adopter", &ns, &common::redis().url, dir.path());
    wait_healthy(&store, &["adopter"]).await;
    let end = wait_terminal(&store, &job, Duration::from_secs(60)).await;
    assert_eq!(end, JobStatus::Completed, "{}", node.log_text());
    let history = store.history(&job, 1, None).await.unwrap();
    assert!(
        !history.iter().any(|h| matches!(&h.event,
            Ok(e) if matches!(&e.payload, JobEvent::JobPaused { .. }))),
        "the job was paused for review instead of adopted"
    );
}
