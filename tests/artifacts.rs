//! Artifacts between nodes, with real `serve` processes and a real redis-server: a step pinned
//! to node `n1` writes a file into its `MN_ARTIFACT_DIR`; a step pinned to `n2` reads it from
//! `MN_ARTIFACTS_IN` and reports its digest and size. Without a shared blob root the bytes
//! travel through Redis (n2 asks n1); with one (`MN_BLOB_STORE_ROOT`) n2 reads the shared
//! folder and asks nobody. Plus: a reference to a blob nobody holds fails the step, naming it.

mod common;
// The proxy and the fan-out bundle are for the failover tests.
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;
#[path = "common/history.rs"]
mod history;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{NodeProc, spawn_node_env, wait_healthy, wait_terminal};
use mirror_neuron::domain::artifact::ArtifactRef;
use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::artifacts::{ArtifactError, stage};
use mirror_neuron::runtime::blobs::BlobStore;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local;
use mirror_neuron::store::Store;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Size of the file the writer publishes: several Redis round trips' worth, far past the
/// inline limit, small enough to keep the test quick.
const SIZE: usize = 300_000;

/// The bytes the writer step produces (the same formula as its Python).
fn expected_bytes() -> Vec<u8> {
    (0..SIZE).map(|i| ((i * 7 + 3) % 251) as u8).collect()
}

const WRITER: &str = "import os\n\
d = os.environ['MN_ARTIFACT_DIR']\n\
open(os.path.join(d, 'data.bin'), 'wb').write(bytes((i * 7 + 3) % 251 for i in range(300000)))\n";

const READER: &str = "import hashlib, json, os\n\
p = os.path.join(os.environ['MN_ARTIFACTS_IN'], 'data.bin')\n\
b = open(p, 'rb').read()\n\
m = json.load(open(os.environ['MIRROR_NEURON_MESSAGE_FILE']))\n\
print(json.dumps({'sha256': hashlib.sha256(b).hexdigest(), 'size': len(b), 'refs': m['artifacts']}))\n";

/// `start -> write (on n1) -> read (on n2) -> sink`.
fn bundle(dir: &Path) -> PathBuf {
    let root = dir.join("artifact-job");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let on = |node: &str| json!([{"attribute": "${node.name}", "operator": "==", "value": node}]);
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "artifacts", "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "write", "agent_type": "executor", "constraints": on("n1"),
             "config": {"command": ["python3", "-c", WRITER], "output_message_type": "made"}},
            {"node_id": "read", "agent_type": "executor", "constraints": on("n2"),
             "config": {"command": ["python3", "-c", READER], "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
        ],
        "edges": [
            {"from_node": "start", "to_node": "write", "message_type": "go"},
            {"from_node": "write", "to_node": "read", "message_type": "made"},
            {"from_node": "read", "to_node": "sink", "message_type": "done"}
        ]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

/// Two nodes with their own `MN_HOME` and artifact root, plus `shared` for both.
fn two_nodes(store: &Store, dir: &Path, shared: &[(&str, &str)]) -> [NodeProc; 2] {
    let ns = store.keys().namespace().to_string();
    let url = &common::redis().url;
    [("n1", "a"), ("n2", "b")].map(|(name, tag)| {
        let root = dir.join(format!("artifacts-{tag}"));
        let root = root.to_str().unwrap().to_string();
        let mut env: Vec<(&str, &str)> = vec![("MN_JOB_ARTIFACT_ROOT", &root)];
        env.extend_from_slice(shared);
        spawn_node_env(name, &ns, url, dir, &env)
    })
}

/// Runs the job and returns what the reader step printed.
async fn run_job(store: &Store, dir: &Path, nodes: &[NodeProc; 2]) -> Value {
    wait_healthy(store, &["n1", "n2"]).await;
    let job = local::submit(store, &load_bundle(&bundle(dir)).unwrap())
        .await
        .unwrap();
    let status = wait_terminal(store, &job, Duration::from_secs(60)).await;
    let view = store.job_view(&job).await.unwrap().unwrap();
    assert_eq!(
        status,
        JobStatus::Completed,
        "view: {view:?}\nn1: {}\nn2: {}",
        nodes[0].log_text(),
        nodes[1].log_text()
    );
    // Each step ran where it was pinned.
    let events = history::check_history(store, &job, true).await;
    for (agent, node) in [("write", "n1"), ("read", "n2")] {
        let ran: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.payload {
                JobEvent::AgentStepStarted {
                    agent_id,
                    node: Some(n),
                    ..
                } if agent_id == agent => Some(n.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(ran, [node], "{agent}");
    }
    let result = view.result.clone().unwrap();
    let stdout = result["output"]["messages"][0]["sandbox"]["stdout"]
        .as_str()
        .unwrap_or_else(|| panic!("no reader stdout in {result}"));
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("stdout {stdout:?}: {e}"))
}

/// Checks that the reader saw exactly the writer's bytes and the reference to them.
fn assert_exact_bytes(seen: &Value) -> String {
    let bytes = expected_bytes();
    let sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!(seen["sha256"], sha.as_str(), "{seen}");
    assert_eq!(seen["size"], SIZE, "{seen}");
    // The message carried a reference, never the bytes.
    assert_eq!(
        seen["refs"],
        json!([{"name": "data.bin", "sha256": sha, "size": SIZE}]),
        "{seen}"
    );
    sha
}

/// How many blob requests were sent to `node` through Redis.
async fn blob_requests_to(store: &Store, node: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(store.keys().node_blob_requests(node))
        .query_async(&mut store.conn())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_written_on_one_node_is_read_on_another_that_does_not_share_its_disk() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = two_nodes(&store, dir.path(), &[]);
    let seen = run_job(&store, dir.path(), &nodes).await;
    let sha = assert_exact_bytes(&seen);
    // The bytes went through Redis: n2 asked n1, and now holds its own checked copy.
    assert!(blob_requests_to(&store, "n1").await >= 1);
    let n1_copy = dir.path().join("n1-home/blobs").join(&sha);
    let n2_copy = dir.path().join("n2-home/blobs").join(&sha);
    assert!(n1_copy.is_file() && n2_copy.is_file());
    assert_eq!(std::fs::read(&n2_copy).unwrap(), expected_bytes());
    // Both announced holding it, so a third node could ask either.
    assert_eq!(store.blob_holders(&sha).await.unwrap(), ["n1", "n2"]);
    // The steps' staging folders are gone (only the roots remain).
    for tag in ["a", "b"] {
        let root = dir.path().join(format!("artifacts-{tag}"));
        let left: Vec<_> = std::fs::read_dir(&root)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {}: {left:?}", root.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_shared_blob_root_the_reader_takes_the_blob_from_it_without_asking_any_node() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared-blobs");
    let shared_str = shared.to_str().unwrap();
    let nodes = two_nodes(&store, dir.path(), &[("MN_BLOB_STORE_ROOT", shared_str)]);
    let seen = run_job(&store, dir.path(), &nodes).await;
    let sha = assert_exact_bytes(&seen);
    assert_eq!(blob_requests_to(&store, "n1").await, 0);
    assert_eq!(blob_requests_to(&store, "n2").await, 0);
    assert_eq!(std::fs::read(shared.join(&sha)).unwrap(), expected_bytes());
    // Nothing went to the nodes' own homes.
    for node in ["n1", "n2"] {
        assert!(
            !dir.path()
                .join(format!("{node}-home/blobs"))
                .join(&sha)
                .exists()
        );
    }
}

#[tokio::test]
async fn a_reference_nobody_holds_fails_naming_the_artifact_and_digest() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::new(dir.path().join("blobs"));
    let missing =
        ArtifactRef::parse(&json!({"name": "model.pt", "sha256": "ab".repeat(32), "size": 10}))
            .unwrap();
    let root = dir.path().join("artifacts");
    let err = stage(&store, &blobs, &root, "job-1", "read", &[missing], 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::Fetch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("\"model.pt\"") && text.contains(&"ab".repeat(32)),
        "{text}"
    );
    // Retryable: its holder may come back.
    assert_eq!(err.to_step_error()["transient"], true);
    assert_eq!(err.to_step_error()["kind"], "artifact");
    // The half-made folder went with the error.
    let left: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");

    // A reference over this node's ceiling is refused before any fetch, naming the ceiling.
    let huge = ArtifactRef::parse(
        &json!({"name": "weights.bin", "sha256": "cd".repeat(32), "size": 5_000_000}),
    )
    .unwrap();
    let err = stage(&store, &blobs, &root, "job-1", "read", &[huge], 1 << 20)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("weights.bin") && text.contains("MN_MAX_ARTIFACT_BYTES"),
        "{text}"
    );
}

/// `mirror-neuron <args>` with its own `MN_HOME` under `dir` and the test Redis.
fn cli(store: &Store, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(args)
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", store.keys().namespace())
        .env("MN_HOME", dir.join("cli-home"))
        .env("MN_TEMP_DIR", dir.join("cli-runs"))
        .env_remove("MN_GRPC_TARGET")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// A one-executor job whose step runs `script` (bash), without restarts.
fn one_step(dir: &Path, script: &str) -> PathBuf {
    let root = dir.join("one-step");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "one-step", "entrypoints": ["work"],
        "nodes": [
            {"node_id": "work", "agent_type": "executor",
             "config": {"command": script, "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
        ],
        "edges": [{"from_node": "work", "to_node": "sink", "message_type": "done"}],
        "policies": {"restart": {"enabled": false}}
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

#[tokio::test]
async fn a_step_publishing_a_link_out_of_its_folder_fails_naming_the_path() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = one_step(
        dir.path(),
        "echo ok > \"$MN_ARTIFACT_DIR/fine.txt\"; ln -s /etc/passwd \"$MN_ARTIFACT_DIR/passwd\"",
    );
    let out = cli(
        &store,
        dir.path(),
        &["run", bundle.to_str().unwrap(), "--json"],
        &[],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("artifact path") && text.contains("passwd") && text.contains("symbolic link"),
        "{text}"
    );
    // Nothing of the refused step was kept: no blob holds the link's target.
    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    let sha = hex::encode(Sha256::digest(&passwd));
    assert!(!dir.path().join("cli-home/blobs").join(sha).exists());
}

#[test]
fn serve_refuses_a_relative_or_unwritable_root_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let file = file.to_str().unwrap().to_string();
    for (var, value, why) in [
        ("MN_BLOB_STORE_ROOT", "relative/blobs", "relative"),
        ("MN_JOB_ARTIFACT_ROOT", file.as_str(), "cannot create"),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
            .arg("serve")
            .env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", common::namespace())
            .env("MN_HOME", dir.path().join("home"))
            .env("MN_GRPC_PORT", "0")
            .env("MN_METRICS_PORT", "0")
            .env(var, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve with {var}={value} kept running");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!status.success());
        assert!(
            stderr.contains(var) && stderr.contains(why),
            "{var}: {stderr}"
        );
    }
}

#[tokio::test]
async fn gc_sweeps_the_folders_of_steps_whose_job_is_over_and_keeps_running_ones() {
    use mirror_neuron::runtime::artifacts::sweep::sweep;
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("artifacts");
    // A job that was submitted (its history exists) and a job nobody knows (deleted).
    let live = local::submit(&store, &load_bundle(&one_step(dir.path(), "true")).unwrap())
        .await
        .unwrap();
    for job in [live.as_str(), "gone-job"] {
        let step = root.join(job).join("work-1");
        std::fs::create_dir_all(step.join("in")).unwrap();
        std::fs::create_dir_all(step.join("out")).unwrap();
        std::fs::write(step.join("in/data.bin"), vec![0u8; 1000]).unwrap();
    }
    let dry = sweep(&store, &root, Duration::ZERO, true).await.unwrap();
    assert_eq!(dry.len(), 1);
    assert_eq!(
        (dry[0].name.as_str(), dry[0].bytes),
        ("gone-job/work-1", 1000)
    );
    assert!(
        root.join("gone-job/work-1").exists(),
        "a dry run removes nothing"
    );
    // Young folders stay whatever their job.
    assert!(
        sweep(&store, &root, Duration::from_secs(3600), false)
            .await
            .unwrap()
            .is_empty()
    );
    let removed = sweep(&store, &root, Duration::ZERO, false).await.unwrap();
    assert_eq!(removed.len(), 1);
    assert!(!root.join("gone-job").exists());
    assert!(root.join(&live).join("work-1/in/data.bin").exists());
}
