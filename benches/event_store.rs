//! Event-store benchmark: one run, one Redis, ratios against raw XADD.
//!
//! `cargo bench --bench event_store` prints:
//! - raw pipelined XADD/s (the ceiling: no script, no checks, one stream);
//! - fenced single-event appends/s (one event per script call; 1 writer, then 64 concurrent jobs);
//! - fenced batched appends, events/s (100 events per script call, 64 concurrent jobs);
//! - projection throughput, events/s applied (1 and 2 workers, catching up on a full feed);
//!
//! and the fenced/raw ratios. Set `MN_BENCH_SCALE` (default 1.0) to scale the event counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_neuron::runtime::{Projectors, wait_projections_caught_up};
use mirror_neuron::store::{Store, seal};

mod support;

use support::appends::{fenced, payload, rate};

async fn raw_xadd(store: &Store, n: u64) -> f64 {
    let bytes = mirror_neuron::domain::event::encode(
        &seal("raw", 0, 0, 0, None, None, vec![payload(0)])[0],
    );
    let key = format!("{}:raw", store.keys().namespace());
    let mut conn = store.conn();
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let mut pipe = redis::pipe();
        for _ in 0..1000.min(n - done) {
            pipe.cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg("e")
                .arg(&bytes)
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.unwrap();
        done += 1000.min(n - done);
    }
    rate(n, start.elapsed())
}

async fn projection(url: &str, workers: usize, jobs: u64, per_job: u64) -> f64 {
    let store = Store::connect(url, &format!("proj{workers}"))
        .await
        .unwrap();
    store.migrate(0).await.unwrap();
    fenced(&store, "p", jobs, per_job, 100).await;
    let total = jobs * (per_job + 1);
    let start = Instant::now();
    let p = Projectors::start(&store, "bench", workers);
    wait_projections_caught_up(&store, Duration::from_secs(600))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    let stats = Arc::clone(&p.stats);
    p.stop().await;
    let applied = stats.applied.load(std::sync::atomic::Ordering::Relaxed);
    let (entries, skipped, retries) = (
        stats.entries.load(std::sync::atomic::Ordering::Relaxed),
        stats.skipped.load(std::sync::atomic::Ordering::Relaxed),
        stats.cas_retries.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert_eq!(
        applied, total,
        "every event applied once (entries {entries}, skipped {skipped}, CAS retries {retries})"
    );
    rate(total, elapsed)
}

#[tokio::main]
async fn main() {
    let scale: f64 = std::env::var("MN_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let n = |x: f64| (x * scale).max(1.0) as u64;
    let redis = support::start_redis();
    let url = redis.url.clone();
    let store = Store::connect(&url, "bench").await.unwrap();
    store.migrate(0).await.unwrap();

    let raw = raw_xadd(&store, n(200_000.0)).await;
    let single_1 = fenced(&store, "s1", 1, n(5_000.0), 1).await;
    let single_64 = fenced(&store, "s64", 64, n(500.0), 1).await;
    let batched = fenced(&store, "b", 64, n(3_000.0).div_ceil(100) * 100, 100).await;
    let proj1 = projection(&url, 1, 200, n(500.0).div_ceil(100) * 100).await;
    let proj2 = projection(&url, 2, 200, n(500.0).div_ceil(100) * 100).await;

    println!("event store benchmark (one redis-server, AOF everysec, this machine)");
    println!("  raw pipelined XADD                 {raw:>10.0} entries/s   (baseline)");
    println!(
        "  fenced single-event, 1 writer      {single_1:>10.0} events/s    ratio {:.3}",
        single_1 / raw
    );
    println!(
        "  fenced single-event, 64 jobs       {single_64:>10.0} events/s    ratio {:.3}",
        single_64 / raw
    );
    println!(
        "  fenced batched (100), 64 jobs      {batched:>10.0} events/s    ratio {:.3}",
        batched / raw
    );
    println!("  projection, 1 worker               {proj1:>10.0} events/s");
    println!("  projection, 2 workers              {proj2:>10.0} events/s");
    println!(
        "note: each fenced event is two XADDs (job history + feed) plus the epoch and version checks"
    );
}
