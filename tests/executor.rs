//! Host-local executor runs against real processes. Every run is bounded by `run()`'s timeout.

mod common;

use common::exec::{err, ok};

use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_neuron::runtime::executor::{
    ArtifactDirs, ExecOutcome, ExecRequest, ExecSuccess, ExecutorConfig, ExecutorPools,
    FailureKind, run_executor,
};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A test sandbox: `payloads/` for bundle files, `out/` for files the command writes, `tmp/`
/// as the temp root (checked empty after each run).
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["payloads", "out", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        Env { dir }
    }
    fn payloads(&self) -> std::path::PathBuf {
        self.dir.path().join("payloads")
    }
    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join("out")
    }
    fn tmp(&self) -> std::path::PathBuf {
        self.dir.path().join("tmp")
    }

    /// A request whose config gets `OUT` in its environment.
    fn request(&self, mut config: Value, body: Value) -> ExecRequest {
        let env = config
            .as_object_mut()
            .expect("config object")
            .entry("environment")
            .or_insert(json!({}));
        env["OUT"] = json!(self.out().display().to_string());
        let config = ExecutorConfig::from_node_config(config.as_object().expect("object"))
            .expect("valid config");
        ExecRequest {
            job_id: "job-1".into(),
            agent_id: "worker".into(),
            agent_type: "executor".into(),
            template: "map".into(),
            config,
            payloads_dir: self.payloads(),
            message: json!({"envelope": {"message_id": "m1", "type": "task", "content_type": "application/json"},
                            "headers": {}, "body": body.clone(), "artifacts": [], "stream": null}),
            body,
            agent_state: json!({"seen": 2}),
            pools: Arc::new(ExecutorPools::new(4, [("gpu".to_string(), 2)])),
            first_run: false,
            temp_root: self.tmp(),
            extra_env: vec![],
            blobs: None,
            artifacts: None,
        }
    }

    /// Runs and checks the run directory was removed.
    async fn run(&self, req: ExecRequest) -> ExecOutcome {
        let outcome = tokio::time::timeout(Duration::from_secs(60), run_executor(req))
            .await
            .expect("run finished");
        // The runtime's own folder (`mirror_neuron_rt_*`, see `run_root`) stays; runs inside go.
        let left: Vec<_> = std::fs::read_dir(self.tmp())
            .expect("tmp")
            .flatten()
            .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| !p.ends_with(".lock"))
            .collect();
        assert!(left.is_empty(), "run dirs left behind: {left:?}");
        outcome
    }

    fn read_out(&self, name: &str) -> String {
        std::fs::read_to_string(self.out().join(name)).unwrap_or_default()
    }
}

#[tokio::test]
async fn list_command_is_not_shell_interpreted() {
    let env = Env::new();
    let req = env.request(
        json!({"command": ["printf", "%s|", "a b", "$HOME", "{job_id}"]}),
        json!(null),
    );
    let s = ok(env.run(req).await);
    assert_eq!(s.stdout, "a b|$HOME|job-1|");
    assert_eq!(
        (s.exit_code, s.attempts, s.pool.as_str()),
        (0, 1, "default")
    );
}

#[tokio::test]
async fn string_command_runs_through_bash() {
    let env = Env::new();
    let req = env.request(
        json!({"command": "printf '%s|' \"a b\" $((1+2)) | tr a A"}),
        json!(null),
    );
    assert_eq!(ok(env.run(req).await).stdout, "A b|3|");
}

#[tokio::test]
async fn staged_files_env_vars_and_placeholders() {
    let env = Env::new();
    let script = r#"set -e
        pwd -P > "$OUT/pwd"
        cd "$OUT"
        cp {input_file} input.json; cp {context_file} context.json; cp {message_file} message.json
        cp "$MIRROR_NEURON_BODY_FILE" body.bin
        echo "{job_id} {agent_id} {workdir}" > placeholders
        env | grep '^MIRROR_NEURON_' | sort > env.txt"#;
    let req = env.request(
        json!({"command": script, "workdir": "/sandbox/job/work"}),
        json!({"n": 7}),
    );
    ok(env.run(req).await);
    assert_eq!(
        serde_json::from_str::<Value>(&env.read_out("input.json")).expect("json"),
        json!({"n": 7})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&env.read_out("body.bin")).expect("json"),
        json!({"n": 7})
    );
    let message: Value = serde_json::from_str(&env.read_out("message.json")).expect("json");
    assert_eq!(message["envelope"]["message_id"], "m1");
    let context: Value = serde_json::from_str(&env.read_out("context.json")).expect("json");
    assert_eq!(context["agent_state"], json!({"seen": 2}));
    assert_eq!(
        (
            context["job_id"].as_str(),
            context["template_type"].as_str()
        ),
        (Some("job-1"), Some("map"))
    );
    assert!(context["timestamp"].is_string());
    let placeholders = env.read_out("placeholders");
    assert!(placeholders.starts_with("job-1 worker /"), "{placeholders}");
    assert!(
        placeholders.trim_end().ends_with("/work"),
        "workdir remapped into the run dir: {placeholders}"
    );
    assert!(env.read_out("pwd").trim_end().ends_with("/work"));
    let vars = env.read_out("env.txt");
    for name in [
        "INPUT_FILE",
        "CONTEXT_FILE",
        "MESSAGE_FILE",
        "BODY_FILE",
        "AGENT_TYPE=executor",
        "AGENT_TEMPLATE=map",
        "JOB_ID=job-1",
        "AGENT_ID=worker",
        "WORKDIR",
        "BODY_CONTENT_TYPE=application/json",
        "BODY_CONTENT_ENCODING=identity",
    ] {
        assert!(
            vars.contains(&format!("MIRROR_NEURON_{name}")),
            "missing {name} in {vars}"
        );
    }
}

#[tokio::test]
async fn ndjson_body_is_written_one_document_per_line() {
    let env = Env::new();
    let mut req = env.request(
        json!({"command": "cat {body_file}"}),
        json!([{"a": 1}, 2, "x"]),
    );
    req.message["envelope"]["content_type"] = json!("application/x-ndjson");
    assert_eq!(ok(env.run(req).await).stdout, "{\"a\":1}\n2\n\"x\"\n");
}

#[tokio::test]
async fn shell_placeholders_with_metacharacters_are_refused() {
    let env = Env::new();
    let mut req = env.request(json!({"command": "echo {agent_id}"}), json!(null));
    req.agent_id = "x; touch pwned".into();
    let f = err(env.run(req).await);
    assert_eq!(f.kind, FailureKind::Staging);
    assert!(f.error.contains("shell metacharacters"), "{}", f.error);
}

#[tokio::test]
async fn environment_and_pass_env_only_named_host_vars_leak() {
    let env = Env::new();
    // cargo sets both for test processes; only the named one may reach the child.
    assert!(std::env::var("CARGO_PKG_NAME").is_ok() && std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let config = json!({
        "command": ["env"],
        "pass_env": ["CARGO_PKG_NAME", "MN_TEST_SURELY_UNSET"],
        "environment": {"GREETING": "hi", "PORT": 8080, "MIRROR_NEURON_JOB_ID": "spoofed"},
    });
    let stdout = ok(env.run(env.request(config, json!(null))).await).stdout;
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(stdout.contains("CARGO_PKG_NAME=mirror-neuron"));
    assert!(stdout.contains("GREETING=hi") && stdout.contains("PORT=8080"));
    assert!(
        stdout.contains("MIRROR_NEURON_JOB_ID=job-1"),
        "runtime vars win over environment"
    );
    let allowed = [
        "PATH",
        "HOME",
        "LANG",
        "TMPDIR",
        "CARGO_PKG_NAME",
        "GREETING",
        "PORT",
        "OUT",
    ];
    for name in names {
        assert!(
            allowed.contains(&name) || name.starts_with("MIRROR_NEURON_"),
            "unexpected var {name} leaked"
        );
    }
}

#[tokio::test]
async fn uploads_copy_files_and_directories() {
    let env = Env::new();
    let p = env.payloads();
    std::fs::create_dir_all(p.join("lib/sub")).expect("mkdir");
    std::fs::write(p.join("script.sh"), "echo from-script\n").expect("write");
    std::fs::write(p.join("lib/a.txt"), "A\n").expect("write");
    std::fs::write(p.join("lib/sub/b.txt"), "B\n").expect("write");
    std::os::unix::fs::symlink(p.join("lib/a.txt"), p.join("lib/inside-link")).expect("symlink");
    let config = json!({
        "command": "bash script.sh && cat vendor/lib/a.txt vendor/lib/sub/b.txt vendor/lib/inside-link single/one.sh",
        "upload_paths": [{"source": "script.sh"}, {"source": "lib", "target": "vendor/lib"}],
        "upload_path": "./script.sh", "upload_as": "/sandbox/job/single/one.sh",
    });
    let s = ok(env.run(env.request(config, json!(null))).await);
    assert_eq!(s.stdout, "from-script\nA\nB\nA\necho from-script\n");
}

#[tokio::test]
async fn uploads_outside_payloads_are_refused() {
    let env = Env::new();
    let p = env.payloads();
    std::fs::write(env.dir.path().join("secret.txt"), "secret").expect("write");
    std::fs::create_dir(p.join("dir")).expect("mkdir");
    std::os::unix::fs::symlink(env.dir.path().join("secret.txt"), p.join("escape"))
        .expect("symlink");
    std::os::unix::fs::symlink(env.dir.path().join("secret.txt"), p.join("dir/escape"))
        .expect("symlink");
    let cases = [
        (json!([{"source": "../secret.txt"}]), "must not leave"),
        (
            json!([{"source": env.dir.path().join("secret.txt").display().to_string()}]),
            "relative",
        ),
        (json!([{"source": "escape"}]), "outside the bundle"),
        (json!([{"source": "dir"}]), "outside the bundle"),
        (json!([{"source": "missing.txt"}]), "does not exist"),
    ];
    for (uploads, expected) in cases {
        let req = env.request(
            json!({"command": "echo should-not-run", "upload_paths": uploads}),
            json!(null),
        );
        let f = err(env.run(req).await);
        assert_eq!(f.kind, FailureKind::Staging, "{uploads}");
        assert!(f.error.contains(expected), "{uploads}: {}", f.error);
        assert!(f.stdout.is_empty());
    }
    // A target outside the run dir is refused when the config is parsed (so at validation);
    // the runner still refuses one that reaches it some other way.
    let escaping =
        json!({"command": "true", "upload_paths": [{"source": "dir", "target": "../x"}]});
    let parsed = ExecutorConfig::from_node_config(escaping.as_object().expect("object"));
    assert!(
        parsed.as_ref().is_err_and(|e| e.contains("must not leave")),
        "{parsed:?}"
    );
    let mut req = env.request(
        json!({"command": "echo should-not-run", "upload_paths": [{"source": "dir", "target": "x"}]}),
        json!(null),
    );
    req.config.spec.uploads[0].target = Some("../x".into());
    let f = err(env.run(req).await);
    assert_eq!(f.kind, FailureKind::Staging);
    assert!(f.error.contains("must not leave"), "{}", f.error);
}

#[tokio::test]
async fn structured_stdout_is_parsed_after_log_lines() {
    let env = Env::new();
    let doc = json!({
        "emit_messages": [{"type": "chunk", "body": {"i": 1}}, {"to": "sink", "type": "done", "payload": 5,
                           "headers": {"h": "v"}, "class": "command"}],
        "events": [{"type": "progress", "payload": {"pct": 50}}],
        "next_state": {"cursor": 9},
        "complete_job": {"answer": 42},
    });
    let command = format!("echo 'starting up'; echo '{doc}'");
    let s = ok(env
        .run(env.request(json!({"command": command}), json!(null)))
        .await);
    let out = s.structured.expect("structured output");
    assert_eq!(out.emit_messages.len(), 2);
    assert_eq!(
        (
            out.emit_messages[0].message_type.as_str(),
            &out.emit_messages[0].body
        ),
        ("chunk", &json!({"i": 1}))
    );
    assert_eq!(out.emit_messages[1].to.as_deref(), Some("sink"));
    assert_eq!(out.emit_messages[1].body, json!(5));
    assert_eq!(out.emit_messages[1].headers.get("h"), Some(&json!("v")));
    assert_eq!(
        out.events,
        vec![("progress".to_string(), json!({"pct": 50}))]
    );
    assert_eq!(out.next_state, Some(json!({"cursor": 9})));
    assert_eq!(out.complete_job, Some(json!({"answer": 42})));
    let plain = ok(env
        .run(env.request(json!({"command": "echo '{\"other\": 1}'"}), json!(null)))
        .await);
    assert_eq!(plain.structured, None);
}

#[tokio::test]
async fn malformed_structured_output_is_a_clear_failure() {
    let env = Env::new();
    for (doc, expected) in [
        (r#"{"emit_messages": 5}"#, "emit_messages must be a list"),
        (
            r#"{"emit_messages": [{"body": 1}]}"#,
            "emit_messages[0].type",
        ),
        (r#"{"events": [{"type": 3}]}"#, "events[0].type"),
    ] {
        let f = err(env
            .run(env.request(json!({"command": format!("echo '{doc}'")}), json!(null)))
            .await);
        assert_eq!((f.kind, f.exit_code), (FailureKind::BadOutput, Some(0)));
        assert!(f.error.contains(expected), "{}", f.error);
    }
}

#[tokio::test]
async fn nonzero_exit_is_a_failure_with_stderr() {
    let env = Env::new();
    let f = err(env
        .run(env.request(
            json!({"command": "echo partial; echo oops >&2; exit 3"}),
            json!(null),
        ))
        .await);
    assert_eq!(
        (f.kind, f.exit_code, f.attempts, f.transient),
        (FailureKind::Exit, Some(3), 1, false)
    );
    assert_eq!(
        (f.stdout.as_str(), f.stderr.as_str()),
        ("partial\n", "oops\n")
    );
    assert!(
        f.error.contains("status 3") && f.error.contains("oops"),
        "{}",
        f.error
    );
    let json = serde_json::to_value(&f).expect("serialisable");
    assert_eq!(json["kind"], "exit");
}

#[tokio::test]
async fn missing_program_is_a_spawn_failure() {
    let env = Env::new();
    let f = err(env
        .run(env.request(json!({"command": ["/nonexistent/program"]}), json!(null)))
        .await);
    assert_eq!((f.kind, f.transient), (FailureKind::Spawn, false));
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let env = Env::new();
    // The grandchild ignores SIGTERM, so only the SIGKILL escalation can end it. It is found
    // by name: inside the step's pid namespace, `$!` is not a host pid.
    let name = format!("mn-grandchild-{}-{}", std::process::id(), line!());
    let command = format!(
        r#"(trap '' TERM; exec -a {name} sleep 1000) & echo started > "$OUT/grandchild"; sleep 1000"#
    );
    let started = Instant::now();
    let f = err(env
        .run(env.request(
            json!({"command": command, "timeout_seconds": 1}),
            json!(null),
        ))
        .await);
    let elapsed = started.elapsed();
    assert_eq!(f.kind, FailureKind::Timeout);
    assert_eq!(f.error, "command timed out after 1s");
    assert!(
        elapsed < Duration::from_secs(4),
        "timeout + grace + slack, took {elapsed:?}"
    );
    assert_eq!(env.read_out("grandchild").trim(), "started");
    let pids = common::pids_named(&name);
    let mut survivors = Vec::new();
    for pid in pids {
        if !wait_gone(pid, Duration::from_secs(3)).await {
            survivors.push(pid);
        }
    }
    assert!(
        survivors.is_empty(),
        "grandchild survived the timeout: {survivors:?}"
    );
    assert!(common::pids_named(&name).is_empty());
}

/// Whether `pid` is gone (or a zombie awaiting its reaper) within `limit`.
async fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

#[tokio::test]
async fn output_is_capped_and_the_child_is_drained() {
    let env = Env::new();
    let cap = 64 * 1024;
    let config =
        json!({"command": "yes | head -c 200000000; echo done >&2", "max_output_bytes": cap});
    let started = Instant::now();
    let s = ok(env.run(env.request(config, json!(null))).await);
    assert!(s.truncated);
    assert!(s.stdout.starts_with("y\ny\n"));
    assert!(s.stdout.ends_with("[truncated by host local output cap]"));
    assert!(s.stdout.len() <= cap + 64, "kept {} bytes", s.stdout.len());
    assert_eq!(
        s.stderr, "done\n",
        "the child ran to completion instead of blocking on a full pipe"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // Keeping all 200 MB would show in the peak RSS of this test process.
    let peak_kib = peak_rss_kib();
    assert!(peak_kib < 150 * 1024, "peak RSS {peak_kib} KiB");
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("number")
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    let env = Env::new();
    let command = r#"echo x >> "$OUT/attempts"
        if [ "$(wc -l < "$OUT/attempts")" -lt 3 ]; then echo "upstream: Connection reset by peer" >&2; exit 1; fi
        echo done"#;
    let config = json!({"command": command, "max_attempts": 5, "retry_backoff_ms": 20});
    let s = ok(env.run(env.request(config, json!(null))).await);
    assert_eq!((s.attempts, s.stdout.as_str()), (3, "done\n"));
    assert_eq!(env.read_out("attempts").lines().count(), 3);
}

#[tokio::test]
async fn a_retry_starts_with_an_empty_artifact_folder() {
    let env = Env::new();
    let artifacts = env.dir.path().join("artifacts-out");
    std::fs::create_dir_all(artifacts.join("old")).expect("mkdir");
    std::fs::write(artifacts.join("old/left.txt"), "from before").expect("write");
    // Attempt 1 leaves a half-written file and fails transiently; attempt 2 writes another.
    let command = r#"echo x >> "$OUT/attempts"
        ls -A "$MN_ARTIFACT_DIR" >> "$OUT/seen"
        if [ "$(wc -l < "$OUT/attempts")" -lt 2 ]; then echo partial > "$MN_ARTIFACT_DIR/half.bin"; echo "connection reset" >&2; exit 1; fi
        echo whole > "$MN_ARTIFACT_DIR/whole.bin""#;
    let config = json!({"command": command, "max_attempts": 3, "retry_backoff_ms": 1});
    let mut req = env.request(config, json!(null));
    req.extra_env = vec![("MN_ARTIFACT_DIR".into(), artifacts.display().to_string())];
    req.artifacts = Some(ArtifactDirs {
        input: env.dir.path().join("artifacts-in"),
        output: artifacts.clone(),
    });
    let s = ok(env.run(req).await);
    assert_eq!(s.attempts, 2);
    // Each attempt found the folder empty; only the successful attempt's file is left.
    assert_eq!(env.read_out("seen"), "");
    let left: Vec<String> = std::fs::read_dir(&artifacts)
        .expect("folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["whole.bin"]);
}

#[tokio::test]
async fn terminal_failures_and_exhausted_attempts_stop() {
    let env = Env::new();
    let config = json!({"command": "echo x >> \"$OUT/a\"; echo boom >&2; exit 2", "max_attempts": 3, "retry_backoff_ms": 1});
    let f = err(env.run(env.request(config, json!(null))).await);
    assert_eq!((f.attempts, f.transient), (1, false));
    assert_eq!(env.read_out("a").lines().count(), 1);

    let config = json!({"command": "echo x >> \"$OUT/b\"; echo 'service unavailable' >&2; exit 1",
                        "max_attempts": 2, "retry_backoff_ms": 1});
    let f = err(env.run(env.request(config, json!(null))).await);
    assert_eq!((f.attempts, f.transient), (2, true));
    assert_eq!(env.read_out("b").lines().count(), 2);
}

#[tokio::test]
async fn pool_capacity_bounds_concurrency() {
    let env = Env::new();
    let command =
        r#"echo "s $(date +%s%N)" >> "$OUT/log"; sleep 0.5; echo "e $(date +%s%N)" >> "$OUT/log""#;
    let config = json!({"command": command, "pool": "gpu"});
    let first = env.request(config, json!(null));
    let started = Instant::now();
    let runs = (0..6).map(|_| run_executor(first.clone()));
    let outcomes = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(runs))
        .await
        .expect("done");
    for o in outcomes {
        assert_eq!(ok(o).pool, "gpu");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "three waves of two"
    );
    let mut marks: Vec<(u128, i32)> = env
        .read_out("log")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(kind, t)| (t.parse().expect("time"), if kind == "s" { 1 } else { -1 }))
        .collect();
    assert_eq!(marks.len(), 12);
    marks.sort();
    let peak = marks
        .iter()
        .scan(0, |live, (_, d)| {
            Some({
                *live += d;
                *live
            })
        })
        .max();
    assert_eq!(peak, Some(2));
}

#[tokio::test]
async fn pool_errors_fail_before_running() {
    let env = Env::new();
    for (config, expected) in [
        (
            json!({"command": "true", "pool": "nope"}),
            "unknown executor pool \"nope\"",
        ),
        (
            json!({"command": "true", "pool": "gpu", "pool_slots": 3}),
            "requested 3 executor slots but pool capacity is 2",
        ),
    ] {
        let f = err(env.run(env.request(config, json!(null))).await);
        assert_eq!((f.kind, f.attempts), (FailureKind::Pool, 0));
        assert_eq!(f.error, expected);
    }
}

#[tokio::test]
async fn overlong_command_is_refused() {
    let env = Env::new();
    let mut req = env.request(json!({"command": "echo {input_file}"}), json!(null));
    req.config.max_command_length = 10;
    let f = err(env.run(req).await);
    assert!(f.error.contains("MN_MAX_COMMAND_LENGTH"), "{}", f.error);
}

#[tokio::test]
async fn output_payload_shape() {
    let env = Env::new();
    let s = ok(env
        .run(env.request(json!({"command": "echo hi"}), json!({"q": 1})))
        .await);
    let payload = s.output_payload("worker", &json!({"q": 1}));
    assert_eq!(payload["agent_id"], "worker");
    assert_eq!(payload["input"], json!({"q": 1}));
    assert_eq!(payload["sandbox"]["runner"], "host_local");
    assert_eq!(payload["sandbox"]["stdout"], "hi\n");
    assert_eq!(payload["sandbox"]["attempts"], 1);
    let round: ExecSuccess =
        serde_json::from_value(serde_json::to_value(&s).expect("ser")).expect("de");
    assert_eq!(round, s);
}

#[tokio::test]
async fn a_large_output_is_spooled_to_the_blob_store_not_kept_in_memory() {
    let env = Env::new();
    let blobs = mirror_neuron::runtime::blobs::BlobStore::new(env.dir.path().join("blobs"));
    let mut req = env.request(
        json!({"command": "head -c 200000 /dev/zero | tr '\\0' q; echo err >&2"}),
        json!(null),
    );
    req.blobs = Some(blobs.clone());
    let s = ok(env.run(req).await);
    let blob = s
        .stdout_blob
        .clone()
        .expect("stdout went to the blob store");
    assert_eq!(blob.size, 200_000);
    assert_eq!(s.stdout.len(), 1024, "only the preview stays in the result");
    assert_eq!(
        blobs.get(&blob.sha256).expect("stored"),
        vec![b'q'; 200_000]
    );
    assert_eq!((s.stderr.as_str(), &s.stderr_blob), ("err\n", &None));
    assert_eq!(
        blobs.list().unwrap(),
        vec![blob.sha256.clone()],
        "no spool left"
    );
    let payload = s.output_payload("worker", &json!(null));
    assert_eq!(payload["sandbox"]["stdout"]["$blob"]["size"], 200_000);
    assert_eq!(s.stored_bytes(), 200_004);
}

#[tokio::test]
async fn structured_output_larger_than_the_inline_limit_is_still_parsed() {
    let env = Env::new();
    let blobs = mirror_neuron::runtime::blobs::BlobStore::new(env.dir.path().join("blobs"));
    let script = r#"python3 -c 'import json; print("log line"); print(json.dumps({"emit_messages": [{"type": "big", "body": {"text": "b" * 100000}}]}))'"#;
    let mut req = env.request(json!({ "command": script }), json!(null));
    req.blobs = Some(blobs);
    let s = ok(env.run(req).await);
    let structured = s.structured.expect("parsed from the spooled stdout");
    assert_eq!(
        structured.emit_messages[0].body["text"]
            .as_str()
            .map(str::len),
        Some(100_000)
    );
}

#[tokio::test]
async fn a_failed_run_keeps_only_a_preview_and_leaves_no_spool() {
    let env = Env::new();
    let blobs = mirror_neuron::runtime::blobs::BlobStore::new(env.dir.path().join("blobs"));
    let mut req = env.request(
        json!({"command": "head -c 200000 /dev/zero | tr '\\0' f; exit 3"}),
        json!(null),
    );
    req.blobs = Some(blobs.clone());
    let f = err(env.run(req).await);
    assert_eq!(f.exit_code, Some(3));
    assert_eq!(f.stdout.len(), 1024);
    let left: Vec<_> = std::fs::read_dir(blobs.root())
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert_eq!(left, vec![0], "the spool of a failed run is removed");
}
