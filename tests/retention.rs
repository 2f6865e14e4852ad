//! Bounded history, end to end with the real binary, a real Redis and a real `serve`:
//! a finished job's history archived (retention 0) leaves only its views and a pointer in
//! Redis, and `job history`, `replay` and `export` read the archive exactly as they read the
//! hot stream; `job export --target` streams a history over gRPC and replays offline to the
//! live view; `admin gc` drops unreferenced blobs and keeps referenced ones.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mirror_neuron::runtime::blobs::BlobStore;
use mirror_neuron::runtime::history::retention::sweep_once;
use mirror_neuron::store::Store;
use serde_json::{Value, json};

const TOKEN: &str = "retention-test-token";

/// One namespace and one `MN_HOME` (so one blob store) for the binary.
struct Cli {
    namespace: String,
    home: PathBuf,
}

impl Cli {
    fn new(home: &Path) -> Cli {
        Cli {
            namespace: common::namespace(),
            home: home.to_path_buf(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"));
        cmd.env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", &self.namespace)
            .env("MN_HOME", &self.home)
            .env("MN_GRPC_AUTH_TOKEN", TOKEN)
            .env_remove("MN_GRPC_TARGET")
            .env_remove("MN_JOB_HISTORY_RETENTION")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        cmd
    }

    fn ok_with(&self, cmd: &mut Command, args: &[&str]) -> String {
        let out: Output = cmd.args(args).output().expect("run mirror-neuron");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(&mut self.command(), args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    async fn store(&self) -> Store {
        common::connect(&common::redis().url, &self.namespace).await
    }
}

/// A job with routing, an aggregator and a dead letter: a history with some variety.
fn bundle(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("payloads")).expect("payloads dir");
    let manifest = json!({
        "manifest_version": "1.0",
        "graph_id": "retention_flow",
        "entrypoints": ["ingress", "stray"],
        "initial_inputs": {"ingress": [{"n": 1}, {"n": 2}, {"n": 3}], "stray": [{"n": 4}]},
        "nodes": [
            {"node_id": "ingress", "agent_type": "router", "config": {"emit_type": "work"}},
            {"node_id": "stray", "agent_type": "router", "config": {"emit_type": "nowhere"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 3}}
        ],
        "edges": [
            {"edge_id": "a", "from_node": "ingress", "to_node": "sink", "message_type": "work"}
        ]
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest");
    dir.to_str().expect("utf-8 path").to_string()
}

/// Every key of one job in the namespace, with its `MEMORY USAGE` in bytes.
async fn job_keys(store: &Store, job_id: &str) -> Vec<(String, u64)> {
    let mut conn = store.conn();
    // Every key of the job: its history key with the last part as a wildcard (the layout
    // differs on a Redis Cluster, where the tag is the job's shard).
    let events = store.keys().job_events(job_id);
    let pattern = format!("{}*", events.trim_end_matches("events"));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    let mut out = Vec::new();
    for k in keys {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .expect("MEMORY USAGE");
        out.push((k, bytes.unwrap_or(0)));
    }
    out.sort();
    out
}

fn suffixes(keys: &[(String, u64)]) -> Vec<String> {
    keys.iter()
        .filter_map(|(k, _)| k.rsplit(':').next().map(str::to_string))
        .collect()
}

fn total(keys: &[(String, u64)]) -> u64 {
    keys.iter().map(|(_, b)| b).sum()
}

/// What the three history readers print for a job.
fn readings(cli: &Cli, job_id: &str, dir: &Path, tag: &str) -> Vec<String> {
    let file = dir.join(format!("{tag}.jsonl"));
    cli.ok(&["job", "export", job_id, "-o", file.to_str().expect("utf-8")]);
    vec![
        cli.ok(&["job", "history", job_id]),
        cli.ok(&["job", "history", job_id, "--json"]),
        cli.ok(&["job", "replay", job_id, "--json"]),
        cli.ok(&["job", "replay", job_id, "--until", "5"]),
        cli.ok(&["job", "export", job_id, "-o", "-"]),
        std::fs::read_to_string(&file).expect("read export"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_history_reads_exactly_like_the_hot_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = Cli::new(&dir.path().join("home"));
    let store = cli.store().await;
    let src = bundle(&dir.path().join("bundle"));

    // A job run with the default retention keeps its hot history.
    let job = cli.json(&["run", &src, "--json"]);
    assert_eq!(job["status"], "completed", "{job}");
    let job_id = job["job_id"].as_str().expect("job id").to_string();
    let before_keys = job_keys(&store, &job_id).await;
    assert!(suffixes(&before_keys).contains(&"events".to_string()));
    let before = readings(&cli, &job_id, dir.path(), "before");
    let view_before = cli.json(&["job", "inspect", &job_id, "--json"]);

    // The leader's sweep with retention 0 archives it.
    let blobs = BlobStore::new(dir.path().join("home").join("blobs"));
    let now = mirror_neuron::runtime::clock::now_ms();
    let report = sweep_once(&store, &blobs, Duration::ZERO, now)
        .await
        .expect("sweep");
    assert_eq!(report.archived, vec![job_id.clone()], "{report:?}");
    let record = store
        .archive_record(&job_id)
        .await
        .expect("read pointer")
        .expect("archived");
    assert!(blobs.contains(&record.sha256));
    assert_eq!(
        record.last_seq,
        view_before["last_seq"].as_u64().expect("seq")
    );

    // Hot keys gone, views and the pointer stay.
    let after_keys = job_keys(&store, &job_id).await;
    let names = suffixes(&after_keys);
    for gone in ["events", "results", "lease", "lease_epoch", "commands"] {
        assert!(
            !names.contains(&gone.to_string()),
            "{gone} still there: {names:?}"
        );
    }
    for kept in ["view", "agents", "dead_letters", "archive"] {
        assert!(
            names.contains(&kept.to_string()),
            "{kept} missing: {names:?}"
        );
    }
    eprintln!(
        "redis bytes for job {job_id}: {} before archiving {before_keys:?}, {} after {after_keys:?}; archive blob {} bytes",
        total(&before_keys),
        total(&after_keys),
        record.size
    );
    assert!(total(&after_keys) < total(&before_keys));

    // Every reader gives the same answer from the archive; the view is still there.
    assert_eq!(readings(&cli, &job_id, dir.path(), "after"), before);
    // The hot stream is gone, the history is not: a fresh history cannot start under its id.
    let fresh = mirror_neuron::store::seal(
        &job_id,
        0,
        0,
        now,
        None,
        None,
        vec![mirror_neuron::domain::event::JobEvent::JobStarted],
    );
    assert!(
        matches!(
            store.append(&job_id, 0, 0, &fresh).await,
            Err(mirror_neuron::store::AppendError::Conflict { .. })
        ),
        "an append at version 0 to an archived job conflicts"
    );
    assert_eq!(
        cli.json(&["job", "inspect", &job_id, "--json"]),
        view_before
    );
    // A second sweep has nothing to do; rebuild --check reads the archive and agrees.
    let again = sweep_once(&store, &blobs, Duration::ZERO, now)
        .await
        .expect("sweep");
    assert!(
        again.archived.is_empty() && again.errors.is_empty(),
        "{again:?}"
    );
    let check = cli.json(&["admin", "rebuild-projections", "--check", "--json"]);
    assert_eq!(check["differences"], json!([]), "{check}");

    // A damaged archive is a clear error, not a panic or an empty history.
    std::fs::write(blobs.root().join(&record.sha256), b"not an archive").expect("damage");
    let out = cli
        .command()
        .args(["job", "history", &job_id])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_with_retention_zero_archives_on_completion() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = Cli::new(&dir.path().join("home"));
    let store = cli.store().await;
    let src = bundle(&dir.path().join("bundle"));
    let job = cli.json_with_retention_zero(&src);
    let job_id = job["job_id"].as_str().expect("job id").to_string();
    let names = suffixes(&job_keys(&store, &job_id).await);
    assert!(!names.contains(&"events".to_string()), "{names:?}");
    assert!(names.contains(&"archive".to_string()), "{names:?}");
    let replay = cli.json(&["job", "replay", &job_id, "--json"]);
    common::assert_view_is_record(
        &replay["view"],
        &cli.json(&["job", "inspect", &job_id, "--json"]),
    );
    // Operator commands see the finished job in its archive (not a job that never existed).
    let out = cli
        .command()
        .args(["job", "pause", &job_id])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("not found"), "{err}");
}

impl Cli {
    fn json_with_retention_zero(&self, src: &str) -> Value {
        let mut cmd = self.command();
        cmd.env("MN_JOB_HISTORY_RETENTION", "0");
        let text = self.ok_with(&mut cmd, &["run", src, "--json"]);
        let job: Value = serde_json::from_str(&text).expect("JSON job");
        assert_eq!(job["status"], "completed", "{job}");
        job
    }
}

/// A `serve` process on a free port; killed on drop.
struct Serve {
    child: Child,
    target: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(cli: &Cli, dir: &Path, env: &[(&str, &str)]) -> Serve {
    let log_path = dir.join("serve.log");
    let child = cli
        .command()
        .arg("serve")
        .env("MN_GRPC_PORT", "0")
        .env("MN_METRICS_PORT", "0")
        .env("MN_NODE_NAME", "retention-node")
        .env("MN_TEMP_DIR", dir.join("runs"))
        .env("MN_LEADER_LEASE_DURATION_MS", "1500")
        .env("MN_LEADER_LEASE_RENEW_INTERVAL_MS", "300")
        .env("MN_LOG_LEVEL", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("spawn serve");
    let target =
        common::wait_grpc_target(|| std::fs::read_to_string(&log_path).unwrap_or_default());
    Serve { child, target }
}

#[tokio::test(flavor = "multi_thread")]
async fn export_over_grpc_replays_offline_to_the_live_view() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = Cli::new(&dir.path().join("home"));
    let store = cli.store().await;
    let src = bundle(&dir.path().join("bundle"));
    // The server archives finished jobs at once (as leader), so the export reads the archive.
    let server = serve(&cli, dir.path(), &[("MN_JOB_HISTORY_RETENTION", "0")]);
    let remote = |args: &[&str]| -> String {
        let mut cmd = cli.command();
        cmd.env_remove("MN_REDIS_URL")
            .arg("--target")
            .arg(&server.target);
        cli.ok_with(&mut cmd, args)
    };
    let job: Value =
        serde_json::from_str(&remote(&["run", &src, "--wait", "--json"])).expect("JSON job");
    let job_id = job["job_id"].as_str().expect("job id").to_string();
    assert_eq!(job["status"], "completed", "{job}");

    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .archive_record(&job_id)
        .await
        .expect("pointer")
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the leader did not archive {job_id}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.history_len(&job_id).await.expect("xlen"), 0);

    let file = dir.path().join("remote.jsonl");
    remote(&[
        "job",
        "export",
        &job_id,
        "-o",
        file.to_str().expect("utf-8"),
    ]);
    // Offline: a closed Redis port and a bogus server prove neither is touched.
    let mut offline = cli.command();
    offline
        .env("MN_REDIS_URL", "redis://127.0.0.1:1/0")
        .env("MN_GRPC_TARGET", "127.0.0.1:1");
    let replay: Value = serde_json::from_str(&cli.ok_with(
        &mut offline,
        &[
            "job",
            "replay",
            "--file",
            file.to_str().expect("utf-8"),
            "--json",
        ],
    ))
    .expect("JSON report");
    let live = cli.json(&["job", "inspect", &job_id, "--json"]);
    common::assert_view_is_record(&replay["view"], &live);
    assert_eq!(replay["status"], "completed");
    assert_eq!(
        common::dead_letter_keys(&replay["dead_letters"]),
        common::dead_letter_keys(&cli.json(&["job", "dead-letters", &job_id, "--json"]))
    );

    // History and replay over gRPC equal the local readers (which read the same archive).
    for args in [
        &["job", "history", &job_id, "--json"][..],
        &["job", "history", &job_id][..],
        &["job", "replay", &job_id, "--json", "--until", "4"][..],
    ] {
        assert_eq!(remote(args), cli.ok(args), "{args:?}");
    }
    // Unknown jobs and bad tokens are refused like every other read.
    let mut cmd = cli.command();
    let out = cmd
        .env_remove("MN_REDIS_URL")
        .args(["--target", &server.target, "job", "history", "no-such-job"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let mut cmd = cli.command();
    let out = cmd
        .env("MN_GRPC_AUTH_TOKEN", "wrong")
        .args(["--target", &server.target, "job", "history", &job_id])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthenticated"));
}

/// Makes a file look `secs` old.
fn age_file(path: &Path, secs: u64) {
    let when = std::time::SystemTime::now() - Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .expect("set mtime");
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_removes_only_old_unreferenced_blobs_and_bundles() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let cli = Cli::new(&home);
    let blobs = BlobStore::new(home.join("blobs"));
    // A blob a job refers to (its input travels into the aggregator's result, so the view
    // holds the reference), an orphan, and a fresh orphan.
    let referenced = blobs.put(b"a large output kept as a blob").expect("put");
    let orphan = blobs
        .put(b"an output of a job deleted long ago")
        .expect("put");
    let young = blobs
        .put(b"just written, reference not recorded yet")
        .expect("put");
    let src = bundle(&dir.path().join("bundle"));
    let manifest_path = Path::new(&src).join("manifest.json");
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("read"))
            .expect("json");
    manifest["initial_inputs"]["ingress"][0] =
        json!({"$blob": {"sha256": referenced.sha256, "size": referenced.size}});
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    let job = cli.json_with_retention_zero(&src);
    let job_id = job["job_id"].as_str().expect("job id").to_string();
    assert!(job.to_string().contains(&referenced.sha256), "{job}");
    let store = cli.store().await;
    let archive = store
        .archive_record(&job_id)
        .await
        .expect("pointer")
        .expect("archived");
    // An uploaded bundle no job or schedule uses.
    let unused_bundle = home.join("bundles").join("ab".repeat(32));
    std::fs::create_dir_all(unused_bundle.join("payloads")).expect("bundle dir");
    std::fs::write(unused_bundle.join("manifest.json"), "{}").expect("write");
    for digest in [&referenced.sha256, &orphan.sha256, &archive.sha256] {
        age_file(&blobs.path(digest).expect("path"), 7200);
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::open(&unused_bundle)
        .and_then(|f| f.set_modified(old))
        .expect("age bundle");

    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .expect("list")
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect()
    };
    let dry = cli.json(&["admin", "gc", "--dry-run", "--json"]);
    assert_eq!(
        names(&dry["blobs_removed"]),
        vec![orphan.sha256.clone()],
        "{dry}"
    );
    assert_eq!(
        names(&dry["bundles_removed"]),
        vec!["ab".repeat(32)],
        "{dry}"
    );
    assert!(blobs.contains(&orphan.sha256) && unused_bundle.is_dir());

    let done = cli.json(&["admin", "gc", "--json"]);
    assert_eq!(
        names(&done["blobs_removed"]),
        vec![orphan.sha256.clone()],
        "{done}"
    );
    assert_eq!(done["blobs_live"], 2, "{done}");
    assert_eq!(done["blobs_kept_young"], 1, "{done}");
    assert!(!blobs.contains(&orphan.sha256));
    assert!(!unused_bundle.exists());
    for kept in [&referenced.sha256, &young.sha256, &archive.sha256] {
        assert!(blobs.contains(kept), "{kept} was removed");
    }
    // The archive still reads; a bad --grace is refused naming the flag.
    assert!(
        cli.ok(&["job", "history", &job_id])
            .contains("job_completed")
    );
    let out = cli
        .command()
        .args(["admin", "gc", "--grace", "soon"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--grace"));
}
