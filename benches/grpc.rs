//! gRPC benchmark: unary GetJob latency (p50/p99) and requests/s with 64 concurrent clients,
//! and submit -> completed latency of the 3-agent research_flow job, against an in-process
//! server on loopback with a private redis-server.
//!
//! `cargo bench --bench grpc`; `MN_BENCH_SECONDS` (default 5) sets the load duration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_neuron::api::auth::Tokens;
use mirror_neuron::api::client::{Client, read_bundle};
use mirror_neuron::api::context::ApiContext;
use mirror_neuron::api::pb::job_v1::{GetJobRequest, SubmitJobRequest};
use mirror_neuron::api::server::{self, ServerConfig};
use mirror_neuron::runtime::node::{Node, NodeConfig};
use mirror_neuron::store::Store;

mod support;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn wait_completed(client: &mut Client, job_id: &str) -> serde_json::Value {
    loop {
        let r = client
            .jobs
            .get_job(GetJobRequest {
                job_id: job_id.into(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner();
        let job: serde_json::Value = serde_json::from_str(&r.job_json).unwrap();
        let job = job.get("job").cloned().unwrap_or(job);
        if matches!(
            job["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("MN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let redis = support::start_redis();
    let store = Store::connect(&redis.url, "grpcbench").await.unwrap();
    store.migrate(0).await.unwrap();
    let mut cfg = NodeConfig::from_env("bench-node").unwrap();
    cfg.cluster.sweep_every = Duration::from_millis(200);
    let node = Arc::new(Node::start(store.clone(), cfg).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let ctx = ApiContext {
        store: store.clone(),
        node: node.clone(),
        bundles_dir: dir.path().join("bundles"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scfg = ServerConfig {
        addr,
        max_message_bytes: server::DEFAULT_MAX_MESSAGE_BYTES,
        tokens: Tokens::new(Some("bench".into()), None),
    };
    tokio::spawn(server::serve(ctx, scfg, listener, std::future::pending()));
    let target = addr.to_string();
    let mut client = Client::connect(&target, Some("bench")).await.unwrap();

    // submit -> completed, research_flow (3 agents), repeated.
    let (manifest_json, payloads) = read_bundle(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/research_flow"),
    )
    .unwrap();
    let mut latencies = Vec::new();
    let mut last_job = String::new();
    for _ in 0..20 {
        let start = Instant::now();
        let r = client
            .jobs
            .submit_job(SubmitJobRequest {
                manifest_json: manifest_json.clone(),
                payloads: payloads.clone(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner();
        let job = wait_completed(&mut client, &r.job_id).await;
        assert_eq!(job["status"], "completed");
        latencies.push(start.elapsed());
        last_job = r.job_id;
    }
    latencies.sort();

    // 64 concurrent clients hammering GetJob.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let mut c = Client::connect(&target, Some("bench")).await.unwrap();
        let job = last_job.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                c.jobs
                    .get_job(GetJobRequest {
                        job_id: job.clone(),
                        version: 1,
                    })
                    .await
                    .unwrap();
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.unwrap());
    }
    samples.sort();
    println!("gRPC benchmark (in-process server, loopback, private redis-server, this machine)");
    println!(
        "  GetJob, 64 concurrent clients, {seconds}s: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms ({} calls)",
        samples.len() as f64 / seconds as f64,
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    );
    println!(
        "  submit -> completed, research_flow (3 agents), 20 runs: p50 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    node.shutdown().await;
}
