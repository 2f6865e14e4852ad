//! Bounded-history benchmark: what one routed message costs, in one run on one redis-server.
//!
//! `cargo bench --bench history` prints, for a router -> relay -> aggregator job carrying
//! `MN_BENCH_N` messages (default 10,000), on a private redis-server (AOF everysec):
//! - events per message and bytes of Redis memory per message (every key of the namespace
//!   after the first run, measured exactly: history, views, feed, registry) and the history;
//! - messages/s of `mirror-neuron run --wait --json` (median of three runs), timed like the
//!   peer harness
//!   (`../shared/peers/fanout-vs-bullmq.sh`) times it, process start included;
//! - when node and npm are present, the harness's BullMQ 6.7 flow of N no-op children on the
//!   same Redis in the same run, and the ratio (BullMQ is installed into a cache folder);
//! - the same job submitted to `serve` with `--target`, and serve's peak RSS.
//!
//! Ratios, not absolute figures, are what compare across machines: run both peers together.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_mirror-neuron");

fn relay_bundle(dir: &Path, n: usize) -> PathBuf {
    let root = dir.join("relay");
    std::fs::create_dir_all(root.join("payloads")).expect("bundle folder");
    let inputs: Vec<Value> = (0..n).map(|i| json!({ "i": i })).collect();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "relay_bench", "entrypoints": ["dispatch"],
        "initial_inputs": {"dispatch": inputs},
        "nodes": [
            {"node_id": "dispatch", "agent_type": "router", "type": "map", "config": {"emit_type": "hop"}},
            {"node_id": "relay", "agent_type": "router", "config": {"emit_type": "done"}},
            {"node_id": "total", "agent_type": "aggregator", "type": "reduce", "config": {"complete_after": n}}
        ],
        "edges": [
            {"from_node": "dispatch", "to_node": "relay", "message_type": "hop"},
            {"from_node": "relay", "to_node": "total", "message_type": "done"}
        ]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).expect("manifest");
    root
}

/// The port of a `redis://host:port/db` URL.
fn port_of(url: &str) -> &str {
    url.rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or("6379")
}

fn redis_cli(url: &str, args: &[&str]) -> String {
    let port = port_of(url);
    let out = Command::new("redis-cli")
        .args(["-p", port])
        .args(args)
        .output()
        .expect("redis-cli on PATH");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Keys matching `pattern` and the exact bytes they hold (`MEMORY USAGE ... SAMPLES 0`).
fn namespace_bytes(url: &str, pattern: &str) -> (usize, f64) {
    let keys = redis_cli(url, &["--scan", "--pattern", pattern]);
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    let bytes = keys
        .iter()
        .map(|k| {
            redis_cli(url, &["MEMORY", "USAGE", k, "SAMPLES", "0"])
                .parse::<f64>()
                .unwrap_or(0.0)
        })
        .sum();
    (keys.len(), bytes)
}

/// The peer harness's BullMQ flow on this Redis; `Err` says why it could not run.
fn bullmq(url: &str, n: usize) -> Result<f64, String> {
    let peers = std::env::var("MN_BENCH_PEERS").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/bullmq"),
        PathBuf::from,
    );
    if !peers.join("flow.mjs").is_file() {
        return Err(format!("no flow.mjs under {}", peers.display()));
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cache")))
        .map_err(|_| "no cache folder".to_string())?
        .join("peers/bullmq");
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    for f in ["package.json", "flow.mjs"] {
        std::fs::copy(peers.join(f), cache.join(f)).map_err(|e| e.to_string())?;
    }
    if !cache.join("node_modules/bullmq").is_dir() {
        let ok = Command::new("npm")
            .args(["install", "--silent"])
            .current_dir(&cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("npm install bullmq failed (npm or the registry unavailable)".into());
        }
    }
    let port = port_of(url);
    let out = Command::new("node")
        .arg("flow.mjs")
        .current_dir(&cache)
        .env("REDIS_PORT", port)
        .env("N", n.to_string())
        .env("CONCURRENCY", "50")
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("node: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).map_err(|_| format!("flow.mjs printed {line:?}"))?;
    v["per_s"]
        .as_f64()
        .ok_or_else(|| format!("no per_s in {line}"))
}

struct Ours {
    seconds: f64,
    events: u64,
    status: String,
    job_id: String,
}

fn run_ours(url: &str, home: &Path, bundle: &Path) -> Ours {
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(["run"])
        .arg(bundle)
        .args(["--wait", "--json"])
        .env("MN_REDIS_URL", url)
        .env("MN_HOME", home)
        .env("MN_LOG_LEVEL", "warn")
        .stderr(Stdio::null())
        .output()
        .expect("mirror-neuron run");
    let seconds = start.elapsed().as_secs_f64();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Ours {
        seconds,
        events: v["last_seq"].as_u64().unwrap_or(0),
        status: v["status"].as_str().unwrap_or("?").to_string(),
        job_id: v["job_id"].as_str().unwrap_or_default().to_string(),
    }
}

/// The job through `serve`: submitted with `--target`, waited for; serve's peak RSS in MiB.
fn through_serve(url: &str, dir: &Path, bundle: &Path) -> Result<(f64, f64), String> {
    let log = dir.join("serve.log");
    let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut serve = Command::new(BIN)
        .arg("serve")
        .env("MN_GRPC_PORT", "0")
        .env("MN_REDIS_URL", url)
        .env("MN_REDIS_NAMESPACE", "served")
        .env("MN_NODE_NAME", "bench")
        .env("MN_HOME", dir.join("serve-home"))
        .env("MN_LOG_LEVEL", "info")
        .stdout(Stdio::from(file.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(file))
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let target = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .find_map(|l| l.split("serving gRPC on ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
        {
            break addr.to_string();
        }
        if Instant::now() > deadline {
            let _ = serve.kill();
            return Err(format!("serve did not start: {text}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(["--target", &target, "run"])
        .arg(bundle)
        .args(["--wait", "--json"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", serve.id())).unwrap_or_default();
    let _ = serve.kill();
    let _ = serve.wait();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if v["status"] != "completed" {
        return Err(format!(
            "the job through serve ended {}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0);
    Ok((seconds, hwm))
}

fn main() {
    let n: usize = std::env::var("MN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let redis = support::start_redis();
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = relay_bundle(dir.path(), n);
    println!(
        "bounded-history benchmark: router -> relay -> aggregator, {n} messages, one redis-server (AOF everysec)"
    );

    let peer = bullmq(&redis.url, n);
    match &peer {
        Ok(per_s) => println!("  BullMQ 6.7 flow, {n} no-op children      {per_s:>9.0} messages/s"),
        Err(why) => println!("  BullMQ 6.7 flow: skipped ({why})"),
    }

    // The first run is alone in its namespace: every key under it is this job's cost.
    let ours = run_ours(&redis.url, &dir.path().join("home"), &bundle);
    assert_eq!(ours.status, "completed", "the relay job must complete");
    let (keys, bytes) = namespace_bytes(&redis.url, "mirror_neuron:*");
    let stream = redis_cli(
        &redis.url,
        &[
            "MEMORY",
            "USAGE",
            &format!("mirror_neuron:job:{{{}}}:events", ours.job_id),
            "SAMPLES",
            "0",
        ],
    )
    .parse::<f64>()
    .unwrap_or(0.0);
    // Two more runs for the speed: the machine is noisy, the median is what is reported.
    let mut seconds = vec![ours.seconds];
    for _ in 0..2 {
        let again = run_ours(&redis.url, &dir.path().join("home"), &bundle);
        assert_eq!(again.status, "completed", "the relay job must complete");
        seconds.push(again.seconds);
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[1];
    let per_s = n as f64 / median;
    println!(
        "  mirror-neuron run --wait --json          {per_s:>9.0} messages/s  (median of {:.2} / {:.2} / {:.2} s)",
        seconds[0], seconds[1], seconds[2]
    );
    println!(
        "  events per message                       {:>9.2}  ({} events)",
        ours.events as f64 / n as f64,
        ours.events
    );
    println!(
        "  Redis memory per message                 {:>9.0} bytes  ({:.2} MiB in {keys} keys for the job; its history stream {:.2} MiB)",
        bytes / n as f64,
        bytes / 1_048_576.0,
        stream / 1_048_576.0
    );
    if let Ok(peer) = peer {
        println!(
            "  ratio to BullMQ                          {:>9.2}x",
            per_s / peer
        );
    }
    match through_serve(&redis.url, dir.path(), &bundle) {
        Ok((seconds, hwm)) => println!(
            "  through serve (--target)                 {:>9.0} messages/s  serve peak RSS {hwm:.0} MiB",
            n as f64 / seconds
        ),
        Err(e) => println!("  through serve: failed: {e}"),
    }
}
