//! `job history`, `job replay` and `job export`, driven through the binary against a real
//! Redis: an export replayed offline equals the replay from Redis, a replay to the end equals
//! the live views, and a replay to an earlier point shows the queues and in-flight messages
//! the owner had then. (Every example in `examples/` is also replayed against its live views
//! by `tests/examples.rs`.)

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

/// One namespace on the test Redis, and the binary pointed at it.
struct Cli {
    namespace: String,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            namespace: common::namespace(),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"));
        cmd.env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", &self.namespace)
            .env_remove("MN_GRPC_TARGET")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .expect("run mirror-neuron")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{args:?} printed non-JSON ({e}): {text}"))
    }
}

/// A bundle whose job completes with one dead letter: `stray` emits a type no edge carries.
fn dead_letter_bundle(dir: &Path) {
    std::fs::create_dir_all(dir.join("payloads")).expect("payloads dir");
    let manifest = json!({
        "manifest_version": "1.0",
        "graph_id": "replay_dead_letter",
        "entrypoints": ["ingress", "stray"],
        "initial_inputs": {"ingress": [{"n": 1}], "stray": [{"n": 2}]},
        "nodes": [
            {"node_id": "ingress", "agent_type": "router", "config": {"emit_type": "work"}},
            {"node_id": "stray", "agent_type": "router", "config": {"emit_type": "nowhere"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
        ],
        "edges": [
            {"edge_id": "a", "from_node": "ingress", "to_node": "sink", "message_type": "work"}
        ]
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest");
}

/// Runs the dead-letter bundle to its end; returns the job id.
fn run_dead_letter_job(cli: &Cli, dir: &Path) -> String {
    dead_letter_bundle(dir);
    let job = cli.json(&["run", dir.to_str().expect("utf-8 path"), "--json"]);
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["counters"]["dead_letters"], 1, "{job}");
    job["job_id"].as_str().expect("job id").to_string()
}

#[test]
fn export_then_replay_file_equals_replay_from_redis() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let job_id = run_dead_letter_job(&cli, &dir.path().join("bundle"));
    let file = dir.path().join("history.jsonl");
    let file_s = file.to_str().expect("utf-8 path");
    cli.ok(&["job", "export", &job_id, "-o", file_s]);

    // Every line is an envelope with its payload, in seq order.
    let text = std::fs::read_to_string(&file).expect("read export");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let inspect = cli.json(&["job", "inspect", &job_id, "--json"]);
    assert_eq!(
        lines.len() as u64,
        inspect["last_seq"].as_u64().expect("seq")
    );
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64 + 1);
        assert_eq!(line["job_id"], job_id.as_str());
        assert!(line["payload"]["type"].is_string(), "{line}");
    }

    // Offline: neither Redis (a closed port) nor a server (a bogus target) is touched.
    let offline = |extra: &[&str]| -> Value {
        let mut args = vec!["job", "replay", "--file", file_s, "--json"];
        args.extend_from_slice(extra);
        let out = cli
            .command()
            .env("MN_REDIS_URL", "redis://127.0.0.1:1/0")
            .env("MN_GRPC_TARGET", "127.0.0.1:1")
            .args(&args)
            .output()
            .expect("run mirror-neuron");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON report")
    };
    for point in [&[][..], &["--until", "6"][..], &["--until", "1"][..]] {
        let mut args = vec!["job", "replay", &job_id, "--json"];
        args.extend_from_slice(point);
        assert_eq!(offline(point), cli.json(&args), "replay {point:?}");
    }

    // To the end, the replay is the live job: its view, and the dead letter.
    let end = offline(&[]);
    common::assert_view_is_record(&end["view"], &inspect);
    assert_eq!(end["status"], "completed");
    let dead = cli.json(&["job", "dead-letters", &job_id, "--json"]);
    assert_eq!(
        common::dead_letter_keys(&end["dead_letters"]),
        common::dead_letter_keys(&dead)
    );
    assert_eq!(end["dead_letters"][0]["agent_id"], "stray");

    // A file of another job, or a broken file, is refused with a clear error.
    let wrong = cli.run(&["job", "replay", "other-job", "--file", file_s]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("is an export of job"));
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        format!("{}\n{{not json\n", text.lines().next().unwrap_or_default()),
    )
    .expect("write");
    let out = cli.run(&["job", "replay", "--file", broken.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn replay_midway_shows_queues_and_inflight_messages() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let job_id = run_dead_letter_job(&cli, dir.path());
    let history: Vec<Value> = cli
        .ok(&["job", "history", &job_id, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    // The point where the inputs are queued and no agent has taken one yet (a built-in step
    // takes its message and finishes it in one event).
    let queued = history
        .iter()
        .find(|e| e["type"] == "inputs_queued")
        .expect("the inputs were queued");
    let seq = queued["seq"].as_u64().expect("seq").to_string();
    let r = cli.json(&["job", "replay", &job_id, "--until", &seq, "--json"]);
    assert_eq!(r["seq"].as_u64().map(|s| s.to_string()), Some(seq));
    assert_eq!(r["status"], "running");
    let agent = |id: &str| -> Value {
        r["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["agent_id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("agent {id} in {r}"))
    };
    let ingress = agent("ingress");
    assert_eq!(ingress["status"], "queued");
    assert_eq!(ingress["inflight"], json!([]));
    assert_eq!(ingress["queue_length"], 1);
    assert_eq!(ingress["queue"][0]["message_id"], "seed-ingress-0");
    let stray = agent("stray");
    assert_eq!(stray["queue_length"], 1);
    assert_eq!(stray["queue"][0]["body"], json!({"n": 2}));
    assert_eq!(agent("sink")["processed"], 0);
    assert_eq!(r["dead_letters"], json!([]));

    // --at before the first event: nothing has happened yet.
    let before = cli.json(&[
        "job",
        "replay",
        &job_id,
        "--at",
        "2000-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(before["seq"], 0);
    assert_eq!(before["status"], Value::Null);
    // --at the time of the last event: the whole history.
    let last_time = history
        .last()
        .and_then(|e| e["time"].as_str())
        .expect("time");
    let at_end = cli.json(&["job", "replay", &job_id, "--at", last_time, "--json"]);
    assert_eq!(at_end["seq"], history.len());
    assert_eq!(at_end["status"], "completed");
}

#[test]
fn history_lists_every_event_with_its_epoch() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let job_id = run_dead_letter_job(&cli, dir.path());
    let lines: Vec<Value> = cli
        .ok(&["job", "history", &job_id, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let types: Vec<&str> = lines.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"job_submitted"));
    assert_eq!(types.last(), Some(&"job_completed"));
    // The stray router's emit had no edge: a dead letter, kept in its step.
    assert!(
        lines.iter().any(|e| e["type"] == "agent_stepped"
            && e["summary"]
                .as_str()
                .is_some_and(|s| s.contains("dead-lettered"))),
        "a step with a dead letter"
    );
    // A step's data is spelled out for people, not in its one-letter stored form.
    let stray = lines
        .iter()
        .find(|e| e["type"] == "agent_stepped" && e["data"]["agent_id"] == "stray")
        .expect("the stray router's step");
    assert_eq!(stray["data"]["emits"][0]["type"], "nowhere");
    assert!(
        stray["data"]["emits"][0]["dead_letter_reason"].is_string(),
        "{stray}"
    );
    for (i, e) in lines.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert!(e["time"].is_string() && e["epoch"].is_u64(), "{e}");
    }
    // Events written under the lease carry its epoch; the submission was written before any.
    assert_eq!(lines[0]["epoch"], 0);
    assert_eq!(lines.last().map(|e| e["epoch"].clone()), Some(json!(1)));

    let table = cli.ok(&["job", "history", &job_id]);
    let header = table.lines().next().unwrap_or_default();
    for column in ["SEQ", "TIME", "TYPE", "EPOCH", "SUMMARY"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(table.contains("no outbound edge from \"stray\""), "{table}");
    assert_eq!(table.lines().count(), lines.len() + 1);
}

#[test]
fn replay_errors_are_clear() {
    let cli = Cli::new();
    let missing = cli.run(&["job", "replay", "no-such-job"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("was not found"));
    let bad_time = cli.run(&["job", "replay", "no-such-job", "--at", "yesterday"]);
    assert_eq!(bad_time.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_time.stderr).contains("RFC 3339"));
    // --until and --at together are a usage error (clap exits 2).
    let both = cli.run(&[
        "job",
        "replay",
        "j",
        "--until",
        "3",
        "--at",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(both.status.code(), Some(2));
    let no_file = cli.run(&["job", "replay", "--file", "/nonexistent/mn-export.jsonl"]);
    assert_eq!(no_file.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_file.stderr).contains("cannot read"));
}
