//! The gRPC API end to end: a real server on loopback (in this process, on a real Redis) and
//! the generated tonic clients, including auth, error codes and the stream contracts.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mirror_neuron::api::auth::Tokens;
use mirror_neuron::api::client::{Client, read_bundle};
use mirror_neuron::api::context::ApiContext;
use mirror_neuron::api::pb::cluster::cluster_service_client::ClusterServiceClient;
use mirror_neuron::api::pb::cluster::{
    AddNodeRequest, GetSystemSummaryRequest, NetworkHandshakeRequest, SetResourceRequest,
};
use mirror_neuron::api::pb::job_v1::*;
use mirror_neuron::api::pb::job_v2 as v2;
use mirror_neuron::api::pb::job_v2::job_service_client::JobServiceClient as V2Client;
use mirror_neuron::api::pb::observability::StreamEventsRequest;
use mirror_neuron::api::pb::operations::operations_service_client::OperationsServiceClient;
use mirror_neuron::api::pb::operations::{
    GetOperationRequest, StartOperationRequest, StreamOperationEventsRequest,
};
use mirror_neuron::api::server::{self, ServerConfig};
use mirror_neuron::runtime::node::{Node, NodeConfig};
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

const OPERATOR: &str = "operator-secret-token";
const ADMIN: &str = "admin-secret-token";

struct Server {
    target: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Where this server stores uploaded bundles.
    fn bundles_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("bundles")
    }
}

async fn start() -> Server {
    start_with_limit(server::DEFAULT_MAX_MESSAGE_BYTES).await
}

/// A server whose gRPC messages may be at most `max_message_bytes`.
async fn start_with_limit(max_message_bytes: usize) -> Server {
    let store = common::store().await;
    let mut cfg = NodeConfig::from_env("grpc-test-node").unwrap();
    cfg.cluster.sweep_every = Duration::from_millis(200);
    let dir = tempfile::tempdir().unwrap();
    cfg.owner.temp_root = dir.path().join("runs");
    let node = Arc::new(Node::start(store.clone(), cfg).unwrap());
    let ctx = ApiContext {
        store,
        node,
        bundles_dir: dir.path().join("bundles"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scfg = ServerConfig {
        addr,
        max_message_bytes,
        tokens: Tokens::new(Some(OPERATOR.into()), Some(ADMIN.into())),
    };
    tokio::spawn(server::serve(ctx, scfg, listener, std::future::pending()));
    Server {
        target: addr.to_string(),
        _dir: dir,
    }
}

async fn client(s: &Server, token: Option<&str>) -> Client {
    Client::connect(&s.target, token).await.unwrap()
}

fn bundle(name: &str) -> (String, std::collections::HashMap<String, Vec<u8>>) {
    read_bundle(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .unwrap()
}

fn slow_manifest() -> String {
    json!({
        "manifest_version": "1.0", "graph_id": "slow", "entrypoints": ["wait"],
        "nodes": [
            {"node_id": "wait", "agent_type": "executor", "config": {"command": ["sleep", "30"], "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [{"from_node": "wait", "to_node": "sink", "message_type": "done"}]
    })
    .to_string()
}

async fn job_json(c: &mut Client, id: &str) -> Value {
    let r = c
        .jobs
        .get_job(GetJobRequest {
            job_id: id.into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    serde_json::from_str(&r.job_json).unwrap()
}

async fn wait_status(c: &mut Client, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = c
            .jobs
            .get_job(GetJobRequest {
                job_id: id.into(),
                version: 1,
            })
            .await
        {
            let job: Value = serde_json::from_str(&r.into_inner().job_json).unwrap();
            if job["status"] == want {
                return job;
            }
        }
        assert!(Instant::now() < deadline, "job {id} never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn submit(
    c: &mut Client,
    manifest_json: String,
    payloads: std::collections::HashMap<String, Vec<u8>>,
) -> Result<String, tonic::Status> {
    c.jobs
        .submit_job(SubmitJobRequest {
            manifest_json,
            payloads,
            version: 1,
        })
        .await
        .map(|r| r.into_inner().job_id)
}

async fn events(c: &mut Client, id: &str, follow: bool) -> Vec<Value> {
    let req = StreamEventsRequest {
        job_id: id.into(),
        follow,
        heartbeat_interval_ms: 200,
        limit: 0,
        version: 1,
    };
    let mut stream = c.events.stream_events(req).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("stream stalled")
        .unwrap()
    {
        out.push(serde_json::from_str(&m.event_json).unwrap());
    }
    out
}

#[tokio::test]
async fn submit_run_read_and_stream_a_job() {
    let s = start().await;
    let mut c = client(&s, Some(OPERATOR)).await;
    let (m, p) = bundle("research_flow");
    let id = submit(&mut c, m, p).await.unwrap();
    let job = wait_status(&mut c, &id, "completed").await;
    for k in [
        "job_id",
        "graph_id",
        "status",
        "submitted_at",
        "updated_at",
        "result",
        "agents",
        "lease_owner",
    ] {
        assert!(job.get(k).is_some(), "GetJob lacks {k}: {job}");
    }
    assert_eq!(job["result"]["agent_id"], "reviewer");
    assert_eq!(job["agents"].as_array().unwrap().len(), 3);

    let list = c
        .jobs
        .list_jobs(ListJobsRequest {
            limit: 0,
            include_terminal: true,
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let rows: Value = serde_json::from_str(&list.jobs_json).unwrap();
    assert_eq!(rows["data"][0]["job_id"], json!(id));
    let active = c
        .jobs
        .list_jobs(ListJobsRequest {
            limit: 0,
            include_terminal: false,
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serde_json::from_str::<Value>(&active.jobs_json).unwrap()["data"],
        json!([])
    );

    // follow=false: the whole history, then the stream closes by itself.
    let history = events(&mut c, &id, false).await;
    assert_eq!(history.first().unwrap()["type"], "job_pending");
    assert_eq!(history.last().unwrap()["type"], "job_completed");
    assert!(
        history
            .iter()
            .all(|e| e["version"] == 1 && e["job_id"] == json!(id))
    );
    // follow=true on a finished job: ends at the terminal event too.
    let followed = events(&mut c, &id, true).await;
    assert_eq!(followed.last().unwrap()["result"]["agent_id"], "reviewer");

    let err = c
        .jobs
        .pause_job(PauseJobRequest {
            job_id: id.clone(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = c
        .jobs
        .get_job(GetJobRequest {
            job_id: "nope-1-abc".into(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .jobs
        .get_job(GetJobRequest {
            job_id: "a}b".into(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn following_a_running_job_streams_to_its_end_with_heartbeats() {
    let s = start().await;
    let mut c = client(&s, Some(OPERATOR)).await;
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "beat", "entrypoints": ["w"],
        "nodes": [
            {"node_id": "w", "agent_type": "executor", "config": {"command": ["sleep", "1"], "output_message_type": "done"}},
            {"node_id": "r", "agent_type": "router", "config": {"emit_type": "nowhere"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [{"from_node": "w", "to_node": "sink", "message_type": "done"}],
        "initial_inputs": {"w": [{}], "r": [{"lost": true}]}
    })
    .to_string();
    let mut m: Value = serde_json::from_str(&manifest).unwrap();
    m["entrypoints"] = json!(["w", "r"]);
    let id = submit(&mut c, m.to_string(), Default::default())
        .await
        .unwrap();
    let all = events(&mut c, &id, true).await;
    assert!(
        all.iter().any(|e| e["type"] == "stream_heartbeat"),
        "a heartbeat while the executor sleeps"
    );
    assert_eq!(all.last().unwrap()["type"], "job_completed");
    let dead: Vec<&Value> = all.iter().filter(|e| e["type"] == "dead_letter").collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["agent_id"], "r");
    assert!(dead[0]["reason"].as_str().unwrap().contains("nowhere"));
    assert!(dead[0]["timestamp"].is_string() && dead[0]["message"].is_object());

    // The job details and the cluster overview count the dead letter.
    let job = wait_status(&mut c, &id, "completed").await;
    assert_eq!(job["counters"]["dead_letters"], 1, "{job}");
    let mut cluster = ClusterServiceClient::with_interceptor(
        Channel::from_shared(format!("http://{}", s.target))
            .unwrap()
            .connect()
            .await
            .unwrap(),
        move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {OPERATOR}").parse().unwrap(),
            );
            Ok(r)
        },
    );
    let summary: Value = serde_json::from_str(
        &cluster
            .get_system_summary(GetSystemSummaryRequest { version: 1 })
            .await
            .unwrap()
            .into_inner()
            .summary_json,
    )
    .unwrap();
    let row = summary["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["job_id"] == id.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("job {id} in the summary: {summary}"));
    assert_eq!(row["dead_letters"], 1);
    assert!(
        summary["metrics"]["dead_letters"].as_u64() >= Some(1),
        "{summary}"
    );
}

#[tokio::test]
async fn pause_resume_cancel_a_running_job() {
    let s = start().await;
    let mut c = client(&s, Some(OPERATOR)).await;
    let id = submit(&mut c, slow_manifest(), Default::default())
        .await
        .unwrap();
    wait_status(&mut c, &id, "running").await;
    let r = c
        .jobs
        .pause_job(PauseJobRequest {
            job_id: id.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, "paused");
    let r = c
        .jobs
        .resume_job(ResumeJobRequest {
            job_id: id.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, "resumed");
    let r = c
        .jobs
        .cancel_job(CancelJobRequest {
            job_id: id.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, "cancelled");
    let job = wait_status(&mut c, &id, "cancelled").await;
    assert_eq!(job["result"]["reason"], "cancelled by operator");
    let err = c
        .jobs
        .cancel_job(CancelJobRequest {
            job_id: id,
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn bad_bundles_are_refused_with_every_error() {
    let s = start().await;
    let mut c = client(&s, Some(OPERATOR)).await;
    let bad = json!({"nodes": [{"node_id": "a", "agent_type": "wizard"}], "edges": [{"from_node": "a", "to_node": "ghost", "message_type": "x"}]});
    let err = submit(&mut c, bad.to_string(), Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for needle in ["manifest_version", "graph_id", "wizard", "ghost"] {
        assert!(
            err.message().contains(needle),
            "{needle} missing from {}",
            err.message()
        );
    }
    let (m, _) = bundle("research_flow");
    let escape = [("../outside.sh".to_string(), b"echo".to_vec())]
        .into_iter()
        .collect();
    let err = submit(&mut c, m, escape).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("../outside.sh"));
    let err = submit(&mut c, "{not json".into(), Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// The names under a folder (none when it does not exist), sorted.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// Each refusal must name what is wrong in the uploader's terms, show no server path, and
// leave nothing under the bundles folder: no bundle, no `.upload-*` temporary folder.
#[tokio::test]
async fn refused_uploads_name_the_key_and_leave_nothing_on_disk() {
    let s = start().await;
    let mut c = client(&s, Some(OPERATOR)).await;
    let (manifest, _) = bundle("flaky_retry");
    let script = b"echo '{}'".to_vec();
    let long_key = "k".repeat(5000);
    type Payloads = std::collections::HashMap<String, Vec<u8>>;
    let with = |keys: &[&str]| -> Payloads {
        let mut p: Payloads = keys
            .iter()
            .map(|k| (k.to_string(), script.clone()))
            .collect();
        p.insert("scripts/flaky_fetch.sh".into(), script.clone());
        p
    };
    let invalid_manifest = manifest.replace("scripts/flaky_fetch.sh", "scripts/missing.sh");
    let unknown_pool = manifest.replace(
        "\"timeout_seconds\": 30,",
        "\"timeout_seconds\": 30, \"pool\": \"nope\",",
    );
    let cases: Vec<(&str, String, Payloads, Vec<String>)> = vec![
        (
            "a file named like a payload folder",
            manifest.clone(),
            with(&["a", "a/b"]),
            vec!["\"a\"".into(), "\"a/b\"".into()],
        ),
        (
            "a 5,000-character key",
            manifest.clone(),
            with(&[&long_key]),
            vec![long_key[..80].to_string(), "5000 bytes".into()],
        ),
        (
            "a key leaving payloads/",
            manifest.clone(),
            with(&["../x"]),
            vec!["\"../x\"".into()],
        ),
        (
            "a manifest naming a payload that is not uploaded",
            invalid_manifest,
            with(&[]),
            vec![
                "nodes[0].config.upload_path".into(),
                "scripts/missing.sh".into(),
            ],
        ),
        (
            "an executor asking for a pool this server lacks",
            unknown_pool,
            with(&[]),
            vec!["nodes[0].config.pool".into(), "nope".into()],
        ),
        (
            "a manifest that is not a manifest",
            json!({"nodes": [{"node_id": "a", "agent_type": "wizard"}]}).to_string(),
            with(&[]),
            vec!["graph_id".into(), "wizard".into()],
        ),
    ];
    let server_dir = s._dir.path().display().to_string();
    for (what, manifest, payloads, needles) in cases {
        let err = submit(&mut c, manifest, payloads).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        for needle in needles {
            assert!(
                err.message().contains(&needle),
                "{what}: {needle:?} missing from {}",
                err.message()
            );
        }
        assert!(
            !err.message().contains(&server_dir),
            "{what}: the answer shows a server path: {}",
            err.message()
        );
        assert_eq!(
            entries(&s.bundles_dir()),
            Vec::<String>::new(),
            "{what}: left files behind"
        );
    }
    // A sound upload is stored once, with no temporary folder left.
    let (manifest, payloads) = bundle("flaky_retry");
    submit(&mut c, manifest, payloads).await.unwrap();
    let stored = entries(&s.bundles_dir());
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(!stored[0].starts_with('.'), "{stored:?}");
}

// A request over the server's limit is refused in words naming the setting: by our CLI before
// it sends (its own limit), and after the server refused it (the server's limit).
#[tokio::test]
async fn an_upload_over_the_message_limit_names_the_setting() {
    let s = start_with_limit(64 * 1024).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("big");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let (manifest, _) = bundle("research_flow");
    std::fs::write(root.join("manifest.json"), manifest).unwrap();
    std::fs::write(root.join("payloads/blob.bin"), vec![7u8; 200 * 1024]).unwrap();
    let bin = env!("CARGO_BIN_EXE_mirror-neuron");
    for client_limit in [None, Some("65536")] {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(["--target", &s.target, "run"])
            .arg(&root)
            .env("MN_GRPC_AUTH_TOKEN", OPERATOR)
            .env_remove("MN_GRPC_MAX_MESSAGE_BYTES");
        if let Some(limit) = client_limit {
            cmd.env("MN_GRPC_MAX_MESSAGE_BYTES", limit);
        }
        let out = cmd.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{client_limit:?}: {stderr}");
        assert!(
            stderr.contains("MN_GRPC_MAX_MESSAGE_BYTES"),
            "{client_limit:?}: {stderr}"
        );
        assert!(
            !stderr.contains("error: error:"),
            "{client_limit:?}: {stderr}"
        );
        assert!(
            !stderr.contains("h2 protocol error"),
            "{client_limit:?}: {stderr}"
        );
    }
    assert_eq!(entries(&s.bundles_dir()), Vec::<String>::new());
}

#[tokio::test]
async fn tokens_are_required_checked_and_never_echoed() {
    let s = start().await;
    for token in [None, Some("wrong")] {
        let mut c = client(&s, token).await;
        let err = c
            .jobs
            .list_jobs(ListJobsRequest {
                limit: 0,
                include_terminal: true,
                version: 1,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        let err = c
            .events
            .stream_events(StreamEventsRequest {
                job_id: "x-1-a".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "streams are guarded too");
        assert!(!err.message().contains(OPERATOR) && !err.message().contains(ADMIN));
    }
    // Health needs no token.
    let channel = Channel::from_shared(format!("http://{}", s.target))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Destructive calls need the admin token; the admin token passes everything.
    let mut op = client(&s, Some(OPERATOR)).await;
    let err = op
        .jobs
        .clear_jobs(ClearJobsRequest { version: 1 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut admin = client(&s, Some(ADMIN)).await;
    admin
        .jobs
        .clear_jobs(ClearJobsRequest { version: 1 })
        .await
        .unwrap();
    admin
        .jobs
        .list_jobs(ListJobsRequest {
            limit: 0,
            include_terminal: true,
            version: 1,
        })
        .await
        .unwrap();

    // No answer carries a token, not even the handshake that once leaked them.
    let mut cluster = ClusterServiceClient::new(channel);
    let err = cluster
        .network_handshake(NetworkHandshakeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut cluster = ClusterServiceClient::with_interceptor(
        Channel::from_shared(format!("http://{}", s.target))
            .unwrap()
            .connect()
            .await
            .unwrap(),
        move |mut r: tonic::Request<()>| {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
            Ok(r)
        },
    );
    let err = cluster
        .network_handshake(NetworkHandshakeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let summary = cluster
        .get_system_summary(GetSystemSummaryRequest { version: 1 })
        .await
        .unwrap()
        .into_inner()
        .summary_json;
    assert!(!summary.contains(OPERATOR) && !summary.contains(ADMIN));
    let nodes: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(nodes["nodes"][0]["name"], "grpc-test-node");
    let err = cluster
        .set_resource(SetResourceRequest {
            resource_json: r#"{"cpu": 140}"#.into(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let ok = cluster
        .set_resource(SetResourceRequest {
            resource_json: r#"{"cpu": 50}"#.into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ok.resource_json.contains("50"));
}

#[tokio::test]
async fn later_features_say_so() {
    let s = start().await;
    let mut c = client(&s, Some(OPERATOR)).await;
    let err = c
        .cluster
        .add_node(AddNodeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("cluster"), "{}", err.message());
}

fn result(r: ScheduleResponse) -> Value {
    serde_json::from_str(&r.result_json).unwrap()
}

#[tokio::test]
async fn schedules_triggers_and_events_over_v1() {
    let s = start().await;
    let mut c = client(&s, Some(OPERATOR)).await;
    let (manifest_json, payloads) = bundle("research_flow");
    let create = |schedule: Value, cli: &str| CreateScheduleRequest {
        manifest_json: manifest_json.clone(),
        payloads: payloads.clone(),
        schedule_json: schedule.to_string(),
        source_json: json!({ "cli": cli }).to_string(),
        version: 1,
    };
    // The exact shape `mn schedule create` sends.
    let periodic = json!({"kind":"periodic","crons":["0 3 * * *"],"name":"nightly",
        "missed_policy":"skip","catchup_limit":10,"prohibit_overlap":true,
        "timezone":"Europe/Berlin","version":1});
    let made = result(
        c.jobs
            .create_schedule(create(periodic, "schedule create"))
            .await
            .unwrap()
            .into_inner(),
    );
    let id = made["schedule_id"].as_str().unwrap().to_string();
    assert_eq!(made["id"], json!(id));
    assert_eq!(made["status"], "active");
    assert_eq!(made["name"], "nightly");
    assert!(made["next_run_at"].as_str().unwrap().ends_with('Z'));
    let got = result(
        c.jobs
            .get_schedule(GetScheduleRequest {
                schedule_id: id.clone(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(got["timezone"], "Europe/Berlin");

    let bad = json!({"kind":"periodic","crons":["0 3 * * *", "0 25 * * *"],"version":1});
    let err = c
        .jobs
        .create_schedule(create(bad, "schedule create"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("schedule.crons[1]"),
        "{}",
        err.message()
    );

    let trigger = json!({"kind":"event","name":"on-order","prohibit_overlap":true,
        "trigger":{"event_type":"order.created","filters":{"region":{"prefix":"eu"}}},"version":1});
    let t = result(
        c.jobs
            .create_schedule(create(trigger, "trigger create"))
            .await
            .unwrap()
            .into_inner(),
    );
    let listed = result(
        c.jobs
            .list_schedules(ListSchedulesRequest {
                query_json: r#"{"kind":"event"}"#.into(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["schedule_id"], t["schedule_id"]);

    let emitted = result(
        c.jobs
            .emit_trigger_event(EmitTriggerEventRequest {
                event_type: "order.created".into(),
                payload_json: r#"{"region":"eu-west","id":7}"#.into(),
                source: "cli".into(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(emitted["event_id"].as_str().unwrap().starts_with("event_"));
    assert_eq!(emitted["status"], "emitted");
    assert_eq!(emitted["schedule_id"], t["schedule_id"]);
    let job_id = emitted["job_id"].as_str().unwrap().to_string();
    let job = c
        .jobs
        .get_job(GetJobRequest {
            job_id: job_id.clone(),
            version: 1,
        })
        .await;
    assert!(job.is_ok(), "the triggered run is a job: {job:?}");
    let events = result(
        c.jobs
            .list_trigger_events(ListTriggerEventsRequest {
                limit: 0,
                version: 1,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(events["data"][0]["payload"]["id"], 7);

    let ran = result(
        c.jobs
            .dispatch_schedule(DispatchScheduleRequest {
                schedule_id: id.clone(),
                payload_json: r#"{"x":1}"#.into(),
                reason: "manual".into(),
                version: 1,
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(ran["job_id"].as_str().unwrap().starts_with(&id));
    let action = |schedule_id: &str| ScheduleActionRequest {
        schedule_id: schedule_id.into(),
        attrs_json: String::new(),
        reason: "test".into(),
        version: 1,
    };
    let paused = result(
        c.jobs
            .pause_schedule(action(&id))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(paused["status"], "paused");
    let resumed = result(
        c.jobs
            .resume_schedule(action(&id))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(resumed["status"], "active");
    let updated = result(
        c.jobs
            .update_schedule(ScheduleActionRequest {
                attrs_json: r#"{"crons":["30 4 * * *"]}"#.into(),
                ..action(&id)
            })
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(updated["crons"], json!(["30 4 * * *"]));
    let deleted = result(
        c.jobs
            .delete_schedule(action(&id))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(deleted["status"], "deleted");
    let err = c
        .jobs
        .get_schedule(GetScheduleRequest {
            schedule_id: id.clone(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .jobs
        .pause_schedule(action("sched_nope"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn cancel_all_runs_as_an_operation_with_a_closing_stream() {
    let s = start().await;
    let mut c = client(&s, Some(ADMIN)).await;
    let a = submit(&mut c, slow_manifest(), Default::default())
        .await
        .unwrap();
    let b = submit(&mut c, slow_manifest(), Default::default())
        .await
        .unwrap();
    wait_status(&mut c, &a, "running").await;
    let channel = Channel::from_shared(format!("http://{}", s.target))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut ops = OperationsServiceClient::with_interceptor(channel, |mut r: tonic::Request<()>| {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
        Ok(r)
    });
    let started = ops
        .start_operation(StartOperationRequest {
            kind: "cancel_all_jobs".into(),
            options_json: "{}".into(),
            version: 1,
        })
        .await
        .unwrap();
    let op: Value = serde_json::from_str(&started.into_inner().operation_json).unwrap();
    let op_id = op["operation_id"].as_str().unwrap().to_string();
    let req = StreamOperationEventsRequest {
        operation_id: op_id.clone(),
        after_sequence: 0,
        follow: true,
        heartbeat_interval_ms: 1000,
        version: 1,
    };
    let mut stream = ops.stream_operation_events(req).await.unwrap().into_inner();
    let mut seen = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("operation stream stalled")
        .unwrap()
    {
        seen.push(serde_json::from_str::<Value>(&m.event_json).unwrap());
    }
    let completed: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "item_completed")
        .collect();
    assert_eq!(completed.len(), 2);
    assert!(completed.iter().all(|e| e["status"] == "cancelled"));
    let last = seen.last().unwrap();
    assert!(
        last.get("status").is_none() && last.get("item_id").is_none(),
        "the final event has no bare status: {last}"
    );
    let seqs: Vec<u64> = seen.iter().filter_map(|e| e["sequence"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let done = ops
        .get_operation(GetOperationRequest {
            operation_id: op_id,
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let done: Value = serde_json::from_str(&done.operation_json).unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["counters"]["succeeded"], 2);
    wait_status(&mut c, &a, "cancelled").await;
    wait_status(&mut c, &b, "cancelled").await;
    let err = ops
        .get_operation(GetOperationRequest {
            operation_id: "op-missing".into(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn stable_jobs_and_their_runs() {
    let s = start().await;
    let channel = Channel::from_shared(format!("http://{}", s.target))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut v2c = V2Client::with_interceptor(channel, |mut r: tonic::Request<()>| {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {OPERATOR}").parse().unwrap(),
        );
        Ok(r)
    });
    let (manifest_json, payloads) = bundle("research_flow");
    let created = v2c
        .create_job(v2::CreateJobRequest {
            manifest_json,
            payloads,
            job_id: "research".into(),
            version: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serde_json::from_str::<Value>(&created.result_json).unwrap()["job_id"],
        "research"
    );
    let run = v2c
        .start_run(v2::StartRunRequest {
            job_id: "research".into(),
            version: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let run_id = serde_json::from_str::<Value>(&run.result_json).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = client(&s, Some(OPERATOR)).await;
    wait_status(&mut c, &run_id, "completed").await; // a run id is a v1 job id
    let got = v2c
        .get_run(v2::RunRequest {
            run_id: run_id.clone(),
            version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serde_json::from_str::<Value>(&got.result_json).unwrap()["status"],
        "completed"
    );
    let runs = v2c
        .list_runs(v2::JobRequest {
            job_id: "research".into(),
            version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serde_json::from_str::<Value>(&runs.result_json).unwrap()["data"][0]["run_id"],
        json!(run_id)
    );
    let defs = v2c
        .list_jobs(v2::ListJobsRequest {
            include_archived: false,
            version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serde_json::from_str::<Value>(&defs.result_json).unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let err = v2c
        .get_job(v2::JobRequest {
            job_id: "missing".into(),
            version: 2,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

// The CLI runs as a child process; the server in this process must keep serving meanwhile,
// so the child is awaited with tokio, never blocked on.
#[tokio::test]
async fn our_cli_works_against_the_server() {
    let s = start().await;
    let bin = env!("CARGO_BIN_EXE_mirror-neuron");
    let run = tokio::process::Command::new(bin)
        .args([
            "--target",
            &s.target,
            "run",
            "examples/research_flow",
            "--wait",
            "--json",
        ])
        .env("MN_GRPC_AUTH_TOKEN", OPERATOR)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{:?}\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr),
        String::from_utf8_lossy(&run.stdout)
    );
    let job: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(job["status"], "completed");
    let id = job["job_id"].as_str().unwrap();
    let list = tokio::process::Command::new(bin)
        .args(["job", "list", "--json"])
        .env("MN_GRPC_TARGET", &s.target)
        .env("MN_GRPC_AUTH_TOKEN", OPERATOR)
        .output()
        .await
        .unwrap();
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["job_id"], json!(id));
    let denied = tokio::process::Command::new(bin)
        .args(["job", "list"])
        .env("MN_GRPC_TARGET", &s.target)
        .env("MN_GRPC_AUTH_TOKEN", "wrong")
        .output()
        .await
        .unwrap();
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("unauthenticated"));
    let mut c = client(&s, Some(OPERATOR)).await;
    assert_eq!(job_json(&mut c, id).await["status"], "completed");
    // The scheduler's dry run through the server: the one node takes every executor.
    let plan = tokio::process::Command::new(bin)
        .args(["plan", "examples/prime_sweep", "--json"])
        .env("MN_GRPC_TARGET", &s.target)
        .env("MN_GRPC_AUTH_TOKEN", OPERATOR)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .unwrap();
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let report: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(report["placeable"], true, "{report}");
    let placements = report["plan"]["placements"].as_array().unwrap();
    assert!(!placements.is_empty(), "{report}");
    assert!(
        placements.iter().all(|p| p["node"] == "grpc-test-node"),
        "{report}"
    );
}

#[tokio::test]
async fn a_paused_job_is_backed_up_and_restored_with_its_progress() {
    let s = start().await;
    let mut c = client(&s, Some(ADMIN)).await;
    let manifest = slow_manifest().replace(r#"["sleep","30"]"#, r#"["sleep","1"]"#);
    let id = submit(&mut c, manifest, Default::default()).await.unwrap();
    wait_status(&mut c, &id, "running").await;
    let err = c
        .jobs
        .export_job_backup(ExportJobBackupRequest {
            job_id: id.clone(),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "only paused jobs");
    c.jobs
        .pause_job(PauseJobRequest {
            job_id: id.clone(),
            version: 1,
        })
        .await
        .unwrap();
    // The executor in flight finishes while paused; its result waits in the sink's queue.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let backup = c
        .jobs
        .export_job_backup(ExportJobBackupRequest {
            job_id: id.clone(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(backup.bundle_files.contains_key("manifest.json"));
    let b: Value = serde_json::from_str(&backup.backup_json).unwrap();
    assert_eq!(b["schema_version"], "mn.backup.v2");
    assert_eq!(b["runtime"]["job"]["status"], "paused");
    assert!(b["runtime"]["events"].as_array().unwrap().len() >= 5);

    let restored = c
        .jobs
        .restore_job_backup(RestoreJobBackupRequest {
            backup_json: backup.backup_json,
            bundle_files: backup.bundle_files,
            blueprint_id: "slow".into(),
            run_id: "slow-restored-1".into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let r: Value = serde_json::from_str(&restored.result_json).unwrap();
    assert_eq!(r["job_id"], "slow-restored-1");
    assert_eq!(r["source_job_id"], json!(id));
    let paused = wait_status(&mut c, "slow-restored-1", "paused").await;
    assert_eq!(
        paused["counters"]["steps_finished"], 1,
        "the executor's finished step came along"
    );
    c.jobs
        .resume_job(ResumeJobRequest {
            job_id: "slow-restored-1".into(),
            version: 1,
        })
        .await
        .unwrap();
    let done = wait_status(&mut c, "slow-restored-1", "completed").await;
    assert_eq!(done["result"]["agent_id"], "sink");
}

#[tokio::test]
async fn reflection_lists_every_service_in_both_protocol_versions() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::{v1, v1alpha};
    let s = start().await;
    let channel = Channel::from_shared(format!("http://{}", s.target))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let req = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(reply)) = replies.next().await else {
        panic!("no reflection reply")
    };
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("unexpected reflection reply")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "mirrorneuron.job.v1.JobService",
        "mirrorneuron.job.v2.JobService",
        "mirrorneuron.cluster.v1.ClusterService",
        "mirrorneuron.observability.v1.ObservabilityService",
        "mirrorneuron.operations.v1.OperationsService",
        "mirrorneuron.scheduler.v1.SchedulerService",
    ] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing from {names:?}"
        );
    }
    // grpcurl 1.8 speaks only v1alpha.
    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let req = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut replies = alpha
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(replies.next().await, Some(Ok(_))));
}

#[tokio::test]
async fn plan_job_says_where_a_manifest_would_run_or_why_it_cannot() {
    use mirror_neuron::api::pb::scheduler::PlanJobRequest;
    let s = start().await;
    let c = client(&s, Some(OPERATOR)).await;
    let manifest = |resources: Value| {
        json!({
            "manifest_version": "1.0", "graph_id": "dry", "entrypoints": ["work"],
            "nodes": [{"node_id": "work", "agent_type": "executor", "resources": resources,
                       "config": {"command": ["true"]}}],
            "edges": []
        })
        .to_string()
    };
    let plan = |m: String| {
        let mut c = c.clone();
        async move {
            c.scheduler
                .plan_job(PlanJobRequest {
                    manifest_json: m,
                    version: 1,
                })
                .await
                .map(|r| serde_json::from_str::<Value>(&r.into_inner().plan_json).unwrap())
        }
    };
    // The in-process node joins the cluster shortly after it starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = loop {
        let r = plan(manifest(json!({"cpu": 0.25}))).await.unwrap();
        if r["placeable"] == true {
            break r;
        }
        assert!(Instant::now() < deadline, "never placeable: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report["job_id"], "dry");
    assert_eq!(report["strategy"], "binpack");
    let p = &report["plan"]["placements"][0];
    assert_eq!(p["agent_id"], "work", "{report}");
    assert_eq!(p["node"], "grpc-test-node", "{report}");
    assert_eq!(p["cpu_millis"], 250, "{report}");

    let r = plan(manifest(json!({"gpu_count": 1000}))).await.unwrap();
    assert_eq!(r["placeable"], false, "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("agent work")),
        "{r}"
    );

    let bad = plan(manifest(json!({"devices": [{"kind": "gpu", "count": 0}]})))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("count"), "{}", bad.message());
    let bad = plan("{".into()).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let mut anonymous = client(&s, None).await;
    let denied = anonymous
        .scheduler
        .plan_job(PlanJobRequest {
            manifest_json: manifest(json!({})),
            version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated);
}
