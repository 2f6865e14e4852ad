//! Bad work gets a clear error in the job's result and events, and other jobs keep running.

mod common;

use std::path::Path;
use std::time::Duration;

use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local::{self, RunReport};
use mirror_neuron::store::Store;
use serde_json::{Value, json};

/// One executor running `command` with extra `config`, feeding a completing aggregator.
fn bundle(dir: &Path, name: &str, command: &str, config: Value) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let mut cfg = json!({"command": command, "output_message_type": "out"});
    for (k, v) in config.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let manifest = json!({
        "manifest_version": "1.0",
        "graph_id": name,
        "entrypoints": ["work"],
        "nodes": [
            {"node_id": "work", "agent_type": "executor", "config": cfg},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [{"from_node": "work", "to_node": "sink", "message_type": "out"}],
        // These tests are about how one failure is reported; restarts have their own tests.
        "policies": {"restart": {"enabled": false}}
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

async fn run(store: &Store, root: &Path) -> (String, RunReport) {
    let b = load_bundle(root).unwrap();
    let job = local::submit(store, &b).await.unwrap();
    let report = local::run_job(
        store,
        &job,
        &format!("n-{job}"),
        Some(Duration::from_secs(60)),
        |_| {},
    )
    .await
    .unwrap();
    (job, report)
}

#[tokio::test]
async fn a_hanging_command_times_out_while_another_job_completes() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let hang = bundle(
        dir.path(),
        "hang",
        "sleep 600",
        json!({"timeout_seconds": 1}),
    );
    let fine = bundle(dir.path(), "fine", "echo fine", json!({}));
    let (hung, ok) = tokio::join!(run(&store, &hang), run(&store, &fine));

    let (job, report) = hung;
    let view = report.view.unwrap();
    assert_eq!(view.status, Some(JobStatus::Failed));
    let result = view.result.unwrap();
    assert_eq!(result["agent_id"], "work");
    let reason = result["reason"].as_str().unwrap();
    assert!(reason.contains("timed out"), "{result}");
    let failed = store
        .history(&job, 1, None)
        .await
        .unwrap()
        .into_iter()
        .any(|h| {
            matches!(
                h.event.unwrap().payload,
                JobEvent::AgentStepFailed {
                    will_retry: false,
                    ..
                }
            )
        });
    assert!(failed, "the failure is an event too");

    let view = ok.1.view.unwrap();
    assert_eq!(
        view.status,
        Some(JobStatus::Completed),
        "the other job was not disturbed"
    );
}

#[tokio::test]
async fn a_command_printing_hundreds_of_megabytes_is_capped() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let flood = bundle(
        dir.path(),
        "flood",
        "yes | head -c 300000000",
        json!({"max_output_bytes": 65536}),
    );
    let (_, report) = run(&store, &flood).await;
    let view = report.view.unwrap();
    assert_eq!(view.status, Some(JobStatus::Completed));
    let output = &view.result.unwrap()["output"]["last_message"]["sandbox"];
    // At 64 KiB the kept stdout is past the inline limit, so it is a blob reference.
    let kept = match &output["stdout"] {
        Value::String(s) => s.len() as u64,
        reference => reference["$blob"]["size"]
            .as_u64()
            .unwrap_or_else(|| panic!("stdout is text or a blob reference: {reference}")),
    };
    assert!(
        kept <= 65536 + 200,
        "stdout kept to the cap, got {kept} bytes"
    );
    assert_eq!(output["exit_code"], 0);
}

#[tokio::test]
async fn malformed_structured_output_fails_the_job_with_the_reason() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = bundle(
        dir.path(),
        "bad",
        r#"echo '{"emit_messages": "not a list"}'"#,
        json!({}),
    );
    let (_, report) = run(&store, &bad).await;
    let view = report.view.unwrap();
    assert_eq!(view.status, Some(JobStatus::Failed));
    let reason = view.result.unwrap()["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("emit_messages"), "{reason}");
}

#[tokio::test]
async fn a_missing_program_is_a_clear_failure() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("missing");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "missing", "entrypoints": ["work"],
        "nodes": [{"node_id": "work", "agent_type": "executor", "config": {"command": ["/nonexistent/tool", "x"]}}],
        "edges": []
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    let (_, report) = run(&store, &root).await;
    let view = report.view.unwrap();
    assert_eq!(view.status, Some(JobStatus::Failed));
    let reason = view.result.unwrap()["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("/nonexistent/tool"), "{reason}");
}

#[tokio::test]
async fn an_unroutable_message_becomes_a_dead_letter_with_its_reason() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dl");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "dl", "entrypoints": ["r"],
        "nodes": [
            {"node_id": "r", "agent_type": "router", "config": {"emit_type": "nowhere"}},
            {"node_id": "s", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [{"from_node": "r", "to_node": "s", "message_type": "somewhere"}],
        "initial_inputs": {"r": [{"a": 1}, {"a": 2}]}
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    let b = load_bundle(&root).unwrap();
    let job = local::submit(&store, &b).await.unwrap();
    let report = local::run_job(&store, &job, "n", Some(Duration::from_secs(3)), |_| {})
        .await
        .unwrap();
    // Nothing can complete it: once both messages are dead letters it fails, naming them,
    // instead of staying `running` until someone notices.
    assert!(!report.timed_out, "the job ends by itself");
    let view = report.view.unwrap();
    assert_eq!(view.status, Some(JobStatus::Failed));
    let reason = view.result.unwrap()["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("2 message(s) were dead-lettered"),
        "{reason}"
    );
    let dead = store.dead_letter_views(&job).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].agent_id.as_deref(), Some("r"));
    assert!(dead[0].reason.contains("nowhere"), "{}", dead[0].reason);
    assert_eq!(dead[0].message["body"], json!({"a": 1}));
}
