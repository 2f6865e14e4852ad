//! The v1 deployment RPCs end to end: a real server on loopback (in this process, on a real
//! Redis) with the leader's deployment controller running, driven by the generated client.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mirror_neuron::api::auth::Tokens;
use mirror_neuron::api::client::Client;
use mirror_neuron::api::context::ApiContext;
use mirror_neuron::api::pb::job_v1::*;
use mirror_neuron::api::server::{self, ServerConfig};
use mirror_neuron::runtime::node::{Node, NodeConfig};
use serde_json::{Value, json};
use tonic::Code;

const TOKEN: &str = "deploy-test-token";

struct Server {
    target: String,
    /// The store's namespace on the test Redis, for the CLI's local path.
    namespace: String,
    dir: tempfile::TempDir,
    _stop: tokio::sync::watch::Sender<bool>,
}

async fn start() -> Server {
    let namespace = common::namespace();
    let store = common::connect(&common::redis().url, &namespace).await;
    store.migrate(0).await.unwrap();
    let mut cfg = NodeConfig::from_env("deploy-test-node").unwrap();
    cfg.cluster.sweep_every = Duration::from_millis(200);
    let dir = tempfile::tempdir().unwrap();
    cfg.owner.temp_root = dir.path().join("runs");
    let node = Arc::new(Node::start(store.clone(), cfg).unwrap());
    // What `serve` runs beside the API: the controller that moves rollouts along.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let leading = node.leadership();
    tokio::spawn(mirror_neuron::runtime::deployments::run_deployment_loop(
        store.clone(),
        move || leading.load(Ordering::Relaxed),
        stopped,
    ));
    let ctx = ApiContext {
        store,
        node,
        bundles_dir: dir.path().join("bundles"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scfg = ServerConfig {
        addr,
        max_message_bytes: server::DEFAULT_MAX_MESSAGE_BYTES,
        tokens: Tokens::new(Some(TOKEN.into()), None),
    };
    tokio::spawn(server::serve(ctx, scfg, listener, std::future::pending()));
    Server {
        target: addr.to_string(),
        namespace,
        dir,
        _stop: stop,
    }
}

/// A long-running service: a router that starts an executor which sleeps. `sleep` is the
/// executor's command, so changing it changes exactly that agent.
fn manifest(sleep: &str) -> String {
    json!({
        "manifest_version": "1.0", "graph_id": "grpc_dep", "type": "service",
        "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "hold", "agent_type": "executor",
             "config": {"command": ["sleep", sleep], "output_message_type": "done"}},
        ],
        "edges": [{"from_node": "start", "to_node": "hold", "message_type": "go"}],
        "policies": {"update": {"min_healthy_ms": 200, "health_check": "agent_states"}},
    })
    .to_string()
}

fn deploy(manifest_json: String, key: &str, policy: Value) -> DeployJobRequest {
    DeployJobRequest {
        manifest_json,
        payloads: HashMap::new(),
        deployment_key: key.into(),
        update_policy_json: policy.to_string(),
        wait: true,
        version: 1,
    }
}

fn record(r: DeploymentResponse) -> Value {
    assert_eq!(r.version, 1);
    serde_json::from_str(&r.result_json).unwrap()
}

async fn get(c: &mut Client, id_or_key: &str) -> Value {
    record(
        c.jobs
            .get_deployment(GetDeploymentRequest {
                id_or_key: id_or_key.into(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner(),
    )
}

/// Polls the record until its status is `want` (panics after 60 s with the last record).
async fn wait_for(c: &mut Client, key: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = get(c, key).await;
        if r["status"] == want {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{key} never became {want}: {r:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn deploy_read_list_promote_and_roll_back_over_v1() {
    let s = start().await;
    let mut c = Client::connect(&s.target, Some(TOKEN)).await.unwrap();

    // The published client always sends its policy fields with `version: 1`.
    let policy = json!({"strategy": "rolling", "canary": 0, "max_parallel": 1,
                        "auto_promote": false, "auto_revert": false, "version": 1});
    let first = record(
        c.jobs
            .deploy_job(deploy(manifest("120"), "grpc-dep", policy))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(first["deployment_key"], "grpc-dep");
    assert_eq!(first["version"], "1");
    assert!(
        first["deployment_id"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let job_1 = first["job_id"].as_str().unwrap().to_string();

    let done = wait_for(&mut c, "grpc-dep", "successful").await;
    assert_eq!(done["version"], "1");
    assert_eq!(done["versions"].as_array().map(Vec::len), Some(1));
    assert!(!done["events"].as_array().unwrap().is_empty());
    // Found by its deployment id as well as by its key.
    let by_id = get(&mut c, first["deployment_id"].as_str().unwrap()).await;
    assert_eq!(by_id["deployment_key"], "grpc-dep");
    // No answer shows where the server keeps uploads.
    let text = done.to_string();
    assert!(
        !text.contains(&s.dir.path().display().to_string()),
        "{text}"
    );

    let list = |query: Value| ListDeploymentsRequest {
        query_json: query.to_string(),
        version: 1,
    };
    let all = record(
        c.jobs
            .list_deployments(list(json!({})))
            .await
            .unwrap()
            .into_inner(),
    );
    let keys: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["deployment_key"].as_str())
        .collect();
    assert_eq!(keys, ["grpc-dep"]);
    let failed = record(
        c.jobs
            .list_deployments(list(json!({"status": "failed"})))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(failed["data"], json!([]));

    // Promoting a finished rollout is refused as a precondition, naming the status.
    let err = c
        .jobs
        .promote_deployment(PromoteDeploymentRequest {
            id_or_key: "grpc-dep".into(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());

    // A canary update of the changed agent waits for promotion, then finishes.
    let canary = json!({"strategy": "canary", "canary": 1, "version": 1});
    c.jobs
        .deploy_job(deploy(manifest("121"), "grpc-dep", canary))
        .await
        .unwrap();
    let waiting = wait_for(&mut c, "grpc-dep", "awaiting_promotion").await;
    assert_eq!(waiting["version"], "2");
    assert_eq!(waiting["canary_agent_ids"], json!(["hold"]));
    let promoted = record(
        c.jobs
            .promote_deployment(PromoteDeploymentRequest {
                id_or_key: "grpc-dep".into(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(promoted["deployment_key"], "grpc-dep");
    let v2 = wait_for(&mut c, "grpc-dep", "successful").await;
    assert_eq!(v2["version"], "2");

    // A rollback to version 1 is a new version, 3.
    let back = record(
        c.jobs
            .rollback_deployment(RollbackDeploymentRequest {
                id_or_key: "grpc-dep".into(),
                version: "1".into(),
                tag: String::new(),
                reason: "test".into(),
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(back["version"], "3");
    let v3 = wait_for(&mut c, "grpc-dep", "successful").await;
    assert_eq!(v3["versions"].as_array().map(Vec::len), Some(3));

    // The sleeping executors would outlive the test.
    for job_id in [job_1, v3["job_id"].as_str().unwrap_or_default().to_string()] {
        let _ = c
            .jobs
            .cancel_job(CancelJobRequest { job_id, version: 1 })
            .await;
    }
}

#[tokio::test]
async fn bad_requests_name_the_field_and_unknown_keys_are_not_found() {
    let s = start().await;
    let mut c = Client::connect(&s.target, Some(TOKEN)).await.unwrap();

    let err = c
        .jobs
        .deploy_job(deploy(
            manifest("120"),
            "bad-dep",
            json!({"strategy": "sideways"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("update_policy_json.strategy"),
        "{}",
        err.message()
    );
    let mut not_json = deploy(manifest("120"), "bad-dep", json!({}));
    not_json.update_policy_json = "[1]".into();
    let err = c.jobs.deploy_job(not_json).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("update_policy_json"),
        "{}",
        err.message()
    );
    let err = c
        .jobs
        .deploy_job(deploy(manifest("120"), "no spaces", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    // A bundle that does not validate is refused as SubmitJob refuses it.
    let err = c
        .jobs
        .deploy_job(deploy("{\"nodes\": 3}".into(), "bad-dep", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = c
        .jobs
        .get_deployment(GetDeploymentRequest {
            id_or_key: "no-such-key".into(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let err = c
        .jobs
        .pause_deployment(DeploymentActionRequest {
            id_or_key: "no-such-key".into(),
            reason: String::new(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let err = c
        .jobs
        .rollback_deployment(RollbackDeploymentRequest {
            id_or_key: "no-such-key".into(),
            version: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    // Nothing was recorded by the refusals.
    let all = record(
        c.jobs
            .list_deployments(ListDeploymentsRequest {
                query_json: String::new(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(all["data"], json!([]));
}

/// Runs our CLI, locally (on the server's store) or through the server; returns the exit
/// code, stdout and stderr.
async fn cli(s: &Server, remote: bool, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"));
    cmd.args(args)
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", &s.namespace)
        .env("MN_HOME", s.dir.path().join("cli-home"))
        .env_remove("MN_GRPC_TARGET");
    if remote {
        cmd.env("MN_GRPC_TARGET", &s.target)
            .env("MN_GRPC_AUTH_TOKEN", TOKEN);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn our_cli_deploys_and_reports_the_same_locally_and_through_the_server() {
    let s = start().await;
    let bundle = |name: &str, sleep: &str| {
        let root = s.dir.path().join(name);
        std::fs::create_dir_all(root.join("payloads")).unwrap();
        std::fs::write(root.join("manifest.json"), manifest(sleep)).unwrap();
        root.display().to_string()
    };
    let (v1, v2) = (bundle("v1", "120"), bundle("v2", "121"));

    let (code, out, err) = cli(
        &s,
        true,
        &[
            "deployment",
            "deploy",
            &v1,
            "--key",
            "cli-dep",
            "--wait",
            "--timeout",
            "60",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}{out}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&r["status"], &r["version"]),
        (&json!("successful"), &json!("1"))
    );

    // One renderer: the same page either way.
    let (_, local, _) = cli(&s, false, &["deployment", "status", "cli-dep"]).await;
    let (_, remote, _) = cli(&s, true, &["deployment", "status", "cli-dep"]).await;
    assert!(
        local.starts_with("deployment cli-dep  successful  version 1"),
        "{local}"
    );
    assert_eq!(local, remote);
    let (code, out, _) = cli(&s, true, &["deployment", "list", "--json"]).await;
    assert_eq!(code, 0);
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["deployment_key"], "cli-dep");

    // A local canary update, recorded here and rolled out by the server's controller.
    let (code, out, err) = cli(
        &s,
        false,
        &[
            "deployment",
            "deploy",
            &v2,
            "--key",
            "cli-dep",
            "--strategy",
            "canary",
            "--canary",
            "1",
            "--tag",
            "two",
            "--wait",
            "--timeout",
            "60",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}{out}");
    assert!(
        out.starts_with("deployment cli-dep  awaiting_promotion  version 2"),
        "{out}"
    );
    let (code, out, err) = cli(&s, true, &["deployment", "promote", "cli-dep"]).await;
    assert_eq!(code, 0, "{err}{out}");
    let v2 = wait_for(
        &mut Client::connect(&s.target, Some(TOKEN)).await.unwrap(),
        "cli-dep",
        "successful",
    )
    .await;
    assert_eq!(v2["versions"][1]["tag"], "two");

    // Refused input exits 2 on both paths; other failures exit 1.
    for remote in [false, true] {
        let (code, _, err) = cli(
            &s,
            remote,
            &[
                "deployment",
                "deploy",
                &v1,
                "--strategy",
                "canary",
                "--auto-promote",
            ],
        )
        .await;
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("auto_promote"), "{err}");
        let (code, _, err) = cli(
            &s,
            remote,
            &["deployment", "rollback", "cli-dep", "--version", "x"],
        )
        .await;
        assert_eq!(code, 2, "{err}");
        let (code, _, err) = cli(&s, remote, &["deployment", "promote", "no-such-dep"]).await;
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("no-such-dep"), "{err}");
    }

    let mut c = Client::connect(&s.target, Some(TOKEN)).await.unwrap();
    if let Some(job_id) = v2["job_id"].as_str() {
        let _ = c
            .jobs
            .cancel_job(CancelJobRequest {
                job_id: job_id.into(),
                version: 1,
            })
            .await;
    }
}
