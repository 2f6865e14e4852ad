//! Each job type end to end: `sysbatch` runs one copy per node and completes when all have
//! finished, `system` gains a copy when a node joins and keeps running, `service` restarts a
//! failing agent and is paused for review when its restarts run out (`batch` is every other
//! test's job).

mod common;
#[path = "common/cluster.rs"]
#[allow(dead_code)]
mod harness;
#[path = "common/history.rs"]
mod history;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use harness::{NodeProc, spawn_node, wait_for, wait_healthy};
use history::check_history;
use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::domain::job::{JobCommand, JobStatus};
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::{commands, local};
use mirror_neuron::store::Store;
use serde_json::{Value, json};

fn bundle(
    dir: &Path,
    name: &str,
    job_type: &str,
    command: &str,
    policies: Value,
) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": name, "type": job_type, "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "probe", "agent_type": "executor",
             "config": {"command": command, "output_message_type": "seen"}},
            {"node_id": "collect", "agent_type": "aggregator", "config": {}}
        ],
        "edges": [
            {"from_node": "start", "to_node": "probe", "message_type": "go"},
            {"from_node": "probe", "to_node": "collect", "message_type": "seen"}
        ],
        "policies": policies,
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

/// Where each copy's steps ran, from the history.
async fn placements(store: &Store, job: &str) -> BTreeMap<String, String> {
    store
        .history(job, 1, None)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| match h.event.ok()?.payload {
            JobEvent::AgentStepStarted {
                agent_id,
                node: Some(n),
                ..
            } => Some((agent_id, n)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sysbatch_job_runs_once_per_node_and_completes_when_all_copies_finished() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let _nodes: Vec<NodeProc> = ["sb-a", "sb-b"]
        .iter()
        .map(|n| spawn_node(n, &ns, &redis.url, dir.path()))
        .collect();
    wait_healthy(&store, &["sb-a", "sb-b"]).await;
    let root = bundle(
        dir.path(),
        "sweep",
        "sysbatch",
        "echo \"{\\\"copy\\\": \\\"$MIRROR_NEURON_AGENT_ID\\\"}\"",
        json!({}),
    );
    let job = local::submit(&store, &load_bundle(&root).unwrap())
        .await
        .unwrap();
    let view = wait_for(
        Duration::from_secs(30),
        "the sysbatch job to finish",
        || async {
            store
                .job_view(&job)
                .await
                .ok()?
                .filter(|v| v.status.is_some_and(|s| s.is_terminal()))
        },
    )
    .await;
    assert_eq!(view.status, Some(JobStatus::Completed), "{:?}", view.result);
    let result = view.result.unwrap();
    assert_eq!(
        result["copies"],
        json!(["probe@sb-a", "probe@sb-b"]),
        "{result}"
    );
    assert_eq!(
        placements(&store, &job).await,
        BTreeMap::from([
            ("probe@sb-a".to_string(), "sb-a".to_string()),
            ("probe@sb-b".to_string(), "sb-b".to_string())
        ])
    );
    // Each copy reported under its own id, and the collector saw both.
    let agents = store.agent_views(&job).await.unwrap();
    let collect = agents.iter().find(|a| a.agent_id == "collect").unwrap();
    assert_eq!(collect.processed, 2);
    check_history(&store, &job, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_job_gains_a_copy_when_a_node_joins_and_keeps_running() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<NodeProc> = ["sy-a", "sy-b"]
        .iter()
        .map(|n| spawn_node(n, &ns, &redis.url, dir.path()))
        .collect();
    wait_healthy(&store, &["sy-a", "sy-b"]).await;
    let root = bundle(
        dir.path(),
        "watch",
        "system",
        "echo '{\"ok\": true}'",
        json!({}),
    );
    let job = local::submit(&store, &load_bundle(&root).unwrap())
        .await
        .unwrap();
    wait_for(Duration::from_secs(30), "a copy on each node", || async {
        (placements(&store, &job).await.len() == 2).then_some(())
    })
    .await;
    nodes.push(spawn_node("sy-c", &ns, &redis.url, dir.path()));
    wait_healthy(&store, &["sy-c"]).await;
    let joined = tokio::time::timeout(
        Duration::from_secs(30),
        wait_for(
            Duration::from_secs(30),
            "a copy on the new node",
            || async {
                let p = placements(&store, &job).await;
                (p.get("probe@sy-c").map(String::as_str) == Some("sy-c")).then_some(())
            },
        ),
    )
    .await;
    if joined.is_err() {
        for h in store.history(&job, 1, None).await.unwrap() {
            if let Ok(e) = h.event {
                eprintln!("{} {:?}", e.seq, e.payload);
            }
        }
        for n in &nodes {
            eprintln!("--- {} ---\n{}", n.name, n.log_text());
        }
        panic!("no copy on the new node");
    }
    wait_for(Duration::from_secs(30), "the new copy to run", || async {
        let agents = store.agent_views(&job).await.ok()?;
        agents
            .iter()
            .any(|a| a.agent_id == "probe@sy-c" && a.processed == 1)
            .then_some(())
    })
    .await;
    let view = store.job_view(&job).await.unwrap().unwrap();
    assert_eq!(
        view.status,
        Some(JobStatus::Running),
        "a system job keeps running"
    );
    commands::execute(
        &store,
        &job,
        &JobCommand::Cancel {
            reason: "test over".into(),
        },
        None,
    )
    .await
    .unwrap();
    check_history(&store, &job, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_agent_keeps_failing_is_restarted_then_paused_for_review() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let _n = spawn_node("sv-a", &ns, &redis.url, dir.path());
    wait_healthy(&store, &["sv-a"]).await;
    let policies = json!({"restart": {"attempts": 2, "delay_ms": 100, "delay_function": "constant", "mode": "fail"}});
    let root = bundle(
        dir.path(),
        "svc",
        "service",
        "echo broken >&2; exit 3",
        policies,
    );
    let job = local::submit(&store, &load_bundle(&root).unwrap())
        .await
        .unwrap();
    let view = wait_for(
        Duration::from_secs(30),
        "the service to be paused",
        || async {
            store
                .job_view(&job)
                .await
                .ok()?
                .filter(|v| v.status == Some(JobStatus::Paused))
        },
    )
    .await;
    assert_eq!(view.status, Some(JobStatus::Paused));
    let events = check_history(&store, &job, false).await;
    let restarts: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.payload {
            JobEvent::AgentRestartScheduled { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(restarts, vec![100, 100]);
    let paused = events.iter().find_map(|e| match &e.payload {
        JobEvent::JobPaused { reason } => reason.clone(),
        _ => None,
    });
    assert!(
        paused
            .as_deref()
            .unwrap_or("")
            .contains("paused for review"),
        "{paused:?}"
    );
}
