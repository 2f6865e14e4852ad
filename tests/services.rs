//! Services end to end on real `serve` processes (core-spec 9.1), with real listeners: a job's
//! http and tcp checks pass, go critical when the port closes (after two failures in a row:
//! `failures_before_critical: 2`), and pass again; `service list|resolve|check` see it; a job
//! whose executor requires a service waits, blocked naming it, until a job providing it
//! passes; a lost node's instances are deregistered; script checks are refused unless
//! enabled; a job whose required service is missing fails its preflight with the report.

mod common;
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::{spawn_node_env, wait_for, wait_healthy, wait_terminal};
use mirror_neuron::domain::event::{EventEnvelope, JobEvent};
use mirror_neuron::domain::job::{JobCommand, JobStatus};
use mirror_neuron::domain::service::HealthStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::{commands, local};
use mirror_neuron::store::Store;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const FAST_CHECKS: (&str, &str) = ("MN_SERVICE_CHECK_INTERVAL_MS", "200");

/// An HTTP server on `port` answering every request `200 ok`; aborting the task closes it.
async fn serve_http(port: u16) -> JoinHandle<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the service port");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A job that stays running (its executor sleeps) and provides `services`; `config` is the
/// bundle's `config/default.json` (templates read it).
fn provider_bundle(dir: &Path, name: &str, services: Value, config: Value) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::write(root.join("config/default.json"), config.to_string()).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": name, "job_type": "service",
        "entrypoints": ["start"], "services": services,
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "hold", "agent_type": "executor",
             "config": {"command": "sleep 120", "output_message_type": "done"}},
        ],
        "edges": [{"from_node": "start", "to_node": "hold", "message_type": "go"}],
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

/// A batch job whose executor needs `requires` on its node, plus top-level `required`.
fn consumer_bundle(dir: &Path, name: &str, requires: Value, required: Value) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": name, "entrypoints": ["start"],
        "required_services": required,
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "use", "agent_type": "executor", "requires_services": requires,
             "config": {"command": "echo '{\"used\": true}'", "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}},
        ],
        "edges": [
            {"from_node": "start", "to_node": "use", "message_type": "go"},
            {"from_node": "use", "to_node": "sink", "message_type": "done"},
        ],
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

async fn history(store: &Store, job: &str) -> Vec<EventEnvelope> {
    store
        .history(job, 1, None)
        .await
        .expect("history")
        .into_iter()
        .filter_map(|i| i.event.ok())
        .collect()
}

/// `(previous, status)` of each `service_health_changed`, in order.
fn changes(events: &[EventEnvelope]) -> Vec<(HealthStatus, HealthStatus)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            JobEvent::ServiceHealthChanged {
                previous_status,
                status,
                ..
            } => Some((*previous_status, *status)),
            _ => None,
        })
        .collect()
}

/// Runs the CLI against the test keyspace (in this process's mode, no `--target`).
fn cli(store: &Store, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(args)
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", store.keys().namespace())
        .env_remove("MN_GRPC_TARGET")
        .output()
        .expect("run the CLI");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cli_json(store: &Store, args: &[&str]) -> Value {
    let (code, out, err) = cli(store, args);
    assert_eq!(code, 0, "{args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

async fn wait_changes(store: &Store, job: &str, n: usize) -> Vec<(HealthStatus, HealthStatus)> {
    wait_for(
        Duration::from_secs(20),
        "service health changes",
        || async {
            let c = changes(&history(store, job).await);
            (c.len() >= n).then_some(c)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_tcp_checks_pass_go_critical_when_the_port_closes_and_pass_again() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let a = spawn_node_env("a", &ns, &redis.url, dir.path(), &[FAST_CHECKS]);
    wait_healthy(&store, &["a"]).await;
    let target = common::wait_grpc_target(|| a.log_text());
    let port = free_port();
    let server = serve_http(port).await;
    let check = |t: &str| {
        json!({"type": t, "path": "/health", "contains": "ok", "interval_ms": 200,
               "timeout_ms": 500, "failures_before_critical": 2})
    };
    let services = json!([{"name": "web", "address": "127.0.0.1", "port": "${config.port}",
        "tags": ["http", "demo"], "checks": [check("http"), check("tcp")]}]);
    let path = provider_bundle(dir.path(), "web", services, json!({"port": port}));
    let job = local::submit(&store, &load_bundle(&path).unwrap())
        .await
        .unwrap();

    assert_eq!(
        wait_changes(&store, &job, 1).await,
        [(HealthStatus::Warning, HealthStatus::Passing)]
    );
    let events = history(&store, &job).await;
    let registered = events.iter().find_map(|e| match &e.payload {
        JobEvent::ServiceRegistered { instance } => Some(instance.clone()),
        _ => None,
    });
    let registered = registered.expect("the job registered its service");
    assert_eq!(registered.node.as_deref(), Some("a"));
    assert_eq!(
        registered.service.port.as_ref().and_then(|p| p.number()),
        Some(port),
        "template resolved"
    );

    // Discovery, as the CLI shows it.
    let list = cli_json(&store, &["service", "list", "--json"]);
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["services"][0]["name"], "web");
    assert_eq!(list["services"][0]["status"], "passing");
    assert_eq!(list["services"][0]["port"], port);
    let resolved = cli_json(
        &store,
        &["service", "resolve", "web", "--tag", "http", "--json"],
    );
    assert_eq!(resolved["count"], 1, "{resolved}");
    // The same over gRPC (`ListServices` / `ResolveService`, as the published client calls).
    let remote = cli_json(&store, &["--target", &target, "service", "list", "--json"]);
    assert_eq!(remote["services"][0]["id"], list["services"][0]["id"]);
    let remote = cli_json(
        &store,
        &["--target", &target, "service", "resolve", "web", "--json"],
    );
    assert_eq!(remote["count"], 1, "{remote}");
    let none = cli_json(
        &store,
        &["service", "resolve", "web", "--tag", "grpc", "--json"],
    );
    assert_eq!(none["count"], 0, "tags must all match: {none}");

    // The port closes: critical only after two failures in a row.
    server.abort();
    let seen = wait_changes(&store, &job, 2).await;
    assert_eq!(seen[1], (HealthStatus::Passing, HealthStatus::Critical));
    let events = history(&store, &job).await;
    let critical = events.iter().rev().find_map(|e| match &e.payload {
        JobEvent::ServiceHealthChanged { health, .. }
            if health.status == HealthStatus::Critical =>
        {
            Some(health.clone())
        }
        _ => None,
    });
    let critical = critical.expect("a critical health was recorded");
    for c in &critical.checks {
        assert_eq!(
            c.consecutive_failures, 2,
            "the first failure was suppressed: {c:?}"
        );
        assert!(c.error.is_some());
    }
    let resolved = cli_json(&store, &["service", "resolve", "web", "--json"]);
    assert_eq!(resolved["count"], 0, "a critical instance does not resolve");
    let all = cli_json(
        &store,
        &["service", "list", "--status", "critical", "--json"],
    );
    assert_eq!(all["count"], 1);

    // Back up: passing again.
    let _server = serve_http(port).await;
    let seen = wait_changes(&store, &job, 3).await;
    assert_eq!(seen[2], (HealthStatus::Critical, HealthStatus::Passing));

    // The job ends: its instances go with it.
    commands::execute(
        &store,
        &job,
        &JobCommand::Cancel {
            reason: "done".into(),
        },
        None,
    )
    .await
    .unwrap();
    wait_terminal(&store, &job, Duration::from_secs(10)).await;
    let gone = history(&store, &job).await.iter().any(|e| {
        matches!(&e.payload, JobEvent::ServiceDeregistered { reason, .. } if reason == "job_ended")
    });
    assert!(gone, "deregistered when the job ended");
    wait_for(Duration::from_secs(10), "the registry to empty", || async {
        let v = cli_json(&store, &["service", "list", "--json"]);
        (v["count"] == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_requiring_a_service_waits_until_a_provider_passes_then_runs() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let _a = spawn_node_env("a", &ns, &redis.url, dir.path(), &[FAST_CHECKS]);
    wait_healthy(&store, &["a"]).await;
    let consumer = consumer_bundle(dir.path(), "needs-llm", json!(["llm"]), Value::Null);
    let job = local::submit(&store, &load_bundle(&consumer).unwrap())
        .await
        .unwrap();
    let reason = wait_for(Duration::from_secs(15), "job_placement_blocked", || async {
        store.job_view(&job).await.ok()??.placement_blocked
    })
    .await;
    assert!(
        reason.contains("llm"),
        "the reason names the service: {reason}"
    );

    let port = free_port();
    let _server = serve_http(port).await;
    let services = json!([{"name": "llm", "address": "127.0.0.1", "port": port,
        "checks": [{"type": "tcp", "interval_ms": 200}]}]);
    let provider = provider_bundle(dir.path(), "llm", services, json!({}));
    let provider_job = local::submit(&store, &load_bundle(&provider).unwrap())
        .await
        .unwrap();
    assert_eq!(
        wait_terminal(&store, &job, Duration::from_secs(30)).await,
        JobStatus::Completed
    );
    let c = changes(&history(&store, &provider_job).await);
    assert_eq!(
        c[0],
        (HealthStatus::Warning, HealthStatus::Passing),
        "it ran once llm passed"
    );
    commands::execute(
        &store,
        &provider_job,
        &JobCommand::Cancel {
            reason: "done".into(),
        },
        None,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_nodes_instances_are_deregistered() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    // Two nodes from the start, so the job's recovery policy lets the survivor adopt it.
    let mut nodes = [
        spawn_node_env("a", &ns, &redis.url, dir.path(), &[FAST_CHECKS]),
        spawn_node_env("b", &ns, &redis.url, dir.path(), &[FAST_CHECKS]),
    ];
    wait_healthy(&store, &["a", "b"]).await;
    let provider = provider_bundle(dir.path(), "plain", json!(["plain-svc"]), json!({}));
    let job = local::submit(&store, &load_bundle(&provider).unwrap())
        .await
        .unwrap();
    let host = wait_for(
        Duration::from_secs(15),
        "the service registered",
        || async {
            let v = store.job_view(&job).await.ok()??;
            v.services.values().find_map(|s| s.node.clone())
        },
    )
    .await;
    let (survivor, lost) = if host == "a" { ("b", 0) } else { ("a", 1) };
    nodes[lost].kill9();
    let events = wait_for(Duration::from_secs(30), "deregistration on node loss", || async {
        let events = history(&store, &job).await;
        events
            .iter()
            .any(|e| matches!(&e.payload, JobEvent::ServiceDeregistered { reason, .. } if reason == "node_lost"))
            .then_some(events)
    })
    .await;
    let lost = events
        .iter()
        .position(|e| matches!(&e.payload, JobEvent::ServiceDeregistered { .. }));
    assert!(lost.is_some());
    // The job lives on, on the survivor, and its service with it.
    wait_for(
        Duration::from_secs(30),
        "the service registered on the survivor",
        || async {
            let v = store.job_view(&job).await.ok()??;
            v.services
                .values()
                .any(|s| s.node.as_deref() == Some(survivor))
                .then_some(())
        },
    )
    .await;
    commands::execute(
        &store,
        &job,
        &JobCommand::Cancel {
            reason: "done".into(),
        },
        None,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_fails_a_job_whose_required_service_is_missing_and_script_checks_need_consent() {
    let redis = common::redis();
    let store = common::store().await;
    let ns = store.keys().namespace().to_string();
    let dir = tempfile::tempdir().unwrap();
    let a = spawn_node_env("a", &ns, &redis.url, dir.path(), &[FAST_CHECKS]);
    wait_healthy(&store, &["a"]).await;
    let bundle = consumer_bundle(
        dir.path(),
        "needs-db",
        json!([]),
        json!(["db", {"name": "opt", "required": false}]),
    );
    let job = local::submit(&store, &load_bundle(&bundle).unwrap())
        .await
        .unwrap();
    assert_eq!(
        wait_terminal(&store, &job, Duration::from_secs(15)).await,
        JobStatus::Failed
    );
    let view = store.job_view(&job).await.unwrap().unwrap();
    let result = view.result.expect("a failed job has a result");
    assert_eq!(result["kind"], "service_requirements_not_met");
    let report = &result["report"];
    assert_eq!(report["version"], "validation.report/v1");
    assert_eq!(
        report["error_count"], 1,
        "the optional one is excused: {report}"
    );
    assert_eq!(report["issues"][0]["code"], "service.required_missing");
    assert_eq!(
        report["issues"][0]["location"]["path"],
        "required_services[0]"
    );
    let (_, inspect, _) = cli(&store, &["job", "inspect", &job]);
    assert!(
        inspect.contains("service_requirements_not_met") && inspect.contains("db"),
        "{inspect}"
    );

    // A local `run` preflights the same way (no cluster, this process is the node).
    let (code, out, err) = cli(&store, &["run", bundle.to_str().unwrap(), "--json"]);
    assert_ne!(code, 0, "the run must fail: {out}");
    assert!(
        (out.clone() + &err).contains("service_requirements_not_met"),
        "{out} {err}"
    );

    // Script checks: refused by this runtime unless the operator opts in.
    let script =
        json!([{"name": "s", "checks": [{"type": "script", "command": ["true"]}]}]).to_string();
    let (code, out, _) = cli(&store, &["service", "check", &script, "--json"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("MN_CORE_ALLOW_SCRIPT_CHECKS"), "{out}");
    // The node refuses them too (`CheckServices` runs the checks on the server).
    let target = common::wait_grpc_target(|| a.log_text());
    let (code, out, _) = cli(
        &store,
        &["--target", &target, "service", "check", &script, "--json"],
    );
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["issues"][0]["code"], "service.health_failed");
    assert!(out.contains("MN_CORE_ALLOW_SCRIPT_CHECKS"), "{out}");
}
