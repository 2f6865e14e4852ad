//! One CLI for local and remote: the same job read through this machine's store and through a
//! `serve` (`--target`) prints the same JSON keys and the same event names; job ids may be
//! given by a unique prefix; `job wait` waits either way. Real `serve`, real Redis.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

struct Serve {
    child: Child,
    target: String,
    namespace: String,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_mirror-neuron");

fn serve() -> Serve {
    let namespace = common::namespace();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("serve.log");
    let child = Command::new(BIN)
        .arg("serve")
        .env("MN_GRPC_PORT", "0")
        .env("MN_METRICS_PORT", "0")
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", &namespace)
        .env("MN_HOME", dir.path())
        .env("MN_TEMP_DIR", dir.path().join("runs"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("serve");
    let target = common::wait_grpc_target(|| std::fs::read_to_string(&log).unwrap_or_default());
    Serve {
        child,
        target,
        namespace,
        _dir: dir,
    }
}

impl Serve {
    /// The command on this machine's store (the same Redis and namespace as the server).
    fn local(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", &self.namespace)
            .env_remove("MN_GRPC_TARGET")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run mirror-neuron")
    }

    /// The command against the server.
    fn remote(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--target")
            .arg(&self.target)
            .args(args)
            .env_remove("MN_REDIS_URL")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run mirror-neuron")
    }
}

fn json(out: Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed non-JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn event_types(events: &Value) -> Vec<String> {
    events
        .as_array()
        .expect("an array of events")
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn local_and_remote_print_the_same_job_the_same_way() {
    let s = serve();
    let bundle = Path::new("examples/research_flow").display().to_string();
    let run = json(
        s.remote(&["run", &bundle, "--wait", "--json"]),
        "run --target",
    );
    assert_eq!(run["status"], "completed", "{run}");
    let job_id = run["job_id"].as_str().expect("job id").to_string();
    // `run --json` prints the same record locally (this process runs the job) and remotely.
    let local_run = json(s.local(&["run", &bundle, "--json"]), "run");
    assert_eq!(local_run["status"], "completed", "{local_run}");
    assert_eq!(keys(&local_run), keys(&run));

    // inspect: the same record, key for key (the views are the same, so the values too).
    let local = json(s.local(&["job", "inspect", &job_id, "--json"]), "inspect");
    let remote = json(
        s.remote(&["job", "inspect", &job_id, "--json"]),
        "inspect --target",
    );
    assert_eq!(keys(&local), keys(&remote));
    assert_eq!(local["counters"], remote["counters"]);
    assert_eq!(local["lease_epoch"], remote["lease_epoch"]);
    assert_eq!(local["agents"], remote["agents"]);

    // list: the same rows with the same keys.
    let local = json(s.local(&["job", "list", "--json"]), "list");
    let remote = json(s.remote(&["job", "list", "--json"]), "list --target");
    assert_eq!(local, remote);
    let row = local
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["job_id"] == job_id.as_str())
        .expect("the job is listed");
    assert_eq!(row["status"], "completed");

    // events: our own event names on both sides, in the same order, with the same keys.
    let local = json(s.local(&["job", "events", &job_id, "--json"]), "events");
    let remote = json(
        s.remote(&["job", "events", &job_id, "--json"]),
        "events --target",
    );
    let types = event_types(&local);
    assert_eq!(types, event_types(&remote));
    assert_eq!(types.first().map(String::as_str), Some("job_submitted"));
    assert!(types.iter().any(|t| t == "job_started"), "{types:?}");
    for (l, r) in local
        .as_array()
        .into_iter()
        .flatten()
        .zip(remote.as_array().into_iter().flatten())
    {
        assert_eq!(keys(l), keys(r));
    }

    // Text output: the same lines (inspect includes the lease on both sides).
    let text = |o: Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let local = text(s.local(&["job", "inspect", &job_id]));
    assert!(local.contains("lease: "), "{local}");
    assert_eq!(local, text(s.remote(&["job", "inspect", &job_id])));

    // A unique prefix names the job on both sides; `job wait` on an ended job returns at once.
    let prefix = &job_id[..job_id.len() - 6];
    for out in [
        s.local(&["job", "wait", prefix, "--json"]),
        s.remote(&["job", "wait", prefix, "--json"]),
    ] {
        let waited = json(out, "job wait <prefix>");
        assert_eq!(waited["job_id"], job_id.as_str());
        assert_eq!(waited["status"], "completed");
    }
    let missing = s.local(&["job", "inspect", "no-such-job"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("job no-such-job was not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// A prefix two jobs share is refused, naming both.
#[test]
fn an_ambiguous_prefix_is_refused_naming_the_candidates() {
    let s = serve();
    let bundle = "examples/research_flow";
    let a = json(s.local(&["run", bundle, "--json"]), "run");
    let b = json(s.local(&["run", bundle, "--json"]), "run");
    let (a, b) = (a["job_id"].as_str().unwrap(), b["job_id"].as_str().unwrap());
    let common = a
        .chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect::<String>();
    assert!(!common.is_empty());
    for out in [
        s.local(&["job", "inspect", &common]),
        s.remote(&["job", "inspect", &common]),
    ] {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is ambiguous") && err.contains(a) && err.contains(b),
            "{err}"
        );
    }
}

/// `run --wait` on a terminal (a pty made by `script`) redraws one bar in place and ends with
/// one summary; without a terminal it prints plain lines and the same single summary.
#[test]
fn run_wait_draws_a_bar_on_a_terminal_and_plain_lines_elsewhere() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) to give the run a terminal");
        return;
    }
    let namespace = common::namespace();
    let home = tempfile::tempdir().expect("temp dir");
    let env = |c: &mut Command| {
        c.env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", &namespace)
            .env("MN_HOME", home.path())
            .env_remove("MN_GRPC_TARGET")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
    };
    let mut tty = Command::new("script");
    tty.args(["-qec"])
        .arg(format!("{BIN} run examples/prime_sweep --wait"))
        .arg("/dev/null");
    env(&mut tty);
    let out = tty.output().expect("script");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{screen}");
    // Redrawn in place (carriage returns, line clears) with a bar of steps...
    assert!(
        screen.contains("\r") && screen.contains("\x1b[2K"),
        "{screen:?}"
    );
    assert!(
        screen.contains("] ") && screen.contains(" steps"),
        "{screen:?}"
    );
    // ... and one summary at the end.
    let summaries = screen.matches(" completed: ").count();
    assert_eq!(summaries, 1, "{screen:?}");
    assert!(screen.contains("/13 steps, 0 failed"), "{screen:?}");

    let mut plain = Command::new(BIN);
    plain.args(["run", "examples/prime_sweep", "--wait"]);
    env(&mut plain);
    let out = plain.output().expect("run");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains('\x1b') && !err.contains('\r'), "{err:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("submitted job "), "{err}");
    let summary: Vec<&&str> = lines.iter().filter(|l| l.starts_with("job ")).collect();
    assert_eq!(summary.len(), 1, "{err}");
    assert!(summary[0].contains(" completed: 13/13 steps"), "{err}");
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("running: ") || l.starts_with("pending: ")),
        "plain progress lines only: {err}"
    );
}
