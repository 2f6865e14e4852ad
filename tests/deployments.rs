//! Deployments end to end on a real `serve` (core-spec 9.2, 9.3), with real processes and
//! real TCP health checks against listeners this test opens and closes: an initial deploy;
//! a rolling update of three changed agents one batch at a time, in order; a rollback that
//! rolls version 1's manifest and payloads out again as version 3; a canary that waits for
//! promotion; a blue-green switch on a topology change that cancels the old job once
//! promoted; and a version whose health checks fail, reverted automatically within its
//! deadline.

mod common;
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{NodeProc, spawn_node_env, wait_for, wait_healthy};
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::deployments::{
    DeployRequest, RollbackRequest, deploy, get, promote, rollback,
};
use mirror_neuron::store::Store;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const KEY: &str = "shop";

/// The node's settings: fast service checks, room for two jobs' long-running steps.
const NODE_ENV: &[(&str, &str)] = &[
    ("MN_SERVICE_CHECK_INTERVAL_MS", "200"),
    ("MN_EXECUTOR_MAX_CONCURRENCY", "16"),
];

/// A TCP listener that accepts and drops connections (what a tcp check needs); aborting
/// the task closes the port.
async fn listen() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            drop(sock);
        }
    });
    (port, task)
}

/// A service job: `start` sends `go` to each worker, and each worker runs a long-lived
/// process (`sleep`) and provides a service named after it, checked over TCP on its port.
/// `version` goes into each worker's environment (so a new version changes every worker),
/// and into `payloads/version.txt` (so versions have different payloads).
fn bundle(dir: &Path, version: u64, workers: &[(&str, u16)], update: Value) -> PathBuf {
    let marker = dir.display().to_string();
    let root = dir.join(format!("v{version}-{}", workers.len()));
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    std::fs::write(root.join("payloads/version.txt"), version.to_string()).unwrap();
    let mut nodes = vec![json!({"node_id": "start", "agent_type": "router",
                                "config": {"emit_type": "go"}})];
    let mut edges = vec![];
    for (id, port) in workers {
        nodes.push(json!({
            "node_id": id, "agent_type": "executor",
            "config": {"command": "sleep 300", "output_message_type": "done",
                       "environment": {"APP_VERSION": version.to_string(),
                                       "DEPLOY_TEST": marker}},
            "services": [{"name": id, "address": "127.0.0.1", "port": port,
                          "checks": [{"type": "tcp", "interval_ms": 200, "timeout_ms": 500}]}],
        }));
        edges.push(json!({"from_node": "start", "to_node": id, "message_type": "go"}));
    }
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": KEY, "job_name": KEY, "type": "service",
        "entrypoints": ["start"], "nodes": nodes, "edges": edges,
        "policies": {"update": update},
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

fn policy(extra: Value) -> Value {
    let mut p = json!({"max_parallel": 1, "min_healthy_ms": 300, "healthy_deadline_ms": 20000,
                       "progress_deadline_ms": 60000, "health_check": "checks"});
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    p
}

async fn deploy_dir(store: &Store, dir: &Path) -> Value {
    let bundle = load_bundle(dir).expect("bundle loads");
    deploy(
        store,
        DeployRequest {
            bundle: &bundle,
            key: Some(KEY.into()),
            policy: None,
            tag: None,
        },
    )
    .await
    .expect("deploy accepted")
}

/// Waits for the key's record to reach `status` (panicking if the rollout fails instead).
async fn wait_status(store: &Store, status: &str, limit_s: u64) -> Value {
    wait_for(Duration::from_secs(limit_s), status, || async {
        let r = get(store, KEY).await.ok()?;
        let now = r["status"].as_str().unwrap_or_default().to_string();
        assert!(
            now == status || !["failed", "reverted"].contains(&now.as_str()),
            "rollout ended {now} while waiting for {status}: {r:#}"
        );
        (now == status).then_some(r)
    })
    .await
}

/// `(type, data)` of the key's events after the first `skip`.
fn events(record: &Value) -> Vec<(String, Value)> {
    record["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["type"].as_str().unwrap_or_default().to_string(),
                        e["data"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The job's service instances: `(agent, deployment_version, deployment_role, status)`.
async fn instances(store: &Store, job: &str) -> Vec<(String, String, String, String)> {
    let view = store.job_view(job).await.unwrap().expect("job view");
    let mut out: Vec<_> = view
        .services
        .values()
        .map(|r| {
            (
                r.agent_id.clone().unwrap_or_default(),
                r.deployment_version.clone().unwrap_or_default(),
                r.deployment_role.clone().unwrap_or_default(),
                r.status.as_str().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// One test's world: its keyspace, folder, serving node and open ports.
struct World {
    store: Store,
    dir: tempfile::TempDir,
    _node: NodeProc,
    listeners: Vec<(u16, JoinHandle<()>)>,
}

impl World {
    async fn start(ports: usize) -> World {
        let store = common::store().await;
        let dir = tempfile::tempdir().unwrap();
        let ns = store.keys().namespace().to_string();
        let node = spawn_node_env("a", &ns, &common::redis().url, dir.path(), NODE_ENV);
        wait_healthy(&store, &["a"]).await;
        let mut listeners = Vec::new();
        for _ in 0..ports {
            listeners.push(listen().await);
        }
        World {
            store,
            dir,
            _node: node,
            listeners,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Workers named `names`, each serving on the next open port.
    fn workers(&self, names: &[&'static str]) -> Vec<(&'static str, u16)> {
        names
            .iter()
            .zip(&self.listeners)
            .map(|(n, (port, _))| (*n, *port))
            .collect()
    }
}

/// `APP_VERSION` of each live worker process of this test (its `sleep`s, found by the
/// `DEPLOY_TEST` marker in their environment), sorted.
fn live_versions(dir: &Path) -> Vec<String> {
    let marker = format!("DEPLOY_TEST={}", dir.display());
    let mut out: Vec<String> = common::pids_named("sleep")
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/environ")).ok())
        .filter(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        .filter_map(|env| {
            env.split(|b| *b == 0)
                .find_map(|v| v.strip_prefix(b"APP_VERSION="))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
        .collect();
    out.sort();
    out
}

/// Waits until exactly one worker process per agent runs, each of `version`: replaced
/// steps were stopped and started again under the new spec.
async fn wait_processes(dir: &Path, n: usize, version: &str) {
    let want = vec![version.to_string(); n];
    wait_for(
        Duration::from_secs(15),
        "worker processes of the version",
        || async { (live_versions(dir) == want).then_some(()) },
    )
    .await;
}

fn job_of(record: &Value, field: &str) -> String {
    record[field].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_deploy_rolling_update_in_three_ordered_batches_and_rollback() {
    let w = World::start(3).await;
    let (store, dir) = (&w.store, w.path());
    let workers = w.workers(&["w1", "w2", "w3"]);

    // Initial deploy: the job starts, its instances carry version 1 as primary.
    let v1 = bundle(dir, 1, &workers, policy(json!({})));
    let first = deploy_dir(store, &v1).await;
    assert_eq!(first["deployment_key"], KEY);
    assert_eq!(first["version"], "1");
    let done = wait_status(store, "successful", 30).await;
    assert_eq!(done["current_version"], "1");
    assert_eq!(done["description"], "initial deployment completed");
    let job = job_of(&done, "current_job_id");
    let view = store.job_view(&job).await.unwrap().expect("job view");
    assert_eq!(view.status, Some(JobStatus::Running));
    wait_for(Duration::from_secs(15), "version 1 passing", || async {
        let all = instances(store, &job).await;
        (all.len() == 3
            && all
                .iter()
                .all(|i| i.1 == "1" && i.2 == "primary" && i.3 == "passing"))
        .then_some(())
    })
    .await;
    wait_processes(dir, 3, "1").await;

    // Rolling update: three changed agents, one batch each, in order.
    let v2 = bundle(dir, 2, &workers, policy(json!({})));
    let update = deploy_dir(store, &v2).await;
    assert_eq!(update["mode"], "agent_level", "{update:#}");
    assert_eq!(
        update["changed_agent_ids"],
        json!(["w1", "w2", "w3"]),
        "{update:#}"
    );
    let done = wait_status(store, "successful", 60).await;
    assert_eq!(done["current_version"], "2");
    assert_eq!(job_of(&done, "current_job_id"), job, "updated in place");
    let rollout: Vec<(String, Value)> = events(&done)
        .into_iter()
        .skip_while(|(t, d)| !(t == "deployment_created" && d["record"]["version"] == "2"))
        .filter(|(t, _)| {
            t.starts_with("deployment_batch_started") || t == "deployment_batch_completed"
        })
        .collect();
    let order: Vec<String> = rollout
        .iter()
        .map(|(t, d)| format!("{t}:{}", d["index"]))
        .collect();
    assert_eq!(
        order,
        [
            "deployment_batch_started:0",
            "deployment_batch_completed:0",
            "deployment_batch_started:1",
            "deployment_batch_completed:1",
            "deployment_batch_started:2",
            "deployment_batch_completed:2",
        ],
        "{done:#}"
    );
    let agents: Vec<Value> = rollout
        .iter()
        .filter(|(t, _)| t == "deployment_batch_started")
        .map(|(_, d)| d["agents"].clone())
        .collect();
    assert_eq!(agents, [json!(["w1"]), json!(["w2"]), json!(["w3"])]);
    let history = store.history(&job, 1, None).await.unwrap();
    let replaced = history
        .iter()
        .filter_map(|i| i.event.as_ref().ok())
        .filter(|e| e.payload.type_name() == "agents_replaced")
        .count();
    assert_eq!(replaced, 3, "one in-place replacement per batch");
    wait_processes(dir, 3, "2").await;
    wait_for(Duration::from_secs(15), "version 2 passing", || async {
        let all = instances(store, &job).await;
        all.iter()
            .all(|i| i.1 == "2" && i.2 == "primary" && i.3 == "passing")
            .then_some(())
    })
    .await;

    // Rollback to version 1: a new version 3 with version 1's manifest and payloads.
    let back = rollback(
        store,
        KEY,
        &RollbackRequest {
            version: Some("1".into()),
            reason: Some("bad release".into()),
            ..RollbackRequest::default()
        },
    )
    .await
    .expect("rollback accepted");
    assert_eq!(back["version"], "3");
    let done = wait_status(store, "successful", 60).await;
    assert_eq!(done["current_version"], "3");
    let versions = done["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 3);
    let state = store.load_deployment(KEY).await.unwrap();
    let (one, three) = (
        &state.versions[&mirror_neuron::domain::deployment::Version(1)],
        &state.versions[&mirror_neuron::domain::deployment::Version(3)],
    );
    assert_eq!(
        one.manifest, three.manifest,
        "version 3 is version 1's manifest"
    );
    assert_eq!(one.bundle.digest, three.bundle.digest, "and its payloads");
    assert_ne!(
        state.versions[&mirror_neuron::domain::deployment::Version(2)]
            .bundle
            .digest,
        one.bundle.digest
    );
    let view = store.job_view(&job).await.unwrap().expect("job view");
    assert_eq!(view.status, Some(JobStatus::Running));
    wait_processes(dir, 3, "1").await;
    wait_for(Duration::from_secs(15), "version 3 passing", || async {
        let all = instances(store, &job).await;
        all.iter()
            .all(|i| i.1 == "3" && i.3 == "passing")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_waits_for_promotion_and_promote_rolls_the_rest() {
    let w = World::start(3).await;
    let (store, dir) = (&w.store, w.path());
    let workers = w.workers(&["w1", "w2", "w3"]);
    deploy_dir(store, &bundle(dir, 1, &workers, policy(json!({})))).await;
    let first = wait_status(store, "successful", 30).await;
    let job = job_of(&first, "current_job_id");

    let canary = policy(json!({"strategy": "canary", "canary": 1}));
    deploy_dir(store, &bundle(dir, 2, &workers, canary)).await;
    let waiting = wait_status(store, "awaiting_promotion", 30).await;
    assert_eq!(waiting["canary_agent_ids"], json!(["w1"]));
    assert_eq!(waiting["remaining_agent_ids"], json!(["w2", "w3"]));
    // The canary serves as version 2 (hidden from plain discovery); the rest still run 1.
    let all = instances(store, &job).await;
    assert_eq!(
        all.iter()
            .map(|i| (i.0.as_str(), i.1.as_str(), i.2.as_str()))
            .collect::<Vec<_>>(),
        [
            ("w1", "2", "canary"),
            ("w2", "1", "primary"),
            ("w3", "1", "primary")
        ]
    );
    // Nothing moves without an operator.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        get(store, KEY).await.unwrap()["status"],
        "awaiting_promotion"
    );

    promote(store, KEY).await.expect("promote accepted");
    let done = wait_status(store, "successful", 60).await;
    assert_eq!(done["current_version"], "2");
    let types: Vec<String> = events(&done).into_iter().map(|(t, _)| t).collect();
    let promoted = types
        .iter()
        .position(|t| t == "deployment_promoted")
        .expect("promoted");
    let ready = types
        .iter()
        .position(|t| t == "deployment_canary_ready")
        .expect("ready");
    assert!(ready < promoted);
    wait_for(
        Duration::from_secs(15),
        "every instance primary on version 2",
        || async {
            let all = instances(store, &job).await;
            all.iter()
                .all(|i| i.1 == "2" && i.2 == "primary")
                .then_some(())
        },
    )
    .await;
    assert!(
        promote(store, KEY).await.is_err(),
        "nothing awaits promotion now"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_on_a_topology_change_cancels_the_old_job_after_promotion() {
    let w = World::start(3).await;
    let (store, dir) = (&w.store, w.path());
    let ports: Vec<u16> = w.listeners.iter().map(|(p, _)| *p).collect();
    deploy_dir(
        store,
        &bundle(
            dir,
            1,
            &[("w1", ports[0]), ("w2", ports[1])],
            policy(json!({})),
        ),
    )
    .await;
    let first = wait_status(store, "successful", 30).await;
    let old = job_of(&first, "current_job_id");

    // A third worker: the topology changed, so version 2 runs as a new job beside the old.
    let three = [("w1", ports[0]), ("w2", ports[1]), ("w3", ports[2])];
    let wider = bundle(dir, 2, &three, policy(json!({"canary": 1})));
    let update = deploy_dir(store, &wider).await;
    assert_eq!(update["mode"], "blue_green");
    let new = job_of(&update, "target_job_id");
    assert_ne!(new, old);
    let waiting = wait_status(store, "awaiting_promotion", 30).await;
    assert_eq!(waiting["phase"], "blue_green");
    assert!(
        instances(store, &new)
            .await
            .iter()
            .all(|i| i.2 == "candidate")
    );
    let old_view = store.job_view(&old).await.unwrap().expect("old job");
    assert_eq!(
        old_view.status,
        Some(JobStatus::Running),
        "old job serves until promotion"
    );

    promote(store, KEY).await.expect("promote accepted");
    let done = wait_status(store, "successful", 30).await;
    assert_eq!(job_of(&done, "current_job_id"), new);
    wait_for(Duration::from_secs(20), "the old job cancelled", || async {
        let v = store.job_view(&old).await.ok()??;
        (v.status == Some(JobStatus::Cancelled)).then_some(())
    })
    .await;
    wait_for(
        Duration::from_secs(15),
        "the new job's instances primary",
        || async {
            let all = instances(store, &new).await;
            (all.len() == 3 && all.iter().all(|i| i.2 == "primary")).then_some(())
        },
    )
    .await;
    let new_view = store.job_view(&new).await.unwrap().expect("new job");
    assert_eq!(new_view.status, Some(JobStatus::Running));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_its_health_checks_is_reverted_within_its_deadline() {
    let w = World::start(1).await;
    let (store, dir) = (&w.store, w.path());
    let good = w.listeners[0].0;
    let closed = common::free_port();
    let revert = policy(json!({"healthy_deadline_ms": 3000, "auto_revert": true}));
    deploy_dir(store, &bundle(dir, 1, &[("web", good)], revert.clone())).await;
    let first = wait_status(store, "successful", 30).await;
    let job = job_of(&first, "current_job_id");

    // Version 2 moves the service to a port nobody listens on: its check stays critical.
    let started = std::time::Instant::now();
    deploy_dir(store, &bundle(dir, 2, &[("web", closed)], revert)).await;
    let done = wait_for(Duration::from_secs(40), "the revert", || async {
        let r = get(store, KEY).await.ok()?;
        (r["status"] == "reverted").then_some(r)
    })
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "reverted {took:?} after the update, with a 3 s healthy deadline"
    );
    let failure = done["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("was not healthy within healthy_deadline_ms 3000")
            && failure.contains("service web"),
        "{failure}"
    );
    assert_eq!(done["current_version"], "3", "the revert is a new version");
    assert_eq!(done["stable_version"], "3");
    let types: Vec<String> = events(&done).into_iter().map(|(t, _)| t).collect();
    let tail: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .skip_while(|t| *t != "deployment_failed")
        .filter(|t| {
            [
                "deployment_failed",
                "deployment_reverting",
                "deployment_reverted",
            ]
            .contains(t)
        })
        .collect();
    assert_eq!(
        tail,
        [
            "deployment_failed",
            "deployment_reverting",
            "deployment_reverted"
        ]
    );
    let state = store.load_deployment(KEY).await.unwrap();
    use mirror_neuron::domain::deployment::Version;
    assert_eq!(
        state.versions[&Version(3)].manifest,
        state.versions[&Version(1)].manifest
    );
    wait_for(
        Duration::from_secs(15),
        "the reverted service passing",
        || async {
            let all = instances(store, &job).await;
            (all.len() == 1 && all[0].1 == "3" && all[0].3 == "passing").then_some(())
        },
    )
    .await;
}

/// `GET path` on a loopback port; `None` while nothing answers.
async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    sock.write_all(request.as_bytes()).await.ok()?;
    let mut out = String::new();
    sock.read_to_string(&mut out).await.ok()?;
    out.split("\r\n\r\n").nth(1).map(str::to_string)
}

/// The shipped example as a user runs it: version 1 serves on ports 8731 and 8732; version 2
/// (a new `server.py` with a `/version` endpoint) replaces each server in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_service_example_rolls_from_version_1_to_2() {
    let w = World::start(0).await;
    let store = &w.store;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/web_service");
    let key = "web-service";
    let deploy_example = |v: &str| {
        let bundle = load_bundle(&example.join(v)).expect("example loads");
        async move {
            deploy(
                store,
                DeployRequest {
                    bundle: &bundle,
                    key: None,
                    policy: None,
                    tag: None,
                },
            )
            .await
            .expect("deploy accepted")
        }
    };
    let first = deploy_example("v1").await;
    assert_eq!(first["deployment_key"], key, "the manifest names its key");
    let settled = |status: &'static str| async move {
        wait_for(Duration::from_secs(60), status, || async {
            let r = get(store, key).await.ok()?;
            (r["status"] == status).then_some(r)
        })
        .await
    };
    settled("successful").await;
    for port in [8731, 8732] {
        let body = wait_for(Duration::from_secs(20), "version 1 answering", || async {
            http_get(port, "/")
                .await
                .filter(|b| b.contains("version 1"))
        })
        .await;
        assert_eq!(body, "hello from version 1\n");
    }

    let update = deploy_example("v2").await;
    assert_eq!(update["changed_agent_ids"], json!(["web_a", "web_b"]));
    let done = settled("successful").await;
    assert_eq!(done["current_version"], "2");
    for port in [8731, 8732] {
        let body = wait_for(Duration::from_secs(20), "version 2 answering", || async {
            http_get(port, "/version")
                .await
                .filter(|b| b.contains("\"version\""))
        })
        .await;
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("json"),
            json!({"version": "2", "port": port})
        );
    }
    // Leave the ports free for the next run: cancel the job (its servers die with it).
    let job = done["current_job_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    mirror_neuron::runtime::commands::execute(
        store,
        &job,
        &mirror_neuron::domain::job::JobCommand::Cancel {
            reason: "test over".into(),
        },
        None,
    )
    .await
    .expect("cancel");
}
