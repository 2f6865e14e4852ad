//! The `mirror-neuron` binary, driven as a user would, against a real Redis.

mod common;

use std::process::{Command, Output};

use serde_json::Value;

struct Cli {
    namespace: String,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            namespace: common::namespace(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
            .args(args)
            .env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", &self.namespace)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run mirror-neuron")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} printed non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn validate_reports_every_error_with_its_path() {
    let cli = Cli::new();
    let ok = cli.run(&["validate", "examples/research_flow"]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(stdout(&ok).trim(), "valid");

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("payloads")).unwrap();
    let bad = r#"{"nodes": [{"node_id": "a", "agent_type": "wizard"}, {"node_id": "a", "agent_type": "router"}],
                 "edges": [{"from_node": "a", "to_node": "ghost", "message_type": "x"}]}"#;
    std::fs::write(dir.path().join("manifest.json"), bad).unwrap();
    let out = cli.run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    for needle in [
        "manifest_version",
        "graph_id",
        "wizard",
        "duplicate node_id",
        "ghost",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(text.lines().count() >= 5, "one error per line:\n{text}");
    let run = cli.run(&["run", dir.path().to_str().unwrap()]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "run refuses an invalid bundle with exit 2"
    );
}

#[test]
fn run_then_read_the_job_back_through_every_listing() {
    let cli = Cli::new();
    let job = cli.json(&["run", "examples/research_flow", "--json"]);
    for field in [
        "job_id",
        "graph_id",
        "status",
        "result",
        "submitted_at",
        "updated_at",
    ] {
        assert!(
            job.get(field).is_some(),
            "final record lacks {field}: {job}"
        );
    }
    assert_eq!(job["status"], "completed");
    let id = job["job_id"].as_str().unwrap();
    assert!(id.starts_with("research_flow_v1-"), "{id}");
    let suffix: Vec<&str> = id.rsplitn(3, '-').collect();
    assert_eq!(suffix[0].len(), 12, "12 hex chars: {id}");
    assert!(suffix[1].parse::<u64>().is_ok(), "unix ms: {id}");

    let list = cli.json(&["job", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["job_id"], id);
    let done = cli.json(&["job", "list", "--status", "completed", "--json"]);
    assert_eq!(done.as_array().unwrap().len(), 1);
    let running = cli.json(&["job", "list", "--status", "running", "--json"]);
    assert!(running.as_array().unwrap().is_empty());
    let inspect = cli.json(&["job", "inspect", id, "--json"]);
    assert_eq!(inspect["result"]["agent_id"], "reviewer");
    let agents = cli.json(&["job", "agents", id, "--json"]);
    assert_eq!(agents.as_array().unwrap().len(), 3);
    let events = cli.json(&["job", "events", id, "--json"]);
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"job_submitted"));
    assert_eq!(types.last(), Some(&"job_completed"));
    let follow = cli.run(&["job", "events", id, "--follow", "--json"]);
    assert!(follow.status.success());
    assert_eq!(
        stdout(&follow).lines().count(),
        types.len(),
        "--follow ends at the terminal event"
    );
    let dead = cli.json(&["job", "dead-letters", id, "--json"]);
    assert!(dead.as_array().unwrap().is_empty());

    let pause = cli.run(&["job", "pause", id]);
    assert_eq!(pause.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&pause.stderr).contains("cannot pause a job that is completed")
    );
    let missing = cli.run(&["job", "inspect", "nope-1-abc"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("was not found"));
    let bad_id = cli.run(&["job", "inspect", "a}b"]);
    assert!(String::from_utf8_lossy(&bad_id.stderr).contains("job_id may contain only"));

    let check = cli.run(&["admin", "rebuild-projections", "--check"]);
    assert!(check.status.success(), "{}", stdout(&check));
    let status = cli.json(&["admin", "status", "--json"]);
    assert_eq!(status["jobs"], 1);
    assert_eq!(status["projection_backlog"], 0);
    let migrate = cli.json(&["admin", "migrate", "--json"]);
    assert_eq!(migrate["schema_version"], 1);
}

#[test]
fn a_bad_setting_is_an_error_naming_the_variable() {
    let cli = Cli::new();
    let out = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(["job", "list"])
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", "bad{ns}")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MN_REDIS_NAMESPACE"));
    // A setting the run reads is refused before anything is submitted.
    let out = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(["run", "examples/research_flow"])
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", &cli.namespace)
        .env("MN_JOB_LEASE_DURATION_MS", "soon")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("MN_JOB_LEASE_DURATION_MS"), "{err}");
    assert!(!err.contains("submitted job"), "{err}");
    // A target given to a command that never talks to a server is said to be unused.
    let out = cli.run(&[
        "--target",
        "127.0.0.1:9",
        "validate",
        "examples/research_flow",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not used: validate checks"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(cli);
}

#[test]
fn schedule_trigger_and_event_commands() {
    let cli = Cli::new();
    let made = cli.json(&[
        "schedule",
        "create",
        "examples/research_flow",
        "--cron",
        "30 2 * * *",
        "--cron",
        "0 */6 * * *",
        "--timezone",
        "America/New_York",
        "--missed-policy",
        "catchup",
        "--catchup-limit",
        "3",
        "--json",
    ]);
    let id = made["schedule_id"].as_str().unwrap().to_string();
    assert_eq!(
        made["crons"],
        serde_json::json!(["30 2 * * *", "0 */6 * * *"])
    );
    assert_eq!(made["missed_policy"], "catchup");
    let bad = cli.run(&[
        "schedule",
        "create",
        "examples/research_flow",
        "--cron",
        "* * * * *",
        "--cron",
        "0 24 * * *",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("schedule.crons[1]"));

    let delayed = cli.json(&[
        "schedule",
        "delay",
        "examples/research_flow",
        "--in",
        "10m",
        "--json",
    ]);
    assert_eq!(delayed["kind"], "delayed");
    let trig = cli.json(&[
        "trigger",
        "create",
        "examples/research_flow",
        "--event",
        "order.created",
        "--filter-json",
        r#"{"total": {"gte": 100}}"#,
        "--json",
    ]);
    let triggers = cli.json(&["trigger", "list", "--json"]);
    assert_eq!(triggers.as_array().unwrap().len(), 1);
    assert_eq!(
        cli.json(&["schedule", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let args = [
        "event",
        "emit",
        "order.created",
        "--payload-json",
        r#"{"total": 150}"#,
        "--idempotency-key",
        "k1",
        "--json",
    ];
    let first = cli.json(&args);
    assert_eq!(first["status"], "emitted");
    assert_eq!(first["schedule_id"], trig["schedule_id"]);
    let again = cli.json(&args);
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["job_id"], first["job_id"]);
    let events = cli.json(&["event", "list", "--json"]);
    assert_eq!(events.as_array().unwrap().len(), 1);

    let ran = cli.json(&[
        "schedule",
        "run-now",
        &id,
        "--payload-json",
        r#"{"x": 1}"#,
        "--json",
    ]);
    assert!(ran["job_id"].as_str().unwrap().starts_with(&id));
    assert!(cli.run(&["schedule", "pause", &id]).status.success());
    assert_eq!(
        cli.json(&["schedule", "status", &id, "--json"])["status"],
        "paused"
    );
    assert!(cli.run(&["schedule", "resume", &id]).status.success());
    let history = cli.json(&["schedule", "events", &id, "--json"]);
    let types: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "created",
            "dispatched",
            "dispatch_started",
            "paused",
            "resumed"
        ]
    );
    assert!(
        cli.run(&["trigger", "delete", trig["schedule_id"].as_str().unwrap()])
            .status
            .success()
    );
    let missing = cli.run(&["schedule", "status", trig["schedule_id"].as_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
}

/// `serve` sweeps schedules and runs what they start; the commands work with `--target`.
#[test]
fn schedules_run_on_a_serving_node_and_commands_work_with_target() {
    let ns = common::namespace();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let bin = env!("CARGO_BIN_EXE_mirror-neuron");
    // Port 0: the node picks a free port and prints it, so no other process can race for it.
    let mut serve = Command::new(bin)
        .arg("serve")
        .env("MN_GRPC_PORT", "0")
        .env("MN_METRICS_PORT", "0")
        .env("MN_GRPC_AUTH_TOKEN", "t0ken")
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", &ns)
        .env("MN_HOME", dir.path())
        .env("MN_ADOPT_INTERVAL_MS", "200")
        .env("MN_TEMP_DIR", dir.path().join("runs"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let target =
        common::wait_grpc_target(|| std::fs::read_to_string(&log_path).unwrap_or_default());
    let remote = |args: &[&str]| -> Output {
        Command::new(bin)
            .arg("--target")
            .arg(&target)
            .args(args)
            .env("MN_GRPC_AUTH_TOKEN", "t0ken")
            .env_remove("MN_REDIS_URL")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let json = |args: &[&str]| -> Value {
        let out = remote(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let delayed = json(&[
        "schedule",
        "delay",
        "examples/research_flow",
        "--in",
        "1s",
        "--json",
    ]);
    let delayed_id = delayed["schedule_id"].as_str().unwrap().to_string();
    json(&[
        "trigger",
        "create",
        "examples/research_flow",
        "--event",
        "doc.added",
        "--json",
    ]);
    let args = [
        "event",
        "emit",
        "doc.added",
        "--payload-json",
        r#"{"doc": 1}"#,
        "--idempotency-key",
        "d1",
        "--json",
    ];
    let emitted = json(&args);
    assert_eq!(emitted["status"], "emitted");
    let triggered = emitted["job_id"].as_str().unwrap().to_string();
    assert_eq!(
        json(&args)["status"],
        "duplicate",
        "the key makes the emit idempotent over gRPC too"
    );

    let finished = |job: &str| {
        let out = remote(&["job", "inspect", job, "--json"]);
        out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout)
                .is_ok_and(|v| v["status"] == "completed")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = json(&["schedule", "status", &delayed_id, "--json"]);
        let delayed_job = status["job_id"].as_str().map(str::to_string);
        if delayed_job.as_deref().is_some_and(finished) && finished(&triggered) {
            assert_eq!(status["status"], "completed");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "runs did not finish: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let listed = json(&["schedule", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let events = json(&["event", "list", "--json"]);
    assert_eq!(events[0]["payload"]["doc"], 1);
    let history = remote(&["schedule", "events", &delayed_id]);
    assert_eq!(
        history.status.code(),
        Some(1),
        "history is local only, and says so"
    );
    assert!(String::from_utf8_lossy(&history.stderr).contains("not served over gRPC"));
    // SAFETY: kill(2) on the pid of a child we spawned.
    unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGTERM) };
    let status = serve.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.success(),
        "serve exits 0 on SIGTERM, got {status:?}:\n{log}"
    );
}
