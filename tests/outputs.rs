//! Bounded outputs against real `serve` processes, a real Redis and real gRPC: large step
//! outputs go to the blob store and travel as references, `serve`'s memory does not grow with
//! them, a manifest cannot lift the output cap above the server's ceiling, a job's output
//! budget refuses what passes it, and a node fetches a blob held on another node's disk.

mod common;
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use harness::{NodeProc, spawn_node_env, wait_for, wait_healthy};
use mirror_neuron::domain::output::as_blob_ref;
use mirror_neuron::runtime::blob_fetch::FetchError;
use mirror_neuron::runtime::blobs::{BlobStore, digest, fetch};
use mirror_neuron::store::Store;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mirror-neuron");
const MIB: usize = 1024 * 1024;

/// `blob get <sha256> -o <out>` against `target`; the bytes written.
fn blob_get(target: &str, sha256: &str, out: &Path) -> Vec<u8> {
    let got = cli(
        Some(target),
        &["blob", "get", sha256, "-o", out.to_str().unwrap()],
        &[],
    );
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    std::fs::read(out).unwrap()
}

/// The gRPC address a node printed when it started.
fn grpc_addr(node: &NodeProc) -> String {
    common::wait_grpc_target(|| node.log_text())
}

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status");
    kib * 1024
}

fn cli(target: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    if let Some(t) = target {
        cmd.arg("--target").arg(t);
    }
    cmd.args(args)
        .env_remove("MN_GRPC_TARGET")
        .envs(env.iter().copied())
        .output()
        .expect("run the cli")
}

fn json_out(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// `start` fans one message out to executors `w0..w{n-1}` (each running `command(i)`), whose
/// results an aggregator collects into the job result.
fn fan_out(dir: &Path, name: &str, n: usize, config: impl Fn(usize) -> Value) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let mut nodes =
        vec![json!({"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}})];
    let mut edges = vec![];
    for i in 0..n {
        let id = format!("w{i}");
        nodes.push(json!({"node_id": id, "agent_type": "executor", "config": config(i)}));
        edges.push(json!({"from_node": "start", "to_node": id, "message_type": "go"}));
        edges.push(json!({"from_node": id, "to_node": "sink", "message_type": "executor_result"}));
    }
    nodes.push(
        json!({"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": n}}),
    );
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": name, "entrypoints": ["start"],
        "nodes": nodes, "edges": edges,
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

async fn store_for(ns: &str) -> Store {
    let store = common::connect(&common::redis().url, ns).await;
    store.migrate(0).await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_steps_of_one_mib_each_keep_serve_small_and_answers_within_limits() {
    let ns = common::namespace();
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(&ns).await;
    let node = spawn_node_env(
        "big",
        &ns,
        &common::redis().url,
        dir.path(),
        &[("MN_METRICS_PORT", "0")],
    );
    wait_healthy(&store, &["big"]).await;
    let target = grpc_addr(&node);
    // Each step prints exactly 1 MiB (the default cap), different per step.
    let bundle = fan_out(
        dir.path(),
        "sixty",
        60,
        |i| json!({"command": format!("printf 'step-%02d\\n' {i}; head -c {} /dev/zero | tr '\\0' x", MIB - 8)}),
    );
    let run = cli(
        Some(&target),
        &[
            "run",
            bundle.to_str().unwrap(),
            "--json",
            "--timeout",
            "300",
        ],
        &[],
    );
    let job = json_out(&run);
    assert_eq!(job["status"], "completed", "{job}");
    let job_id = job["job_id"].as_str().expect("job_id").to_string();
    let messages = job["result"]["output"]["messages"]
        .as_array()
        .expect("messages");
    assert_eq!(messages.len(), 60);
    let refs: Vec<_> = messages
        .iter()
        .map(|m| as_blob_ref(&m["sandbox"]["stdout"]).expect("stdout is a blob reference"))
        .collect();
    assert!(refs.iter().all(|r| r.size == MIB as u64), "{refs:?}");
    let distinct: std::collections::BTreeSet<_> = refs.iter().map(|r| &r.sha256).collect();
    assert_eq!(distinct.len(), 60, "every step's output is its own blob");
    assert!(
        run.stdout.len() < 2 * MIB,
        "the job record is references, not bytes: {} bytes",
        run.stdout.len()
    );
    let inspect = json_out(&cli(
        Some(&target),
        &["job", "inspect", &job_id, "--json"],
        &[],
    ));
    assert_eq!(inspect["status"], "completed");
    // One output, read back page by page over gRPC, is the step's bytes.
    let first = &refs[0];
    let bytes = blob_get(&target, &first.sha256, &dir.path().join("stdout.bin"));
    assert_eq!(bytes.len(), MIB);
    assert_eq!(digest(&bytes), first.sha256);
    assert!(bytes.starts_with(b"step-"));
    let peak = peak_rss(node.child.id());
    eprintln!(
        "serve peak RSS (VmHWM) after 60 x 1 MiB outputs: {:.1} MiB",
        peak as f64 / MIB as f64
    );
    assert!(peak < 400 * MIB as u64, "serve peak RSS {peak} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_cannot_raise_the_output_cap_above_the_server_ceiling() {
    let ns = common::namespace();
    let dir = tempfile::tempdir().unwrap();
    let bundle = fan_out(
        dir.path(),
        "greedy",
        1,
        |_| json!({"command": "head -c 100000 /dev/zero | tr '\\0' y", "max_output_bytes": 1_000_000}),
    );
    let env = [
        ("MN_REDIS_URL", common::redis().url.as_str()),
        ("MN_REDIS_NAMESPACE", ns.as_str()),
        ("MN_HOME", dir.path().to_str().unwrap()),
        ("MN_MAX_ARTIFACT_BYTES", "4096"),
    ];
    let validate = cli(None, &["validate", bundle.to_str().unwrap()], &env);
    let warning = String::from_utf8_lossy(&validate.stderr);
    assert!(validate.status.success(), "still valid: {warning}");
    assert!(
        warning.contains("nodes[1].config.max_output_bytes")
            && warning.contains("MN_MAX_ARTIFACT_BYTES (4096)"),
        "{warning}"
    );
    let run = cli(None, &["run", bundle.to_str().unwrap(), "--json"], &env);
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("max_output_bytes: 1000000 exceeds"),
        "run warns too: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let job = json_out(&run);
    assert_eq!(job["status"], "completed", "{job}");
    let sandbox = &job["result"]["output"]["messages"][0]["sandbox"];
    assert_eq!(sandbox["truncated"], true, "{sandbox}");
    assert_eq!(
        sandbox["output_cap"],
        json!({"requested": 1_000_000, "applied": 4096, "ceiling": 4096, "ceiling_setting": "MN_MAX_ARTIFACT_BYTES"})
    );
    let stdout = sandbox["stdout"].as_str().expect("4 KiB stays inline");
    assert!(stdout.starts_with("yyyy"));
    assert_eq!(
        stdout
            .trim_end_matches("\n[truncated by host local output cap]")
            .len(),
        4096,
        "kept exactly the ceiling"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_its_output_budget_gets_a_clear_step_error() {
    let ns = common::namespace();
    let dir = tempfile::tempdir().unwrap();
    // Three steps of 100 kB each, one after the other; the budget (lowered by the manifest
    // below the server's) holds two.
    let bundle = fan_out(dir.path(), "budget", 3, |i| {
        json!({"command": format!("sleep {}; head -c 100000 /dev/zero | tr '\\0' z", i as f64 * 0.3),
               "max_job_output_bytes": 250_000})
    });
    let env = [
        ("MN_REDIS_URL", common::redis().url.as_str()),
        ("MN_REDIS_NAMESPACE", ns.as_str()),
        ("MN_HOME", dir.path().to_str().unwrap()),
        ("MN_JOB_OUTPUT_BUDGET_BYTES", "10000000"),
    ];
    let run = cli(
        None,
        &[
            "run",
            bundle.to_str().unwrap(),
            "--json",
            "--timeout",
            "120",
        ],
        &env,
    );
    let stdout: Value = serde_json::from_slice(&run.stdout).expect("job JSON");
    assert_ne!(stdout["status"], "completed", "{stdout}");
    let store = store_for(&ns).await;
    let job_id = stdout["job_id"].as_str().unwrap();
    let agents = store.agent_views(job_id).await.unwrap();
    let refused: Vec<_> = agents
        .iter()
        .filter_map(|a| {
            a.last_error
                .as_ref()
                .map(|e| (a.agent_id.clone(), e.to_string()))
        })
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "w2", "the last step passes the budget");
    assert!(
        refused[0].1.contains("job output budget exhausted")
            && refused[0].1.contains("200000 bytes")
            && refused[0].1.contains("budget of 250000"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_on_one_nodes_disk_is_fetched_by_another_through_redis() {
    let ns = common::namespace();
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(&ns).await;
    // Written on node a's disk before it starts: a announces what it holds when it starts.
    let a_store = BlobStore::new(dir.path().join("a-home").join("blobs"));
    let shared = a_store.put(&vec![7u8; 3 * MIB]).unwrap();
    let only_on_a = a_store.put(b"never fetched before a stops").unwrap();
    let collected = a_store.put(b"removed from a's disk while a runs").unwrap();
    let mut a = spawn_node_env(
        "a",
        &ns,
        &common::redis().url,
        dir.path(),
        &[("MN_METRICS_PORT", "0")],
    );
    let b = spawn_node_env(
        "b",
        &ns,
        &common::redis().url,
        dir.path(),
        &[("MN_METRICS_PORT", "0")],
    );
    wait_healthy(&store, &["a", "b"]).await;
    wait_for(
        Duration::from_secs(10),
        "a to announce its blobs",
        || async {
            let holders = store.blob_holders(&only_on_a.sha256).await.ok()?;
            holders.contains(&"a".to_string()).then_some(())
        },
    )
    .await;
    // Through b's gRPC: b lacks it, asks a through Redis, verifies and keeps a copy.
    let fetched = blob_get(
        &grpc_addr(&b),
        &shared.sha256,
        &dir.path().join("fetched.bin"),
    );
    assert_eq!(fetched, vec![7u8; 3 * MIB]);
    let b_store = BlobStore::new(dir.path().join("b-home").join("blobs"));
    assert!(
        b_store.contains(&shared.sha256),
        "b stored the fetched copy"
    );
    // The CLI without --target: this machine's store (empty) first, then a holder via Redis.
    let local_file = dir.path().join("fetched-locally.bin");
    let c_home = dir.path().join("c-home");
    let local = cli(
        None,
        &[
            "blob",
            "get",
            &shared.sha256,
            "-o",
            local_file.to_str().unwrap(),
        ],
        &[
            ("MN_REDIS_URL", common::redis().url.as_str()),
            ("MN_REDIS_NAMESPACE", ns.as_str()),
            ("MN_HOME", c_home.to_str().unwrap()),
        ],
    );
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    assert_eq!(std::fs::read(&local_file).unwrap(), vec![7u8; 3 * MIB]);
    // The library function others use, from a third disk.
    let mine = BlobStore::new(dir.path().join("mine"));
    let bytes = fetch(&store, &mine, &only_on_a.sha256).await.unwrap();
    assert_eq!(bytes, b"never fetched before a stops");

    // A holder asked for a blob it no longer has (gc removed it) refuses and stops claiming
    // it, so later fetches do not ask it again.
    assert!(
        store
            .blob_holders(&collected.sha256)
            .await
            .unwrap()
            .contains(&"a".to_string())
    );
    a_store.remove(&collected.sha256).unwrap();
    assert!(fetch(&store, &mine, &collected.sha256).await.is_err());
    assert!(
        !store
            .blob_holders(&collected.sha256)
            .await
            .unwrap()
            .contains(&"a".to_string()),
        "a no longer claims the blob it lost"
    );
    mine.remove(&only_on_a.sha256).unwrap();
    // With its only holder gone, the error names the blob and the node that held it.
    a.kill9();
    wait_for(
        Duration::from_secs(10),
        "a's liveness lease to expire",
        || async {
            let alive = store.alive(&["a".to_string()]).await.ok()?;
            alive[0].is_none().then_some(())
        },
    )
    .await;
    let err = fetch(&store, &mine, &only_on_a.sha256).await.unwrap_err();
    assert!(matches!(err, FetchError::NoLiveHolder { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&only_on_a.sha256) && text.contains("held by: a"),
        "{text}"
    );
    let unknown = fetch(&store, &mine, &"0".repeat(64)).await.unwrap_err();
    assert!(matches!(unknown, FetchError::Unknown { .. }), "{unknown}");
    let bad = fetch(&store, &mine, "../../etc/passwd").await.unwrap_err();
    assert!(bad.to_string().contains("not a sha256"), "{bad}");
    // The node's answer status for a wrong digest over gRPC.
    let refused = cli(Some(&grpc_addr(&b)), &["blob", "get", &"1".repeat(64)], &[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
