//! Steps are contained: whatever a step starts (setsid, double fork, nohup) dies with it, on
//! timeout, on cancel and on `kill -9` of the runtime; and a step cannot read the runtime's
//! credentials. Real `serve` processes, a real Redis, real process trees, in both containment
//! modes (`auto`, which is a pid namespace where the kernel allows, and `subreaper`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local;
use mirror_neuron::store::Store;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mirror-neuron");

/// A number no other test uses, so `sleep <marker>...` finds only this test's processes.
fn marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("7{:05}{:04}", std::process::id() % 100_000, nanos % 10_000)
}

/// Pids of live `sleep <marker>...` processes.
fn sleepers(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        let is_ours = argv.first().is_some_and(|a| a.ends_with("sleep"))
            && argv.get(1).is_some_and(|a| a.starts_with(marker));
        // Zombies are gone, only not yet reaped by their parent.
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        if is_ours && !zombie {
            found.push(pid);
        }
    }
    found
}

fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A one-executor bundle running `script`, with `extra` merged into the executor's config.
fn bundle(dir: &Path, script: &str, extra: Value) -> PathBuf {
    let root = dir.join("bundle");
    std::fs::create_dir_all(root.join("payloads")).expect("mkdir");
    let mut config = json!({"command": ["bash", "-c", script], "output_message_type": "done"});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let manifest = json!({
        "manifest_version": "1.0",
        "graph_id": "contain",
        "entrypoints": ["step"],
        "nodes": [
            {"node_id": "step", "agent_type": "executor", "config": config},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [{"from_node": "step", "to_node": "sink", "message_type": "done"}]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).expect("manifest");
    root
}

/// The script: four sleepers that each try to escape a different way, then a wait.
fn escaping_script(m: &str, ready: &Path) -> String {
    format!(
        "setsid sleep {m}1 & (sleep {m}2 &); nohup sleep {m}3 >/dev/null 2>&1 & disown; \
         bash -c 'sleep {m}4 & wait' & sleep 0.3; touch {}; sleep {m}5",
        ready.display()
    )
}

struct Serve {
    child: Child,
}

impl Serve {
    fn start(store: &Store, dir: &Path, name: &str, mode: &str, env: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env("MN_GRPC_PORT", "0")
            .env("MN_METRICS_PORT", "0")
            .env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", store.keys().namespace())
            .env("MN_NODE_NAME", name)
            .env("MN_LEADER_SWEEP_INTERVAL_MS", "200")
            .env("MN_JOB_LEASE_DURATION_MS", "1000")
            .env("MN_JOB_LEASE_RENEW_INTERVAL_MS", "200")
            .env("MN_TEMP_DIR", dir.join("runs"))
            .env("MN_STEP_CONTAINMENT", mode)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Serve {
            child: cmd.spawn().expect("spawn serve"),
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn view_status(store: &Store, job: &str) -> Option<String> {
    store
        .job_view(job)
        .await
        .ok()
        .flatten()
        .and_then(|v| v.status)
        .map(|s| s.as_str().to_string())
}

/// kill -9 of `serve` takes every process of the running step with it; the next node runs
/// the step once (not beside a survivor), clears the dead node's run folder, and a cancel
/// ends that run's whole tree too.
async fn kill9_of_serve_leaves_nothing(mode: &str) {
    let store = common::store().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let m = marker();
    let ready = dir.path().join("ready");
    let root = bundle(dir.path(), &escaping_script(&m, &ready), json!({}));
    let job = local::submit(&store, &load_bundle(&root).expect("bundle"))
        .await
        .expect("submit");

    let mut first = Serve::start(&store, dir.path(), "first", mode, &[]);
    wait_until(Duration::from_secs(30), "the step's five sleepers", || {
        sleepers(&m).len() == 5
    });
    let runs = dir.path().join("runs");
    let folders = |root: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("mirror_neuron_rt_"))
            })
            .collect()
    };
    let dead_folders = folders(&runs);
    assert_eq!(dead_folders.len(), 1, "one run folder for the first node");

    first.kill9();
    wait_until(
        Duration::from_secs(5),
        "no process of the step after kill -9 of serve",
        || sleepers(&m).is_empty(),
    );

    std::fs::remove_file(&ready).ok();
    let _second = Serve::start(&store, dir.path(), "second", mode, &[]);
    wait_until(Duration::from_secs(30), "the step to run again", || {
        ready.exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sleepers(&m).len(),
        5,
        "the step runs once, not beside a survivor"
    );
    assert!(
        dead_folders.iter().all(|f| !f.exists()),
        "the dead node's run folder is swept at start"
    );

    let out = Command::new(BIN)
        .args(["job", "cancel", &job])
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", store.keys().namespace())
        .output()
        .expect("cancel");
    assert!(
        out.status.success(),
        "cancel: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        Duration::from_secs(10),
        "no process of the step after cancel",
        || sleepers(&m).is_empty(),
    );
    assert_eq!(
        view_status(&store, &job).await.as_deref(),
        Some("cancelled")
    );
}

#[tokio::test]
async fn kill9_of_serve_leaves_no_process_of_the_step() {
    kill9_of_serve_leaves_nothing("auto").await;
}

#[tokio::test]
async fn kill9_of_serve_leaves_no_process_of_the_step_in_subreaper_mode() {
    kill9_of_serve_leaves_nothing("subreaper").await;
}

/// A timed-out step's escaped children go with it.
#[tokio::test]
async fn a_timeout_kills_the_steps_whole_tree() {
    for mode in ["auto", "subreaper"] {
        let store = common::store().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let m = marker();
        let ready = dir.path().join("ready");
        let root = bundle(
            dir.path(),
            &escaping_script(&m, &ready),
            json!({"timeout_seconds": 2}),
        );
        let out = Command::new(BIN)
            .arg("run")
            .arg(&root)
            .env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", store.keys().namespace())
            .env("MN_TEMP_DIR", dir.path().join("runs"))
            .env("MN_STEP_CONTAINMENT", mode)
            .output()
            .expect("run");
        assert!(ready.exists(), "{mode}: the step started");
        assert!(
            !out.status.success(),
            "{mode}: a timed-out step fails the job"
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("timed out"), "{mode}: {text}");
        wait_until(
            Duration::from_secs(5),
            "no process of the timed-out step",
            || sleepers(&m).is_empty(),
        );
    }
}

#[test]
fn passing_a_runtime_token_to_a_step_is_a_validation_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = bundle(
        dir.path(),
        "env",
        json!({"pass_env": ["PATH", "MN_GRPC_ADMIN_TOKEN"]}),
    );
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&root)
        .output()
        .expect("validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("config.pass_env[1]") && stdout.contains("MN_GRPC_ADMIN_TOKEN"),
        "names the field and the variable: {stdout}"
    );
}

/// The step looks everywhere it can for the runtime's tokens: its own environment, its
/// parent's, and every process's it can see. It finds none.
#[tokio::test]
async fn a_step_cannot_read_the_runtimes_tokens() {
    for mode in ["auto", "subreaper"] {
        let store = common::store().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let report = dir.path().join("report.txt");
        let secret = format!("tok-{}", marker());
        let script = format!(
            "{{ env; cat /proc/$PPID/environ; for p in /proc/[0-9]*; do cat $p/environ; done; }} \
             2>/dev/null | tr '\\0' '\\n' | grep -c -e {secret} -e MN_GRPC_ > {} ; \
             ls /proc | grep -c '^[0-9]' >> {}",
            report.display(),
            report.display()
        );
        let root = bundle(
            dir.path(),
            &script,
            json!({"pass_env": ["PATH", "OPENAI_API_KEY"]}),
        );
        let job = local::submit(&store, &load_bundle(&root).expect("bundle"))
            .await
            .expect("submit");
        let _serve = Serve::start(
            &store,
            dir.path(),
            "holder",
            mode,
            &[
                ("MN_GRPC_ADMIN_TOKEN", &secret),
                ("MN_GRPC_OPERATOR_TOKEN", &secret),
                ("OPENAI_API_KEY", &secret),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while view_status(&store, &job).await.as_deref() != Some("completed") {
            assert!(
                Instant::now() < deadline,
                "{mode}: the job did not complete"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let text = std::fs::read_to_string(&report).expect("report");
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("0"),
            "{mode}: the step found a token (ungranted OPENAI_API_KEY included)"
        );
        let visible: usize = lines.next().and_then(|l| l.parse().ok()).unwrap_or(0);
        assert!(visible > 0, "{mode}: the step could list /proc");
    }
}
