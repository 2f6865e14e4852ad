//! The `sandbox` runner (bubblewrap) with real processes, through the executor's own path
//! (`run_executor`). Skipped, with the reason printed, only where `bwrap` is not installed:
//! CI installs it (`.ci/run`).

mod common;

use common::exec::{connect_script, err, ok};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mirror_neuron::domain::manifest::parse_manifest;
use mirror_neuron::runtime::executor::sandbox::limits;
use mirror_neuron::runtime::executor::{
    ExecOutcome, ExecRequest, ExecutorConfig, ExecutorPools, FailureKind, run_executor,
};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Whether bubblewrap is on `PATH`; prints why a test is skipped when not.
fn have_bwrap(test: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|d| d.join("bwrap").is_file());
    if !found {
        eprintln!("skipping {test}: bubblewrap (bwrap) is not installed");
    }
    found
}

/// A sandboxed executor request: `config` plus `runtime_driver: sandbox`, run dirs under a
/// fresh temp root.
fn request(temp_root: &Path, mut config: Value) -> ExecRequest {
    config["runtime_driver"] = json!("sandbox");
    let config = ExecutorConfig::from_node_config(config.as_object().expect("object"))
        .expect("valid config");
    ExecRequest {
        job_id: "job-1".into(),
        agent_id: "worker".into(),
        agent_type: "executor".into(),
        template: "generic".into(),
        config,
        payloads_dir: temp_root.join("payloads"),
        message: json!({"envelope": {"message_id": "m1", "type": "task"}, "headers": {},
                        "body": {"n": 1}, "artifacts": [], "stream": null}),
        body: json!({"n": 1}),
        agent_state: Value::Null,
        pools: Arc::new(ExecutorPools::new(4, [])),
        first_run: false,
        temp_root: temp_root.to_path_buf(),
        extra_env: vec![],
        blobs: None,
        artifacts: None,
    }
}

async fn run(config: Value) -> ExecOutcome {
    let tmp = tempfile::tempdir().expect("temp dir");
    let req = request(tmp.path(), config);
    tokio::time::timeout(Duration::from_secs(60), run_executor(req))
        .await
        .expect("run finished")
}

#[tokio::test]
async fn a_sandboxed_step_cannot_reach_a_loopback_port_of_the_host() {
    if !have_bwrap("loopback") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let s = ok(run(json!({"command": connect_script(port)})).await);
    assert_eq!(s.stdout.trim(), "refused", "stderr: {}", s.stderr);
    assert_eq!(s.runner, "sandbox");
    assert_eq!(
        s.output_payload("worker", &json!({}))["sandbox"]["runner"],
        "sandbox"
    );
    assert!(listener.accept().is_err(), "the listener saw a connection");
}

#[tokio::test]
async fn with_egress_allowed_it_can_connect() {
    if !have_bwrap("egress") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let s = ok(run(json!({
        "command": connect_script(port),
        "sandbox": {"network": "host"}
    }))
    .await);
    assert_eq!(s.stdout.trim(), "connected", "stderr: {}", s.stderr);
}

#[tokio::test]
async fn it_writes_only_to_its_run_directory_and_still_produces_its_result() {
    if !have_bwrap("writes") {
        return;
    }
    // One place under /tmp (the sandbox has a private /tmp) and one outside it.
    let in_tmp = tempfile::tempdir().expect("temp dir");
    let elsewhere = TempDir::new_in(env!("CARGO_TARGET_TMPDIR")).expect("target temp dir");
    let targets: Vec<PathBuf> = [in_tmp.path(), elsewhere.path()]
        .iter()
        .map(|d| d.join("escaped.txt"))
        .collect();
    let mut script = String::new();
    for t in &targets {
        script += &format!("echo x > {} 2>/dev/null; ", t.display());
    }
    script += "if touch /usr/mn_escape 2>/dev/null; then echo usr-writable; fi; \
               echo result > here.txt && cat here.txt && cat /sandbox/job/here.txt && \
               cat \"$MIRROR_NEURON_INPUT_FILE\"";
    let s = ok(run(json!({"command": script})).await);
    for t in &targets {
        assert!(!t.exists(), "the step wrote {}", t.display());
    }
    assert!(!Path::new("/usr/mn_escape").exists());
    // The run dir is also at `/sandbox/job`, where OpenShell puts it.
    assert_eq!(
        s.stdout, "result\nresult\n{\"n\":1}",
        "stderr: {}",
        s.stderr
    );
}

#[tokio::test]
async fn it_sees_only_its_own_processes() {
    if !have_bwrap("processes") {
        return;
    }
    let me = std::process::id();
    let s = ok(run(json!({
        "command": format!(
            "ls /proc | grep -c '^[0-9]'; if [ -e /proc/{me}/cmdline ] && \
             grep -q sandbox /proc/{me}/cmdline; then echo sees-runtime; fi"
        )
    }))
    .await);
    let count: usize = s
        .stdout
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("a count, got {:?} ({})", s.stdout, s.stderr));
    // bubblewrap's init, bash, ls and grep.
    assert!(count <= 5, "the step sees {count} processes");
    assert!(!s.stdout.contains("sees-runtime"));
}

#[tokio::test]
async fn a_step_beyond_its_memory_limit_fails_naming_the_limit() {
    if !have_bwrap("memory") {
        return;
    }
    // Touches every byte (a zero-filled buffer could stay unbacked).
    let f = err(run(json!({
        "command": ["python3", "-c", "b = b'x' * (400 * 1024 * 1024); print(len(b))"],
        "resources": {"memory_mb": 64}
    }))
    .await);
    assert!(
        f.error
            .contains("memory limit of 64 MB (resources.memory_mb)"),
        "{f:?}"
    );
    // A memory cgroup reports the kill; RLIMIT_AS (no writable cgroup) only fails allocations.
    assert!(
        matches!(f.kind, FailureKind::Memory | FailureKind::Exit),
        "{f:?}"
    );
    eprintln!("memory limit enforced as {:?}: {}", f.kind, f.error);
    // The same step within its limit runs.
    let s = ok(run(json!({
        "command": ["python3", "-c", "b = b'x' * (4 * 1024 * 1024); print(len(b))"],
        "resources": {"memory_mb": 64}
    }))
    .await);
    assert_eq!(s.stdout.trim(), "4194304");
}

#[test]
fn validation_refuses_an_egress_allow_list_naming_the_field() {
    let manifest = json!({
        "manifest_version": "1.0",
        "graph_id": "g",
        "entrypoints": ["work"],
        "nodes": [{
            "node_id": "work", "agent_type": "executor",
            "config": {
                "command": "true",
                "runner_module": "MirrorNeuron.Runner.OpenShell",
                "sandbox": {"network": ["api.example.com"]}
            }
        }],
        "edges": []
    });
    let errs = parse_manifest(&manifest).expect_err("refused");
    let e = errs
        .iter()
        .find(|e| e.path.ends_with("config.sandbox.network"))
        .unwrap_or_else(|| panic!("no error on sandbox.network: {errs:?}"));
    assert!(e.message.contains("cannot enforce"), "{e}");
}

/// The fallback where no memory cgroup is writable: the step runs under `prlimit --as` inside
/// the sandbox, so an allocation beyond the limit fails in the step (run here directly on the
/// bubblewrap command line the runner builds).
#[test]
fn the_rlimit_fallback_fails_allocations_beyond_the_limit() {
    use mirror_neuron::domain::manifest::executor::Network;
    use mirror_neuron::runtime::executor::sandbox::argv::{Layout, bwrap_args};
    if !have_bwrap("rlimit") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |mb: u64| {
        let layout = Layout {
            run_dir: dir.path(),
            cwd: dir.path(),
            network: Network::None,
            address_space: Some(64 << 20),
            artifacts: None,
        };
        let script = format!("b = b'x' * ({mb} * 1024 * 1024); print(len(b))");
        std::process::Command::new("bwrap")
            .args(bwrap_args(&layout, "python3", &["-c".into(), script]))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .output()
            .expect("bwrap runs")
    };
    let big = run(400);
    assert!(!big.status.success());
    assert!(
        String::from_utf8_lossy(&big.stderr).contains("MemoryError"),
        "{big:?}"
    );
    let small = run(4);
    assert!(small.status.success(), "{small:?}");
}

/// Without a working bubblewrap a sandboxed step fails, saying why; it never runs on the host.
/// (A local `run` of the real binary, so the probe sees this process's `MN_BWRAP_BIN`.)
#[test]
fn without_bubblewrap_a_sandboxed_step_fails_instead_of_running_on_the_host() {
    let dir = TempDir::new_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let marker = dir.path().join("ran-on-the-host");
    let root = dir.path().join("bundle");
    std::fs::create_dir_all(root.join("payloads")).expect("mkdir");
    let manifest = json!({
        "manifest_version": "1.0",
        "graph_id": "no_bwrap",
        "entrypoints": ["work"],
        "initial_inputs": {"work": [{"x": 1}]},
        "nodes": [
            {"node_id": "work", "agent_type": "executor",
             "config": {"command": format!("touch {}", marker.display()),
                        "runner_module": "MirrorNeuron.Runner.OpenShell",
                        "output_message_type": "out"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [{"from_node": "work", "to_node": "sink", "message_type": "out"}],
        "policies": {"restart": {"enabled": false}}
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .arg("run")
        .arg(&root)
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", common::namespace())
        .env("MN_TEMP_DIR", dir.path().join("runs"))
        .env("MN_BWRAP_BIN", dir.path().join("no-such-bwrap"))
        .output()
        .expect("run mirror-neuron");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the job failed: {text}");
    assert!(text.contains("the sandbox runner is unavailable"), "{text}");
    assert!(!marker.exists(), "the step ran on the host");
}

/// An OpenShell `policy` file is not read: validation warns that the step gets no network.
#[test]
fn a_policy_file_is_not_read_and_validation_says_the_network_is_off() {
    use mirror_neuron::runtime::executor::config::sandbox_warnings;
    let node = |extra: Value| {
        let mut config = json!({"command": "true", "runtime_driver": "openshell",
                                "policy": "policies/api-egress.yaml"});
        for (k, v) in extra.as_object().expect("object") {
            config[k] = v.clone();
        }
        json!({
            "manifest_version": "1.0", "graph_id": "g", "entrypoints": ["work"],
            "nodes": [{"node_id": "work", "agent_type": "executor", "config": config}],
            "edges": []
        })
    };
    let manifest = parse_manifest(&node(json!({}))).expect("valid");
    let warnings = sandbox_warnings(&manifest);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("config.policy") && warnings[0].contains("no network"));
    let open = parse_manifest(&node(json!({"sandbox": {"network": "host"}}))).expect("valid");
    assert!(sandbox_warnings(&open).is_empty());
}

/// A sandboxed step is still stopped by its timeout (the supervisor ends bubblewrap and
/// everything in its namespaces).
#[tokio::test]
async fn a_sandboxed_step_still_times_out() {
    if !have_bwrap("timeout") {
        return;
    }
    let started = std::time::Instant::now();
    let f = err(run(json!({"command": "sleep 30 & sleep 30", "timeout_seconds": 1})).await);
    assert_eq!(f.kind, FailureKind::Timeout, "{f:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Whether this host can hold `asked` in cgroups; prints why a test is skipped when not.
fn cgroups_hold(test: &str, asked: limits::Asked) -> Option<limits::StepLimits> {
    let held = limits::apply(asked);
    if held.procs().is_empty() {
        eprintln!("skipping {test}: no writable cgroup for {asked:?} on this host");
        return None;
    }
    Some(held)
}

/// A fork bomb stays inside its step: beyond `sandbox.pids_limit` forks fail there, while the
/// same script under the default limit runs.
#[tokio::test]
async fn forks_beyond_the_process_limit_fail_inside_the_step() {
    if !have_bwrap("pids") || cgroups_hold("pids", pids(8)).is_none() {
        return;
    }
    let script = "for i in $(seq 1 30); do sleep 2 & done; echo all-started; kill $(jobs -p)";
    let f = err(run(json!({
        "command": ["bash", "-c", script],
        "sandbox": {"pids_limit": 8}
    }))
    .await);
    assert!(
        f.stderr.to_lowercase().contains("fork") || f.stderr.contains("Resource temporarily"),
        "{f:?}"
    );
    let s = ok(run(json!({"command": ["bash", "-c", script]})).await);
    assert_eq!(s.stdout.trim(), "all-started");
}

fn pids(n: u64) -> limits::Asked {
    limits::Asked {
        pids: Some(n),
        ..Default::default()
    }
}

/// The CPU a step asks for (`resources.cpu_cores`) is its cgroup's quota, as the kernel
/// reads it back: 250 millicores are 25 ms of every 100 ms.
#[test]
fn the_cpu_asked_is_the_cgroup_quota() {
    let asked = limits::Asked {
        cpu_millis: Some(250),
        ..Default::default()
    };
    let Some(held) = cgroups_hold("cpu", asked) else {
        return;
    };
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).ok();
    let quota = held.dirs().find_map(|d| {
        read(d, "cpu.max").or_else(|| {
            Some(format!(
                "{} {}",
                read(d, "cpu.cfs_quota_us")?.trim(),
                read(d, "cpu.cfs_period_us")?.trim()
            ))
        })
    });
    assert_eq!(quota.as_deref().map(str::trim), Some("25000 100000"));
    // Parsed from the manifest the same way.
    let config = ExecutorConfig::from_node_config(
        json!({"command": ["true"], "runtime_driver": "sandbox", "resources": {"cpu_cores": 0.25}})
            .as_object()
            .expect("object"),
    )
    .expect("valid");
    match config.spec.runner {
        mirror_neuron::domain::manifest::executor::Runner::Sandbox(s) => {
            assert_eq!((s.cpu_millis, s.pids_limit), (Some(250), 1024))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_sandboxed_step_reads_its_inbound_artifacts_and_publishes_through_its_folder() {
    if !have_bwrap("artifacts") {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dirs = mirror_neuron::runtime::executor::ArtifactDirs {
        input: tmp.path().join("art/in"),
        output: tmp.path().join("art/out"),
    };
    std::fs::create_dir_all(&dirs.input).expect("mkdir");
    std::fs::create_dir_all(&dirs.output).expect("mkdir");
    std::fs::write(dirs.input.join("in.txt"), "inbound").expect("write");
    let script = r#"cat "$MN_ARTIFACTS_IN/in.txt" > "$MN_ARTIFACT_DIR/out.txt"
        if echo x > "$MN_ARTIFACTS_IN/new.txt" 2>/dev/null; then echo wrote-input; else echo input-read-only; fi"#;
    let mut req = request(tmp.path(), json!({"command": script}));
    req.extra_env = vec![
        ("MN_ARTIFACTS_IN".into(), dirs.input.display().to_string()),
        ("MN_ARTIFACT_DIR".into(), dirs.output.display().to_string()),
    ];
    req.artifacts = Some(dirs.clone());
    let s = ok(
        tokio::time::timeout(Duration::from_secs(60), run_executor(req))
            .await
            .expect("run finished"),
    );
    assert_eq!(s.stdout.trim(), "input-read-only", "stderr: {}", s.stderr);
    assert_eq!(
        std::fs::read_to_string(dirs.output.join("out.txt")).expect("published"),
        "inbound"
    );
    assert!(!dirs.input.join("new.txt").exists());
}
