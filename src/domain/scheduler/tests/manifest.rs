//! `JobRequest::from_manifest`: which agents need placement and where their inputs come from.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::domain::manifest::{JobType, parse_manifest};
use crate::domain::scheduler::{JobRequest, JobRequestError, ProfileRequirement, Strategy};

fn request(doc: Value) -> Result<JobRequest, JobRequestError> {
    let m = parse_manifest(&doc).unwrap_or_else(|e| panic!("test manifest is valid: {e:?}"));
    JobRequest::from_manifest(&m)
}

fn doc(policies: Value, worker: Value) -> Value {
    let mut w = json!({"node_id": "w", "agent_type": "executor"});
    if let (Some(m), Value::Object(extra)) = (w.as_object_mut(), worker) {
        m.extend(extra);
    }
    // Every executor runs a command; the cases here are about placement fields.
    if let Some(m) = w.as_object_mut() {
        let config = m.entry("config").or_insert_with(|| json!({}));
        if let Some(c) = config.as_object_mut() {
            c.entry("command").or_insert_with(|| json!("true"));
        }
    }
    json!({
        "manifest_version": "1.0",
        "graph_id": "g",
        "policies": policies,
        "nodes": [{"node_id": "r", "agent_type": "router", "role": "root"}, w],
        "edges": [{"from_node": "r", "to_node": "w", "message_type": "m"}]
    })
}

#[test]
fn only_executors_and_modules_need_placement() {
    let r = request(doc(json!({}), json!({}))).expect("valid");
    let ids: Vec<&str> = r.tasks.iter().map(|t| t.agent_id.as_str()).collect();
    assert_eq!(ids, vec!["w"], "the router runs on the owner");
    assert_eq!(
        (r.job_id.as_str(), r.job_type, r.strategy),
        ("g", JobType::Batch, Strategy::Binpack)
    );
}

#[test]
fn policies_and_node_fields_are_read() {
    let r = request(doc(
        json!({"scheduler": {"strategy": "spread", "job_type": "service", "constraints": [{"attribute": "os", "value": "linux"}]},
               "constraints": ["cuda"]}),
        json!({
            "resources": {"cpu": 2, "memory": "1Gi"},
            "constraints": [{"attribute": "arch", "value": "arm64"}],
            "requires_services": ["llm"],
            "policies": {"scheduler": {"preferred_node": "n1"}},
            "config": {"execution_profile": "gpu-large", "runner_module": "MirrorNeuron.Runner.DockerWorker",
                       "image": "python:3.12-slim"}
        }),
    ))
    .expect("valid");
    assert_eq!(
        (r.strategy, r.job_type),
        (Strategy::Spread, JobType::Service)
    );
    let job_constraints: Vec<String> = r.constraints.iter().map(ToString::to_string).collect();
    assert_eq!(
        job_constraints,
        vec!["capabilities contains cuda", "os == linux"]
    );
    let t = &r.tasks[0];
    assert_eq!((t.demand.cpu_millis, t.demand.memory_mb), (2000, 1024));
    assert_eq!(t.constraints[0].to_string(), "arch == arm64");
    assert_eq!(t.preferred_nodes, vec!["n1"]);
    assert_eq!(t.requires_services[0].name, "llm");
    assert_eq!(t.execution_profile.as_deref(), Some("gpu-large"));
    assert_eq!(
        t.demand.runtime_driver.as_deref(),
        Some("docker_worker"),
        "inferred from runner_module"
    );
}

#[test]
fn config_resources_and_constraints_are_fallbacks() {
    let r = request(doc(
        json!({"scheduler_strategy": "spread"}),
        json!({"config": {"resources": {"cores": 3}, "constraints": {"os": "linux"}}}),
    ))
    .expect("valid");
    assert_eq!(r.strategy, Strategy::Spread);
    assert_eq!(r.tasks[0].demand.cpu_millis, 3000);
    assert_eq!(r.tasks[0].constraints[0].to_string(), "os == linux");
}

#[test]
fn errors_name_the_manifest_path() {
    let err = request(doc(
        json!({}),
        json!({"constraints": [{"attribute": "os", "operator": "like", "value": "l"}]}),
    ))
    .expect_err("bad operator");
    assert_eq!(
        err.to_string(),
        "nodes[1].constraints[0].operator: unsupported constraint operator \"like\""
    );
    let err = request(doc(
        json!({}),
        json!({"resources": {"memory": "12 furlongs"}}),
    ))
    .expect_err("bad unit");
    assert_eq!(
        err.to_string(),
        "nodes[1].resources.memory: unknown size unit \"furlongs\"; use Mi, Gi, M, G"
    );
}

#[test]
fn profiles_raise_gpu_demand_and_add_capabilities() {
    let r = request(doc(json!({}), json!({"config": {"profile": "gpu-large"}}))).expect("valid");
    let mut profiles = BTreeMap::new();
    let err = r
        .clone()
        .with_profiles(&profiles)
        .expect_err("not configured");
    assert_eq!(
        err.to_string(),
        "agent w: execution profile \"gpu-large\" is not configured"
    );
    profiles.insert(
        "gpu-large".to_string(),
        ProfileRequirement {
            gpu: true,
            required_capabilities: vec!["cuda".into()],
        },
    );
    let r = r.with_profiles(&profiles).expect("configured");
    assert_eq!(r.tasks[0].demand.gpus, 1);
    assert_eq!(
        r.tasks[0].constraints[0].to_string(),
        "capabilities contains cuda"
    );
}
