//! The container runner (`docker_worker`) with a real engine, through the executor's own path
//! (`run_executor`) and through real `serve` nodes. Skipped, with the reason printed, where
//! no engine answers (CI installs podman best-effort, see `.ci/run`).
//!
//! Images cannot be pulled in CI, so the harness builds a tiny one itself from this host's
//! own `bash`, `sleep`, `cat` and `id` and the libraries `ldd` says they need, imported with
//! `<engine> import`.

mod common;

use common::exec::{connect_script, err, ok};
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use harness::{spawn_node_env, wait_for, wait_healthy, wait_terminal};
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::executor::container::probe;
use mirror_neuron::runtime::executor::{
    ExecOutcome, ExecRequest, ExecutorConfig, ExecutorPools, FailureKind, run_executor,
};
use mirror_neuron::runtime::local;
use mirror_neuron::store::Store;
use serde_json::{Value, json};

/// The image the tests run steps in.
const IMAGE: &str = "localhost/mn-test-step:1";
/// A file only the test image has, so a step can prove it runs in it.
const MARKER: &str = "/etc/mn-test-image";

/// The engine's binary and the test image, or `None` with the reason printed.
fn setup(test: &str) -> Option<PathBuf> {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let engine = probe::engine()?;
        build_image(&engine.bin)?;
        trial(&engine.bin)?;
        Ok(engine.bin.clone())
    });
    match ready {
        Ok(bin) => Some(bin.clone()),
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}

/// Imports [`IMAGE`] unless it is there: a root file system of a few host binaries.
fn build_image(engine: &Path) -> Result<(), String> {
    let present = Command::new(engine)
        .args(["image", "inspect", IMAGE])
        .output()
        .map_err(|e| e.to_string())?;
    if present.status.success() {
        return Ok(());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().join("root");
    for tool in ["bash", "sleep", "cat", "id"] {
        let bin = which(tool).ok_or_else(|| format!("no {tool} on PATH to build the image"))?;
        copy_into(&root, &bin)?;
        let ldd = Command::new("ldd")
            .arg(&bin)
            .output()
            .map_err(|e| format!("ldd is needed to build the test image: {e}"))?;
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            copy_into(&root, Path::new(lib))?;
        }
        // Where the image's default PATH finds them whatever the host's layout.
        let name = bin.file_name().ok_or("tool without a name")?;
        let dest = root.join("bin").join(name);
        if !dest.exists() {
            std::fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
            std::fs::copy(&bin, &dest).map_err(|e| e.to_string())?;
        }
    }
    std::fs::create_dir_all(root.join("etc")).map_err(|e| e.to_string())?;
    std::fs::write(root.join(MARKER.trim_start_matches('/')), "yes\n")
        .map_err(|e| e.to_string())?;
    let tar = dir.path().join("root.tar");
    let made = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .map_err(|e| format!("tar is needed to build the test image: {e}"))?;
    if !made.success() {
        return Err("tar failed building the test image".into());
    }
    let imported = Command::new(engine)
        .arg("import")
        .arg(&tar)
        .arg(IMAGE)
        .output()
        .map_err(|e| e.to_string())?;
    if !imported.status.success() {
        return Err(format!(
            "cannot import the test image: {}",
            String::from_utf8_lossy(&imported.stderr)
        ));
    }
    Ok(())
}

/// An engine that answers may still be unable to run containers here (crun on a host with
/// cgroup v1 controllers beside v2, missing rlimit privileges): then the tests skip, saying
/// so, rather than blame the runner. The runner's own flags are tested by the tests.
fn trial(engine: &Path) -> Result<(), String> {
    let out = Command::new(engine)
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
        ])
        .args(["--ulimit", "nproc=1024:1024", IMAGE, "bash", "-c", ":"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{} cannot run a container here: {}",
        engine.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

/// Copies `file` (following links) to the same path under `root`.
fn copy_into(root: &Path, file: &Path) -> Result<(), String> {
    let rel = file.strip_prefix("/").map_err(|e| e.to_string())?;
    let dest = root.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::copy(file, &dest)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {}: {e}", file.display()))
}

/// A container executor request: `config` plus `runtime_driver: docker_worker` and the test
/// image, run dirs under a fresh temp root.
fn request(temp_root: &Path, job: &str, mut config: Value) -> ExecRequest {
    config["runtime_driver"] = json!("docker_worker");
    if config.get("image").is_none() {
        config["image"] = json!(IMAGE);
    }
    let config = ExecutorConfig::from_node_config(config.as_object().expect("object"))
        .expect("valid config");
    ExecRequest {
        job_id: job.into(),
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

async fn run_job(job: &str, config: Value) -> ExecOutcome {
    let tmp = tempfile::tempdir().expect("temp dir");
    let req = request(tmp.path(), job, config);
    tokio::time::timeout(Duration::from_secs(120), run_executor(req))
        .await
        .expect("run finished")
}

async fn run(config: Value) -> ExecOutcome {
    run_job("job-1", config).await
}

#[tokio::test]
async fn a_step_runs_in_its_image_and_produces_its_result_through_mn_job() {
    if setup("image").is_none() {
        return;
    }
    let s = ok(run(json!({
        "command": format!(
            "cat {MARKER} && pwd && echo \"$MIRROR_NEURON_INPUT_FILE\" && id -u && \
             echo result > here.txt && cat /mn/job/here.txt && cat {{input_file}}"
        ),
        "environment": {"GREETING": "hi"},
    }))
    .await);
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    assert_eq!(
        s.stdout,
        format!("yes\n/mn/job\n/mn/job/mirror_neuron_input.json\n{uid}\nresult\n{{\"n\":1}}"),
        "stderr: {}",
        s.stderr
    );
    assert_eq!(s.runner, "docker_worker");
    assert_eq!(
        s.output_payload("worker", &json!({}))["sandbox"]["runner"],
        "docker_worker"
    );
}

/// Whether any process's command line holds `text`.
fn on_a_command_line(text: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(text))
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn the_environment_reaches_the_step_but_neither_ps_nor_the_engine() {
    if setup("environment").is_none() {
        return;
    }
    let secret = format!("s3cr3t-{}", std::process::id());
    let step = tokio::spawn(run_job(
        "env-job",
        json!({
            "command": "echo \"$GREETING|$HOME|$MIRROR_NEURON_WORKDIR|$CONTAINER_HOST\"; sleep 2",
            // Variables that would point the engine's CLI elsewhere if it read them: they
            // are the step's, not the CLI's.
            "environment": {"GREETING": secret, "CONTAINER_HOST": "unix:///nonexistent.sock",
                            "DOCKER_HOST": "unix:///nonexistent.sock"},
        }),
    ));
    let mut seen = false;
    while !step.is_finished() {
        seen |= on_a_command_line(&secret);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = ok(step.await.expect("step task"));
    assert_eq!(
        s.stdout,
        format!("{secret}|/tmp|/mn/job|unix:///nonexistent.sock\n"),
        "stderr: {}",
        s.stderr
    );
    assert!(!seen, "the value showed on a command line");
}

#[tokio::test]
async fn it_cannot_write_outside_mn_job() {
    if setup("writes").is_none() {
        return;
    }
    let s = ok(run(json!({
        "command": "for p in /etc/evil /usr/evil /evil; do \
                      if (echo x > $p) 2>/dev/null; then echo wrote $p; fi; done; \
                    echo x > /tmp/t && echo tmp-ok; echo x > /mn/job/t && echo job-ok"
    }))
    .await);
    assert_eq!(s.stdout, "tmp-ok\njob-ok\n", "stderr: {}", s.stderr);
}

#[tokio::test]
async fn it_cannot_reach_a_loopback_port_of_the_host_unless_egress_is_allowed() {
    if setup("network").is_none() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let s = ok(run(json!({"command": connect_script(port)})).await);
    assert_eq!(s.stdout.trim(), "refused", "stderr: {}", s.stderr);
    assert!(listener.accept().is_err(), "the listener saw a connection");
    let s = ok(run(json!({
        "command": connect_script(port),
        "container": {"network": "host"}
    }))
    .await);
    assert_eq!(s.stdout.trim(), "connected", "stderr: {}", s.stderr);
}

#[tokio::test]
async fn a_step_beyond_its_memory_limit_is_killed_with_a_clear_failure() {
    if setup("memory").is_none() {
        return;
    }
    // The string doubles until the container's memory limit stops it.
    let f = err(run(json!({
        "command": "s=x; while :; do s=\"$s$s\"; done",
        "resources": {"memory_mb": 32}
    }))
    .await);
    assert_eq!(f.kind, FailureKind::Memory, "{f:?}");
    assert!(
        f.error
            .contains("memory limit of 32 MB (resources.memory_mb)"),
        "{f:?}"
    );
    // Within its limit the same kind of step runs.
    let s = ok(run(json!({
        "command": "s=x; for i in 1 2 3 4 5 6 7 8 9 10; do s=\"$s$s\"; done; echo ${#s}",
        "resources": {"memory_mb": 32}
    }))
    .await);
    assert_eq!(s.stdout.trim(), "1024", "stderr: {}", s.stderr);
}

/// Names of the engine's containers (running or not) that contain `part`.
fn containers_named(engine: &Path, part: &str) -> Vec<String> {
    let out = Command::new(engine)
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .expect("engine ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.contains(part))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_timed_out_step_leaves_no_container_behind() {
    let Some(engine) = setup("timeout") else {
        return;
    };
    let job = format!("timeout-{}", std::process::id());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // While the step runs its container is there: the name the test looks for is right.
    let watch = {
        let engine = engine.clone();
        let job = job.clone();
        tokio::spawn(async move {
            let mut seen = false;
            tokio::pin!(stopped);
            loop {
                let (e, j) = (engine.clone(), job.clone());
                seen |= tokio::task::spawn_blocking(move || !containers_named(&e, &j).is_empty())
                    .await
                    .unwrap_or(false);
                tokio::select! {
                    _ = &mut stopped => return seen,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        })
    };
    let f = err(run_job(&job, json!({"command": "sleep 60", "timeout_seconds": 3})).await);
    let _ = stop.send(());
    assert_eq!(f.kind, FailureKind::Timeout, "{f:?}");
    assert!(
        watch.await.expect("watcher"),
        "the container was never seen"
    );
    assert_eq!(
        containers_named(&engine, &job),
        Vec::<String>::new(),
        "`ps -a` still lists the step's container"
    );
}

/// Polls until `ok` holds for the containers named after `part`, or `limit` passes.
async fn wait_containers(
    engine: &Path,
    part: &str,
    limit: Duration,
    ok: fn(usize) -> bool,
) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let (e, p) = (engine.to_path_buf(), part.to_string());
        let n = tokio::task::spawn_blocking(move || containers_named(&e, &p).len())
            .await
            .unwrap_or(0);
        if ok(n) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn a_cancelled_step_leaves_no_container_behind() {
    let Some(engine) = setup("cancel") else {
        return;
    };
    let job = format!("cancel-{}", std::process::id());
    let step = {
        let job = job.clone();
        tokio::spawn(async move { run_job(&job, json!({"command": "sleep 60"})).await })
    };
    assert!(
        wait_containers(&engine, &job, Duration::from_secs(30), |n| n > 0).await,
        "the step's container never started"
    );
    // A cancelled job drops the step's future: nothing awaits the container any more.
    step.abort();
    let _ = step.await;
    assert!(
        wait_containers(&engine, &job, Duration::from_secs(30), |n| n == 0).await,
        "`ps -a` still lists the step's container: {:?}",
        containers_named(&engine, &job)
    );
}

#[tokio::test]
async fn a_missing_image_fails_the_step_naming_it() {
    if setup("missing image").is_none() {
        return;
    }
    let f = err(run(json!({
        "command": "true",
        "image": "localhost/mn-no-such-image:404"
    }))
    .await);
    assert_eq!(f.kind, FailureKind::Container, "{f:?}");
    assert!(
        f.error.contains("\"localhost/mn-no-such-image:404\"") && f.error.contains("not present"),
        "{f:?}"
    );
}

#[tokio::test]
async fn an_image_removed_after_use_fails_as_an_engine_error_naming_it() {
    let Some(engine) = setup("removed image") else {
        return;
    };
    let tag = format!("localhost/mn-test-step:gone-{}", std::process::id());
    let engine_ok = |args: &[&str]| {
        Command::new(&engine)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(engine_ok(&["tag", IMAGE, &tag]), "tag the test image");
    let config = json!({"command": "echo here", "image": tag});
    assert_eq!(ok(run(config.clone()).await).stdout, "here\n");
    // The runner saw the image once; now it is gone, and `run --pull never` cannot start.
    assert!(engine_ok(&["rmi", &tag]), "remove the tag");
    let f = err(run(config).await);
    assert_eq!(f.kind, FailureKind::Container, "{f:?}");
    assert!(
        f.error.contains("could not run the step (exit 125)") && f.error.contains(&tag),
        "{f:?}"
    );
}

#[tokio::test]
async fn a_warmup_runs_in_the_container_and_its_failure_is_reported() {
    if setup("warmup").is_none() {
        return;
    }
    let s = ok(run_job(
        "warm-ok",
        json!({"command": "echo step", "warmup_command": format!("cat {MARKER}")}),
    )
    .await);
    assert_eq!(s.stdout, "step\n");
    let f = err(run_job(
        "warm-bad",
        json!({"command": "echo step", "warmup_command": "echo nope >&2; exit 3",
               "warmup_timeout_ms": 20000}),
    )
    .await);
    assert_eq!(f.kind, FailureKind::Warmup, "{f:?}");
    assert!(
        f.error.contains("warmup_command failed") && f.error.contains("nope"),
        "{f:?}"
    );
}

/// A host step's warmup runs once per agent, however many steps follow.
#[tokio::test]
async fn a_warmup_runs_once_per_agent() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let count = tmp.path().join("warmups");
    let config = json!({
        "command": "echo step",
        "warmup_command": format!("echo warm >> {}", count.display()),
    });
    let config = ExecutorConfig::from_node_config(config.as_object().expect("object"))
        .expect("valid config");
    for _ in 0..3 {
        let mut req = request(tmp.path(), "warm-once", json!({"command": "true"}));
        req.config = config.clone();
        let s = ok(run_executor(req).await);
        assert_eq!(s.stdout, "step\n");
    }
    let text = std::fs::read_to_string(&count).expect("warmup ran");
    assert_eq!(text, "warm\n");
}

/// Steps of one agent that start together (`config.concurrency`) share its one warmup.
#[tokio::test]
async fn concurrent_first_steps_share_one_warmup() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let count = tmp.path().join("warmups");
    let config = json!({
        "command": "echo step",
        "warmup_command": format!("sleep 0.5; echo warm >> {}", count.display()),
    });
    let config = ExecutorConfig::from_node_config(config.as_object().expect("object"))
        .expect("valid config");
    let steps: Vec<_> = (0..3)
        .map(|_| {
            let mut req = request(tmp.path(), "warm-together", json!({"command": "true"}));
            req.config = config.clone();
            tokio::spawn(run_executor(req))
        })
        .collect();
    for step in steps {
        let s = ok(step.await.expect("step task"));
        assert_eq!(s.stdout, "step\n");
    }
    let text = std::fs::read_to_string(&count).expect("warmup ran");
    assert_eq!(text, "warm\n");
}

/// A job whose executor runs in the test image.
fn container_bundle(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("payloads")).expect("mkdir");
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": name, "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "boxed", "agent_type": "executor",
             "config": {"runner_module": "MirrorNeuron.Runner.DockerWorker", "image": IMAGE,
                        "command": format!("cat {MARKER}"), "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
        ],
        "edges": [
            {"from_node": "start", "to_node": "boxed", "message_type": "go"},
            {"from_node": "boxed", "to_node": "sink", "message_type": "done"}
        ]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).expect("write");
    root
}

async fn wait_blocked(store: &Store, job: &str) -> String {
    wait_for(Duration::from_secs(15), "job_placement_blocked", || async {
        store.job_view(job).await.ok()??.placement_blocked
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_engine_does_not_work_offers_no_docker_worker() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    // A binary that exists but answers nothing: like a docker CLI without its daemon.
    let broken = dir.path().join("docker");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'Cannot connect to the daemon' >&2\nexit 1\n",
    )
    .expect("write");
    let mut perms = std::fs::metadata(&broken).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&broken, perms).expect("chmod");
    let broken = broken.to_string_lossy().into_owned();
    let _node = spawn_node_env(
        "c-broken",
        &ns,
        &redis.url,
        dir.path(),
        &[("MN_DOCKER_BIN", &broken)],
    );
    wait_healthy(&store, &["c-broken"]).await;
    let job = local::submit(
        &store,
        &load_bundle(&container_bundle(dir.path(), "broken-engine")).expect("bundle"),
    )
    .await
    .expect("submit");
    let reason = wait_blocked(&store, &job).await;
    assert!(
        reason.contains("agent boxed") && reason.contains("runtime driver docker_worker"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_working_engine_runs_a_docker_worker_job() {
    if setup("node").is_none() {
        return;
    }
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let _node = spawn_node_env("c-engine", &ns, &redis.url, dir.path(), &[]);
    wait_healthy(&store, &["c-engine"]).await;
    let job = local::submit(
        &store,
        &load_bundle(&container_bundle(dir.path(), "in-container")).expect("bundle"),
    )
    .await
    .expect("submit");
    assert_eq!(
        wait_terminal(&store, &job, Duration::from_secs(60)).await,
        JobStatus::Completed
    );
}

/// A job whose executor names execution profile `py` and no image of its own.
fn profile_bundle(dir: &Path) -> PathBuf {
    let root = dir.join("by-profile");
    std::fs::create_dir_all(root.join("payloads")).expect("mkdir");
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "by-profile", "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "boxed", "agent_type": "executor",
             "config": {"runtime_driver": "docker_worker", "execution_profile": "py",
                        "command": format!("cat {MARKER}"), "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
        ],
        "edges": [
            {"from_node": "start", "to_node": "boxed", "message_type": "go"},
            {"from_node": "boxed", "to_node": "sink", "message_type": "done"}
        ]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).expect("write");
    root
}

#[tokio::test]
async fn the_image_can_come_from_the_execution_profile() {
    if setup("profile").is_none() {
        return;
    }
    let store = common::store().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = profile_bundle(dir.path());
    let run = |profiles: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
            .arg("run")
            .arg(&bundle)
            .env("MN_HOME", dir.path().join("home"))
            .env("MN_EXECUTION_PROFILES_JSON", profiles)
            .env("MN_NODE_EXECUTION_PROFILES", "py")
            .env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", store.keys().namespace())
            .env_remove("MN_GRPC_TARGET")
            .output()
            .expect("run the CLI");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&json!({"py": {"image": IMAGE}}).to_string());
    assert_eq!(code, 0, "{err}");
    // A profile without an image leaves the executor with none: refused before it runs.
    let (code, err) = run(&json!({"py": {"pool": "default"}}).to_string());
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("image") && err.contains("execution profile \"py\""),
        "{err}"
    );
}

#[tokio::test]
async fn a_container_step_sees_its_artifact_folders_at_mn_artifacts() {
    if setup("artifacts").is_none() {
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
    let script = r#"echo "$MN_ARTIFACTS_IN $MN_ARTIFACT_DIR"
        cat "$MN_ARTIFACTS_IN/in.txt" > "$MN_ARTIFACT_DIR/out.txt"
        if (echo x > "$MN_ARTIFACTS_IN/new.txt") 2>/dev/null; then echo wrote-input; else echo input-read-only; fi"#;
    let mut req = request(tmp.path(), "job-art", json!({"command": script}));
    req.extra_env = vec![
        ("MN_ARTIFACTS_IN".into(), dirs.input.display().to_string()),
        ("MN_ARTIFACT_DIR".into(), dirs.output.display().to_string()),
    ];
    req.artifacts = Some(dirs.clone());
    let s = ok(
        tokio::time::timeout(Duration::from_secs(120), run_executor(req))
            .await
            .expect("run finished"),
    );
    assert_eq!(
        s.stdout, "/mn/artifacts/in /mn/artifacts/out\ninput-read-only\n",
        "stderr: {}",
        s.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dirs.output.join("out.txt")).expect("published"),
        "inbound"
    );
    assert!(!dirs.input.join("new.txt").exists());
}
