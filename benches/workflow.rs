//! Workflow benchmark: message throughput through real jobs, and the runtime's memory.
//!
//! `cargo bench --bench workflow` prints, against one private redis-server:
//! - a 10,000-message router -> aggregator fan-out with no processes (messages/s, events/s);
//! - the prime-sweep scale example with 1,000 executor processes (generated with
//!   `examples/prime_sweep/generate.py`), end to end (messages/s, events/s, wall time);
//! - this process's RSS after each, and its peak.
//!
//! `MN_BENCH_FANOUT` and `MN_BENCH_WORKERS` change the sizes.

use std::path::Path;
use std::time::{Duration, Instant};

use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local;
use mirror_neuron::store::Store;
use serde_json::json;

mod support;

struct Figures {
    seconds: f64,
    messages: u64,
    events: u64,
}

async fn run_bundle(store: &Store, root: &Path) -> Figures {
    let bundle = load_bundle(root).expect("valid bundle");
    let job = local::submit(store, &bundle).await.unwrap();
    let start = Instant::now();
    let report = local::run_job(
        store,
        &job,
        "bench",
        Some(Duration::from_secs(1800)),
        |_| {},
    )
    .await
    .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let view = report.view.expect("job view");
    assert_eq!(
        view.status,
        Some(JobStatus::Completed),
        "benchmark job must complete: {:?}",
        view.result
    );
    Figures {
        seconds,
        messages: view.messages_sent,
        events: view.last_seq,
    }
}

fn fanout_bundle(dir: &Path, n: usize) -> std::path::PathBuf {
    let root = dir.join("fanout");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let inputs: Vec<_> = (0..n).map(|i| json!({"item": i})).collect();
    let manifest = json!({
        "manifest_version": "1.0",
        "graph_id": "fanout_bench",
        "entrypoints": ["fan"],
        "initial_inputs": {"fan": inputs},
        "nodes": [
            {"node_id": "fan", "agent_type": "router", "config": {"emit_type": "item"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": n}}
        ],
        "edges": [{"from_node": "fan", "to_node": "sink", "message_type": "item"}]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

fn print(name: &str, f: &Figures) {
    let (rss, peak) = support::rss_mib();
    println!(
        "  {name:<34} {:>8.2} s  {:>9.0} messages/s  {:>9.0} events/s  ({} messages, {} events)  RSS {rss:.0} MiB, peak {peak:.0} MiB",
        f.seconds,
        f.messages as f64 / f.seconds,
        f.events as f64 / f.seconds,
        f.messages,
        f.events
    );
}

#[tokio::main]
async fn main() {
    let env_n = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let fanout = env_n("MN_BENCH_FANOUT", 10_000);
    let workers = env_n("MN_BENCH_WORKERS", 1_000);
    let redis = support::start_redis();
    let store = Store::connect(&redis.url, "wf").await.unwrap();
    store.migrate(0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    println!("workflow benchmark (one redis-server, AOF everysec, this machine)");

    let f = run_bundle(&store, &fanout_bundle(dir.path(), fanout)).await;
    print(&format!("router->aggregator fan-out {fanout}"), &f);

    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/prime_sweep/generate.py");
    let out = dir.path().join("prime");
    let status = std::process::Command::new("python3")
        .arg(&generator)
        .args(["--workers", &workers.to_string(), "--out"])
        .arg(&out)
        .status()
        .expect("python3");
    assert!(status.success(), "generating the prime sweep bundle failed");
    let f = run_bundle(&store, &out).await;
    print(&format!("prime sweep, {workers} executors"), &f);
}
