//! `mirror-neuron validate` refuses what a run would refuse (issue 13, item 4): each case is
//! a bundle the runtime fails on, and validate must exit 2 naming the field by its path.
//! No Redis: validating a bundle touches only the filesystem.

use std::process::{Command, Output};

use serde_json::{Value, json};

/// A router `r` (root) feeding executor `w` (index 1) that runs `payloads/worker/run.py`;
/// `tweak` edits the manifest before it is written.
fn bundle(tweak: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let mut manifest = json!({
        "manifest_version": "1.0", "graph_id": "g",
        "nodes": [
            {"node_id": "r", "agent_type": "router", "role": "root"},
            {"node_id": "w", "agent_type": "executor",
             "config": {"command": "python3 run.py", "upload_path": "worker", "workdir": "/sandbox/job/worker"}},
        ],
        "edges": [{"from_node": "r", "to_node": "w", "message_type": "go"}],
    });
    tweak(&mut manifest);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("payloads/worker")).expect("payloads");
    std::fs::write(dir.path().join("payloads/worker/run.py"), "print(1)").expect("script");
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).expect("manifest");
    dir
}

/// The executor's config object.
fn config(m: &mut Value) -> &mut serde_json::Map<String, Value> {
    m["nodes"][1]["config"].as_object_mut().expect("config")
}

fn validate(dir: &tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"));
    cmd.arg("validate").arg(dir.path()).args(extra);
    // The pool cases assume this host's default pools (`default` with 4 slots).
    cmd.env_remove("MN_EXECUTOR_MAX_CONCURRENCY")
        .env_remove("MN_EXECUTOR_POOL_CAPACITIES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mirror-neuron")
}

/// Validates, expects exit 2, and returns stdout (one `path: message` per line).
fn refused(dir: &tempfile::TempDir) -> String {
    let out = validate(dir, &[], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn assert_line(text: &str, prefix: &str) {
    assert!(
        text.lines().any(|l| l.starts_with(prefix)),
        "no line starts with {prefix:?} in:\n{text}"
    );
}

#[test]
fn the_baseline_bundle_is_valid() {
    let out = validate(&bundle(|_| {}), &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid");
    assert!(out.stderr.is_empty(), "no warnings: {out:?}");
}

#[test]
fn a_misspelt_command_is_a_missing_command_and_a_warning() {
    let dir = bundle(|m| {
        let c = config(m);
        let command = c.remove("command").expect("command");
        c.insert("comand".into(), command);
    });
    let out = validate(&dir, &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_line(
        &text,
        "nodes[1].config.command: executor requires config.command",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: nodes[1].config.comand: unknown key \"comand\"; did you mean \"command\"?"
        ),
        "{stderr}"
    );
}

#[test]
fn a_timeout_that_is_not_a_number_is_refused() {
    let dir = bundle(|m| {
        config(m).insert("timeout_seconds".into(), json!("sixty"));
    });
    assert_line(
        &refused(&dir),
        "nodes[1].config.timeout_seconds: timeout_seconds must be a number > 0, got \"sixty\"",
    );
}

#[test]
fn an_upload_target_outside_the_run_dir_is_refused() {
    let dir = bundle(|m| {
        config(m).insert("upload_as".into(), json!("../../.."));
    });
    assert_line(
        &refused(&dir),
        "nodes[1].config.upload_as: upload_as must not leave its directory, got \"../../..\"",
    );
}

#[test]
fn a_workdir_outside_the_run_dir_is_refused() {
    let dir = bundle(|m| {
        config(m).insert("workdir".into(), json!("../.."));
    });
    assert_line(
        &refused(&dir),
        "nodes[1].config.workdir: workdir must not leave its directory, got \"../..\"",
    );
}

#[test]
fn more_slots_than_the_pool_holds_is_refused_as_the_pool_would() {
    let dir = bundle(|m| {
        config(m).insert("pool_slots".into(), json!(5));
    });
    assert_line(
        &refused(&dir),
        "nodes[1].config.pool_slots: requested 5 executor slots but pool capacity is 4",
    );
    // The same bundle fits a host whose default pool is larger.
    let out = validate(&dir, &[], &[("MN_EXECUTOR_MAX_CONCURRENCY", "8")]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let dir = bundle(|m| {
        config(m).insert("pool".into(), json!("gpu"));
    });
    assert_line(
        &refused(&dir),
        "nodes[1].config.pool: unknown executor pool \"gpu\"",
    );
}

#[test]
fn an_unknown_update_strategy_is_refused() {
    let dir = bundle(|m| {
        m["policies"] = json!({"update": {"strategy": "big-bang", "max_parallel": "two"}});
    });
    let text = refused(&dir);
    assert_line(&text, "policies.update.strategy: ");
    assert_line(&text, "policies.update.max_parallel: ");
    let dir = bundle(|m| {
        m["policies"] = json!({"update": {"strategy": "canary", "auto_promote": true}});
    });
    assert_line(
        &refused(&dir),
        "policies.update.auto_promote: policies.update.auto_promote requires canary > 0 for canary deployments",
    );
}

#[test]
fn a_bad_cron_in_the_schedule_is_refused() {
    let dir = bundle(|m| {
        m["schedule"] = json!({"kind": "periodic", "crons": ["@hourly", "*/0 * * *"]});
    });
    assert_line(&refused(&dir), "schedule.crons[1]: ");
    let dir = bundle(|m| {
        m["schedule"] = json!({"cron": "@daily", "catchup_limit": 0});
    });
    assert_line(&refused(&dir), "schedule.catchup_limit: ");
}

#[test]
fn a_bad_trigger_filter_operator_is_refused() {
    let dir = bundle(|m| {
        m["triggers"] = json!([{"name": "t", "event_type": "uploaded", "filters": {"path": {"starts_with": "/x"}}}]);
    });
    assert_line(
        &refused(&dir),
        "triggers[0].filters.path.starts_with: unknown filter operator \"starts_with\"",
    );
}

#[test]
fn a_near_miss_key_is_a_warning_not_an_error() {
    let dir = bundle(|m| {
        config(m).insert("output_mesage_type".into(), json!("done"));
    });
    let out = validate(&dir, &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let warning = "nodes[1].config.output_mesage_type: unknown key \"output_mesage_type\"; did you mean \"output_message_type\"?";
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("warning: {warning}")),
        "{out:?}"
    );
    let out = validate(&dir, &["--json"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(
        report,
        json!({"valid": true, "errors": [], "warnings": [warning]})
    );
}

/// A secret-like `pass_env` name is not an error (real manifests pass their API keys that
/// way), but `validate` says which setting a serving node needs to pass it.
#[test]
fn a_secret_like_pass_env_name_warns_unless_granted() {
    let dir = bundle(|m| {
        config(m).insert("pass_env".into(), json!(["PATH", "GEMINI_API_KEY"]));
    });
    let out = validate(&dir, &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: nodes[1].config.pass_env[1]: GEMINI_API_KEY looks like a secret")
            && stderr.contains("MN_EXECUTOR_SECRET_ENV"),
        "{stderr}"
    );
    let granted = validate(&dir, &[], &[("MN_EXECUTOR_SECRET_ENV", "GEMINI_API_KEY")]);
    assert_eq!(granted.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&granted.stderr).contains("GEMINI_API_KEY"),
        "{granted:?}"
    );
}
