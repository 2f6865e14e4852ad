//! Per-agent concurrency benchmark: one executor agent given four messages whose steps each
//! sleep one second, run with `config.concurrency` 1, 2 and 4 (and 8 over eight messages,
//! where the node's default pool of 4 slots is the bound), end to end through a local run on
//! one private redis-server. Prints wall times and the speed-up over concurrency 1 measured in
//! the same run.
//!
//! `cargo bench --bench concurrency`; `MN_BENCH_STEP_S` changes the step length.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local;
use mirror_neuron::store::Store;
use serde_json::json;

mod support;

fn bundle(dir: &Path, messages: usize, concurrency: u32, step_s: f64) -> PathBuf {
    let root = dir.join(format!("sleep-{messages}-{concurrency}"));
    std::fs::create_dir_all(root.join("payloads")).expect("mkdir");
    let inputs: Vec<_> = (0..messages).map(|i| json!({"i": i})).collect();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "concurrency_bench", "entrypoints": ["work"],
        "initial_inputs": {"work": inputs},
        "nodes": [
            {"node_id": "work", "agent_type": "executor", "config": {
                "command": ["sleep", format!("{step_s}")], "output_message_type": "done",
                "concurrency": concurrency}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": messages}}
        ],
        "edges": [{"from_node": "work", "to_node": "sink", "message_type": "done"}]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).expect("write");
    root
}

async fn seconds(store: &Store, root: &Path) -> f64 {
    let bundle = load_bundle(root).expect("valid bundle");
    let job = local::submit(store, &bundle).await.expect("submitted");
    let start = Instant::now();
    let report = local::run_job(store, &job, "bench", Some(Duration::from_secs(600)), |_| {})
        .await
        .expect("ran");
    let elapsed = start.elapsed().as_secs_f64();
    let status = report.view.and_then(|v| v.status);
    assert_eq!(status, Some(JobStatus::Completed), "the job must complete");
    elapsed
}

#[tokio::main]
async fn main() {
    let step_s: f64 = std::env::var("MN_BENCH_STEP_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let redis = support::start_redis();
    let store = Store::connect(&redis.url, "cc").await.expect("redis");
    store.migrate(0).await.expect("migrate");
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "per-agent concurrency: one executor agent, {step_s} s steps (pool `default`: {} slots)",
        std::env::var("MN_EXECUTOR_MAX_CONCURRENCY").unwrap_or_else(|_| "4".into())
    );
    let mut baseline = None;
    for (messages, concurrency) in [(4, 1), (4, 2), (4, 4), (8, 8)] {
        let s = seconds(&store, &bundle(dir.path(), messages, concurrency, step_s)).await;
        let per_message = s / messages as f64;
        let base = *baseline.get_or_insert(per_message);
        println!(
            "  {messages} messages, concurrency {concurrency}: {s:>6.2} s  ({:.2} s per message, {:.2}x concurrency 1)",
            per_message,
            base / per_message
        );
    }
}
