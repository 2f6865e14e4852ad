//! Per-agent concurrency with real processes on a real redis-server: one executor agent with
//! `config.concurrency: 3` has its three steps running at the same time (each waits until all
//! three have started, which one-at-a-time could never satisfy), and results land in message
//! order unless `ordered: false`. Timing is measured by `cargo bench --bench concurrency`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local;
use serde_json::{Value, json};

/// Each step marks its arrival in `$MEET`, waits (up to 20 s) until all `$WANT` steps have
/// arrived, then answers after a delay that makes the first message the last to finish.
const MEET: &str = r#"
n=$(tr -cd '0-9' < "$MIRROR_NEURON_BODY_FILE")
touch "$MEET/$n"
i=0
while [ "$(ls "$MEET" | wc -l)" -lt "$WANT" ] && [ "$i" -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
seen=$(ls "$MEET" | wc -l)
[ "$seen" -ge "$WANT" ] || { echo "only $seen of $WANT steps ran at once" >&2; exit 1; }
case "$n" in 1) sleep 0.8 ;; 2) sleep 0.4 ;; esac
echo "{\"n\": $n}"
"#;

fn bundle(dir: &Path, concurrency: u32, ordered: bool) -> PathBuf {
    let root = dir.join(format!("meet-{concurrency}-{ordered}"));
    let meet = root.join("meet");
    std::fs::create_dir_all(root.join("payloads")).expect("mkdir");
    std::fs::create_dir_all(&meet).expect("mkdir");
    std::fs::write(root.join("payloads/meet.sh"), MEET).expect("write");
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "meet", "entrypoints": ["work"],
        "initial_inputs": {"work": [{"n": 1}, {"n": 2}, {"n": 3}]},
        "nodes": [
            {"node_id": "work", "agent_type": "executor", "config": {
                "upload_path": "meet.sh", "command": ["sh", "meet.sh"],
                "output_message_type": "done",
                "concurrency": concurrency, "ordered": ordered,
                "environment": {"MEET": meet.display().to_string(), "WANT": "3"}}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 3}}
        ],
        "edges": [{"from_node": "work", "to_node": "sink", "message_type": "done"}]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).expect("write");
    root
}

/// Runs the bundle to its end and returns the `n` of each result in the order it landed.
async fn landed(root: &Path) -> Vec<Value> {
    let store = common::store().await;
    let bundle = load_bundle(root).expect("valid bundle");
    let job = local::submit(&store, &bundle).await.expect("submitted");
    let report = local::run_job(&store, &job, "test", Some(Duration::from_secs(60)), |_| {})
        .await
        .expect("ran");
    let view = report.view.expect("job view");
    assert_eq!(
        view.status,
        Some(JobStatus::Completed),
        "job must complete: {:?}",
        view.result
    );
    let result = view.result.expect("result");
    result["output"]["messages"]
        .as_array()
        .expect("aggregated messages")
        .iter()
        .map(|m| m["input"]["n"].clone())
        .collect()
}

#[tokio::test]
async fn three_steps_of_one_agent_run_at_once_and_land_in_message_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let order = landed(&bundle(dir.path(), 3, true)).await;
    // Message 3 finished first and message 1 last; ordered results wait for their turn.
    assert_eq!(order, [json!(1), json!(2), json!(3)]);
}

#[tokio::test]
async fn unordered_results_land_as_they_finish() {
    let dir = tempfile::tempdir().expect("temp dir");
    let order = landed(&bundle(dir.path(), 3, false)).await;
    assert_eq!(order, [json!(3), json!(2), json!(1)]);
}
