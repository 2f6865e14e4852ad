//! The resource-aware scheduler wired into real `serve` processes: a GPU job lands on the node
//! that declares a GPU and its executor sees the allocation; a job nothing can hold records
//! why, once, and runs as soon as a fitting node joins; an agent whose node is drained is
//! re-placed; `mirror-neuron plan --json` reports the same decisions without submitting.

mod common;
// The proxy and the fan-out bundle are for the failover tests.
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;
#[path = "common/history.rs"]
mod history;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{spawn_node, spawn_node_env, wait_for, wait_healthy, wait_terminal};
use history::check_history;
use mirror_neuron::domain::event::{EventEnvelope, JobEvent};
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local;
use mirror_neuron::store::Store;
use serde_json::{Value, json};

const GPU_NODE: &[(&str, &str)] = &[("MN_NODE_GPU", "1"), ("MN_NODE_CAPABILITIES", "cuda")];

/// On a host where NVML sees GPUs every node has one, and "lands on the GPU node" proves
/// nothing; these tests are about declared GPUs on a GPU-less host.
fn host_has_gpus() -> bool {
    let seen = !mirror_neuron::runtime::cluster::probe::probe_gpus()
        .0
        .is_empty();
    if seen {
        eprintln!("skipped: this host has NVIDIA GPUs, so every node would offer one");
    }
    seen
}

/// A job whose one executor asks for `resources` and prints what it was allocated.
fn gpu_bundle(dir: &Path, name: &str, resources: Value) -> PathBuf {
    one_executor(
        dir,
        name,
        json!({"node_id": "train", "agent_type": "executor", "resources": resources,
               "config": {"command": "printf '{\"alloc\": %s, \"cuda\": \"%s\", \"nvidia\": \"%s\"}' \"$MN_ALLOCATION_JSON\" \"$CUDA_VISIBLE_DEVICES\" \"$NVIDIA_VISIBLE_DEVICES\"",
                          "output_message_type": "done"}}),
    )
}

/// A job `start -> <executor> -> sink` around one executor node.
fn one_executor(dir: &Path, name: &str, executor: Value) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let id = executor["node_id"].as_str().unwrap_or_default().to_string();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": name, "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            executor,
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
        ],
        "edges": [
            {"from_node": "start", "to_node": id, "message_type": "go"},
            {"from_node": id, "to_node": "sink", "message_type": "done"}
        ]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

/// Waits for the job's view to record why it cannot be placed, and returns the reason.
async fn wait_blocked(store: &Store, job: &str) -> String {
    wait_for(Duration::from_secs(15), "job_placement_blocked", || async {
        store.job_view(job).await.ok()??.placement_blocked
    })
    .await
}

/// Nodes the agent's steps were started on, in order.
fn step_nodes(events: &[EventEnvelope], agent: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            JobEvent::AgentStepStarted {
                agent_id,
                node: Some(n),
                ..
            } if agent_id == agent => Some(n.clone()),
            _ => None,
        })
        .collect()
}

fn plans(events: &[EventEnvelope]) -> Vec<(Value, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            JobEvent::JobPlanned { plan, reason } => Some((plan.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

fn blocked(events: &[EventEnvelope]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            JobEvent::JobPlacementBlocked { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// What the executor printed (the aggregator keeps its `sandbox.stdout`), parsed.
fn executor_output(result: &Value) -> Value {
    let stdout = result["output"]["messages"][0]["sandbox"]["stdout"]
        .as_str()
        .unwrap_or_else(|| panic!("no executor stdout in {result}"));
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("stdout {stdout:?}: {e}"))
}

/// Runs `mirror-neuron plan` against the test's Redis and namespace.
fn plan_cli(store: &Store, redis_url: &str, bundle: &Path) -> (i32, Value, String) {
    plan_cli_env(store, redis_url, bundle, &[])
}

fn plan_cli_env(
    store: &Store,
    redis_url: &str,
    bundle: &Path,
    env: &[(&str, &str)],
) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .envs(env.iter().copied())
        .arg("plan")
        .arg(bundle)
        .arg("--json")
        .env("MN_REDIS_URL", redis_url)
        .env("MN_REDIS_NAMESPACE", store.keys().namespace())
        .env_remove("MN_GRPC_TARGET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_job_lands_on_the_gpu_node_and_its_executor_sees_the_allocation() {
    if host_has_gpus() {
        return;
    }
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    // "a-cpu" would win every tie by name: only the GPU puts the job on "b-gpu".
    let _a = spawn_node("a-cpu", &ns, &redis.url, dir.path());
    let _b = spawn_node_env("b-gpu", &ns, &redis.url, dir.path(), GPU_NODE);
    wait_healthy(&store, &["a-cpu", "b-gpu"]).await;

    let path = gpu_bundle(dir.path(), "gpu-job", json!({"gpu_count": 1, "cpu": 0.5}));
    // The dry run first: same decision, nothing submitted.
    let (code, report, stderr) = plan_cli(&store, &redis.url, &path);
    assert_eq!(code, 0, "plan --json: {report} {stderr}");
    assert_eq!(report["placeable"], true, "{report}");
    assert_eq!(report["nodes"], 2, "{report}");
    let placement = &report["plan"]["placements"][0];
    assert_eq!(placement["agent_id"], "train", "{report}");
    assert_eq!(placement["node"], "b-gpu", "{report}");
    assert_eq!(placement["device_ids"], json!(["0"]), "{report}");
    assert_eq!(placement["cpu_millis"], 500, "{report}");

    let job = local::submit(&store, &load_bundle(&path).unwrap())
        .await
        .unwrap();
    assert_eq!(
        wait_terminal(&store, &job, Duration::from_secs(30)).await,
        JobStatus::Completed
    );
    let events = check_history(&store, &job, true).await;
    let recorded = plans(&events);
    assert_eq!(recorded.len(), 1, "planned once: {recorded:?}");
    assert_eq!(recorded[0].0["placements"][0]["node"], "b-gpu");
    assert!(blocked(&events).is_empty());
    assert_eq!(step_nodes(&events, "train"), ["b-gpu"]);
    // The plan is in the job view too.
    let view = store.job_view(&job).await.unwrap().unwrap();
    assert_eq!(
        view.scheduler
            .as_ref()
            .map(|s| s["placements"][0]["node"].clone()),
        Some(json!("b-gpu"))
    );
    // What the executor saw in its environment.
    let result = view.result.clone().unwrap();
    let seen = executor_output(&result);
    assert_eq!(seen["alloc"]["node"], "b-gpu", "{result}");
    assert_eq!(seen["alloc"]["agent_id"], "train", "{result}");
    assert_eq!(seen["alloc"]["gpus"], 1, "{result}");
    assert_eq!(seen["alloc"]["device_ids"], json!(["0"]), "{result}");
    assert_eq!(seen["cuda"], "0", "{result}");
    assert_eq!(seen["nvidia"], "0", "{result}");

    // More GPUs than any node has: the dry run explains and exits 2.
    let too_big = gpu_bundle(dir.path(), "too-big", json!({"gpu_count": 4}));
    let (code, report, _) = plan_cli(&store, &redis.url, &too_big);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["placeable"], false, "{report}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("agent train") && error.to_lowercase().contains("gpu"),
        "the explanation names the agent and the GPUs: {error}"
    );

    // Admission: with half the GPUs allowed, floor(1 × 50%) = 0 GPUs may be handed out.
    store
        .set_resource_limits(&json!({"cpu": 100, "gpu": 50, "memory": 100, "disk": 100}))
        .await
        .unwrap();
    let admitted = [("MN_RESOURCE_ADMISSION_ENABLED", "1")];
    let (code, report, _) = plan_cli_env(&store, &redis.url, &path, &admitted);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["admission"], true, "{report}");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("gpu admission limit")),
        "{report}"
    );
    // Without admission the limits are not applied.
    let (code, _, _) = plan_cli(&store, &redis.url, &path);
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_nothing_can_hold_records_why_once_and_runs_when_a_fitting_node_joins() {
    if host_has_gpus() {
        return;
    }
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let _a = spawn_node("a-cpu", &ns, &redis.url, dir.path());
    wait_healthy(&store, &["a-cpu"]).await;
    let path = gpu_bundle(dir.path(), "waits", json!({"gpu_count": 1}));
    let job = local::submit(&store, &load_bundle(&path).unwrap())
        .await
        .unwrap();
    let reason = wait_blocked(&store, &job).await;
    assert!(
        reason.contains("agent train") && reason.to_lowercase().contains("gpu"),
        "the explanation names the agent and what it lacks: {reason}"
    );
    // Long enough for the owner to retry planning a few times; it must stay one event.
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    let view = store.job_view(&job).await.unwrap().unwrap();
    assert!(
        !view.status.unwrap().is_terminal(),
        "a blocked job waits: {view:?}"
    );
    let events = check_history(&store, &job, false).await;
    assert_eq!(
        blocked(&events),
        std::slice::from_ref(&reason),
        "recorded once"
    );
    assert!(step_nodes(&events, "train").is_empty(), "no step began");

    let _c = spawn_node_env("c-gpu", &ns, &redis.url, dir.path(), GPU_NODE);
    assert_eq!(
        wait_terminal(&store, &job, Duration::from_secs(30)).await,
        JobStatus::Completed
    );
    let events = check_history(&store, &job, true).await;
    assert_eq!(blocked(&events).len(), 1);
    let recorded = plans(&events);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].0["placements"][0]["node"], "c-gpu");
    assert_eq!(step_nodes(&events, "train"), ["c-gpu"]);
    let view = store.job_view(&job).await.unwrap().unwrap();
    assert_eq!(view.placement_blocked, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_node_is_drained_is_re_placed_and_the_new_placement_recorded() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let _a = spawn_node("r-a", &ns, &redis.url, dir.path());
    let _b = spawn_node("r-b", &ns, &redis.url, dir.path());
    wait_healthy(&store, &["r-a", "r-b"]).await;
    // Two messages for "w", one after the other: the second arrives while the first runs.
    let root = dir.path().join("two-steps");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "two-steps", "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "relay", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "w", "agent_type": "executor",
             "config": {"command": "sleep 1.5; echo '{\"ok\": true}'", "output_message_type": "done",
                        "idempotent": true}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 2}}
        ],
        "edges": [
            {"from_node": "start", "to_node": "w", "message_type": "go"},
            {"from_node": "start", "to_node": "relay", "message_type": "go"},
            {"from_node": "relay", "to_node": "w", "message_type": "go"},
            {"from_node": "w", "to_node": "sink", "message_type": "done"}
        ]
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    let job = local::submit(&store, &load_bundle(&root).unwrap())
        .await
        .unwrap();
    // Binpack with equal nodes takes the smaller name.
    wait_for(Duration::from_secs(15), "the first step on r-a", || async {
        let agents = store.agent_views(&job).await.ok()?;
        agents
            .iter()
            .any(|a| a.agent_id == "w" && a.node.as_deref() == Some("r-a"))
            .then_some(())
    })
    .await;
    // A long deadline: the running step finishes in place, the next one must go elsewhere.
    let drain = mirror_neuron::runtime::cluster::ops::DrainRequest {
        node: "r-a".into(),
        reason: Some("test".into()),
        deadline_ms: 60_000,
        dry_run: false,
        ignore_system_jobs: true,
    };
    mirror_neuron::runtime::cluster::ops::drain(&store, &drain)
        .await
        .unwrap();
    assert_eq!(
        wait_terminal(&store, &job, Duration::from_secs(30)).await,
        JobStatus::Completed
    );
    let events = check_history(&store, &job, true).await;
    assert_eq!(step_nodes(&events, "w"), ["r-a", "r-b"]);
    let recorded = plans(&events);
    assert_eq!(recorded.len(), 2, "planned, then re-placed: {recorded:?}");
    assert_eq!(recorded[0].0["placements"][0]["node"], "r-a");
    assert_eq!(recorded[1].0["placements"][0]["node"], "r-b");
    let reason = recorded[1].1.clone().unwrap_or_default();
    assert!(
        reason.contains("w from r-a to r-b") && reason.contains("r-a cannot take work"),
        "{reason}"
    );
}

/// A job whose executor runs in a Docker container (`runner_module ...DockerWorker`).
fn docker_bundle(dir: &Path) -> PathBuf {
    one_executor(
        dir,
        "in-docker",
        json!({"node_id": "boxed", "agent_type": "executor",
               "config": {"runner_module": "MirrorNeuron.Runner.DockerWorker",
                          "image": "python:3.12-slim", "command": "echo '{}'",
                          "output_message_type": "done"}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_worker_executor_is_not_placed_on_a_node_without_docker() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    // A node without a container engine (MN_DOCKER_BIN names none, so the result is the same
    // where docker or podman is installed) offers no docker_worker: never on the host.
    let _a = spawn_node_env(
        "a-nodocker",
        &ns,
        &redis.url,
        dir.path(),
        &[("MN_DOCKER_BIN", "/nonexistent/docker")],
    );
    wait_healthy(&store, &["a-nodocker"]).await;
    let job = local::submit(&store, &load_bundle(&docker_bundle(dir.path())).unwrap())
        .await
        .unwrap();
    let reason = wait_blocked(&store, &job).await;
    assert!(
        reason.contains("agent boxed") && reason.contains("runtime driver docker_worker"),
        "the explanation names the agent and the driver: {reason}"
    );
    let events = check_history(&store, &job, false).await;
    assert!(
        step_nodes(&events, "boxed").is_empty(),
        "never run on the host"
    );
}

/// `mirror-neuron run <bundle>` in this process's keyspace: (exit code, stderr).
fn run_cli(store: &Store, bundle: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .envs(env.iter().copied())
        .arg("run")
        .arg(bundle)
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", store.keys().namespace())
        .env_remove("MN_GRPC_TARGET")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// GPUs declared with `MN_NODE_GPU` and described with `MN_NODE_GPU_MEMORY_MB` and
/// `MN_NODE_GPU_DRIVER` can be asked for by memory and driver; beyond what they have is refused
/// with the plan's reason.
#[tokio::test]
async fn declared_gpus_are_placed_by_their_described_memory_and_driver() {
    if host_has_gpus() {
        return;
    }
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home").to_string_lossy().into_owned();
    let env = [
        ("MN_HOME", home.as_str()),
        ("MN_NODE_GPU", "1"),
        ("MN_NODE_GPU_MEMORY_MB", "24576"),
        ("MN_NODE_GPU_DRIVER", "rocm"),
    ];
    let fits = gpu_bundle(
        dir.path(),
        "fits",
        json!({"devices": [{"kind": "gpu", "min_memory_mb": 16000, "driver": "rocm"}]}),
    );
    let (code, err) = run_cli(&store, &fits, &env);
    assert_eq!(code, 0, "{err}");
    let too_big = gpu_bundle(
        dir.path(),
        "too-big",
        json!({"devices": [{"kind": "gpu", "min_memory_mb": 32000}]}),
    );
    let (code, err) = run_cli(&store, &too_big, &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot run too-big on this machine"), "{err}");
    assert!(
        err.contains("32000"),
        "the reason names the memory asked: {err}"
    );
    // A malformed description is refused by name.
    let bad = [("MN_NODE_GPU_MEMORY_MB", "lots")];
    let (code, err) = run_cli(&store, &fits, &[env[0], env[1], bad[0]]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("MN_NODE_GPU_MEMORY_MB must be an integer"),
        "{err}"
    );
}

#[tokio::test]
async fn a_local_run_refuses_what_this_machine_cannot_hold_with_the_plans_reason() {
    let store = common::store().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home").to_string_lossy().into_owned();
    if !host_has_gpus() {
        let gpu = gpu_bundle(dir.path(), "needs-gpu", json!({"gpu_count": 1}));
        let (code, err) = run_cli(&store, &gpu, &[("MN_HOME", &home)]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("cannot run needs-gpu on this machine") && err.contains("agent train"),
            "{err}"
        );
        assert!(err.to_lowercase().contains("gpu"), "{err}");
        assert!(
            !err.contains("submitted job"),
            "refused before submission: {err}"
        );
    }
    let docker = docker_bundle(dir.path());
    let no_docker = [
        ("MN_HOME", home.as_str()),
        ("MN_DOCKER_BIN", "/nonexistent/docker"),
    ];
    let (code, err) = run_cli(&store, &docker, &no_docker);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("runtime driver docker_worker"), "{err}");
    // What fits still runs.
    let plain = gpu_bundle(dir.path(), "no-gpu", json!({}));
    let (code, err) = run_cli(&store, &plain, &[("MN_HOME", &home)]);
    assert_eq!(code, 0, "{err}");
}
