//! The instances a job registers (core-spec 9.1): its job-level services on the owner's node,
//! and each agent's services on the node the agent runs on (its planned node for executors,
//! else the owner's). Templates are resolved here, where the node and the bundle are known.

use std::path::Path;

use serde_json::{Map, Value};

use crate::domain::job::JobState;
use crate::domain::manifest::{Manifest, NodeSpec};
use crate::domain::service::template::{TemplateContext, resolve_spec};
use crate::domain::service::{Registration, ServiceRecord, ServiceSpec};

/// The blueprint config templates read: `MN_BLUEPRINT_CONFIG_JSON` in the environment given,
/// else `config/default.json` deep-merged with `config/overwrite.json` under `bundle_root`.
pub fn blueprint_config(env: &Map<String, Value>, bundle_root: Option<&Path>) -> Value {
    if let Some(v) = env
        .get("MN_BLUEPRINT_CONFIG_JSON")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
    {
        return v;
    }
    let read = |name: &str| -> Value {
        bundle_root
            .map(|r| r.join("config").join(name))
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    let mut config = read("default.json");
    deep_merge(&mut config, read("overwrite.json"));
    if config.is_null() {
        Value::Object(Map::new())
    } else {
        config
    }
}

fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                deep_merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// An agent's `config.environment` as an object (what `${env.X}` reads).
fn agent_env(node: &NodeSpec) -> Map<String, Value> {
    node.config
        .get("environment")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Where the job runs: what every instance's context shares.
pub struct Site<'a> {
    pub owner_node: &'a str,
    pub bundle_root: Option<&'a Path>,
    pub now_ms: i64,
}

/// Every instance the job should have registered now.
pub fn desired(state: &JobState, manifest: &Manifest, site: &Site<'_>) -> Vec<ServiceRecord> {
    let mut out = Vec::new();
    let base = TemplateContext {
        job_id: state.job_id.clone(),
        graph_id: state.graph_id.clone(),
        job_name: state.job_name.clone(),
        node: site.owner_node.to_string(),
        bundle_root: site
            .bundle_root
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        config: blueprint_config(&Map::new(), site.bundle_root),
        ..TemplateContext::default()
    };
    let job_deployment = state.deployment.job.as_ref();
    for spec in &manifest.services {
        out.push(record(spec, &base, None, job_deployment, site));
    }
    for node in manifest.nodes.iter().filter(|n| !n.services.is_empty()) {
        let placed = state
            .plan
            .as_ref()
            .and_then(|p| p.allocations.iter().find(|a| a.agent_id == node.node_id))
            .map_or(site.owner_node, |a| a.node.as_str());
        let env = agent_env(node);
        let ctx = TemplateContext {
            node: placed.to_string(),
            config: blueprint_config(&env, site.bundle_root),
            env,
            agent_id: Some(node.node_id.clone()),
            source_agent_id: Some(node.node_id.clone()),
            ..base.clone()
        };
        let deployment = state.deployment.of_agent(&node.node_id);
        for spec in &node.services {
            out.push(record(spec, &ctx, Some(&node.node_id), deployment, site));
        }
    }
    out
}

fn record(
    spec: &ServiceSpec,
    ctx: &TemplateContext,
    agent: Option<&str>,
    deployment: Option<&crate::domain::job::JobDeployment>,
    site: &Site<'_>,
) -> ServiceRecord {
    ServiceRecord::new(
        resolve_spec(spec, ctx),
        &Registration {
            job_id: ctx.job_id.clone(),
            agent_id: agent.map(str::to_string),
            node: Some(ctx.node.clone()),
            bundle_root: Some(ctx.bundle_root.clone()).filter(|r| !r.is_empty()),
            deployment_role: None,
            deployment: deployment.cloned(),
            now_ms: site.now_ms,
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn config_comes_from_the_env_json_else_the_merged_bundle_files() {
        let env = json!({"MN_BLUEPRINT_CONFIG_JSON": "{\"service\":{\"port\":9}}"});
        let env = env.as_object().cloned().unwrap_or_default();
        assert_eq!(blueprint_config(&env, None)["service"]["port"], 9);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("config")).expect("mkdir");
        std::fs::write(
            dir.path().join("config/default.json"),
            r#"{"service":{"port":1,"host":"h"}}"#,
        )
        .expect("write");
        std::fs::write(
            dir.path().join("config/overwrite.json"),
            r#"{"service":{"port":2}}"#,
        )
        .expect("write");
        let merged = blueprint_config(&Map::new(), Some(dir.path()));
        assert_eq!(merged, json!({"service": {"port": 2, "host": "h"}}));
    }
}

#[cfg(test)]
mod desired_tests {
    use serde_json::json;

    use super::*;
    use crate::domain::job::JobState;
    use crate::domain::manifest::parse_manifest;
    use crate::domain::scheduler::Plan;

    #[test]
    fn job_services_land_on_the_owner_and_agent_services_on_the_agents_planned_node() {
        let manifest = parse_manifest(&json!({
            "manifest_version": "1.0", "graph_id": "g", "entrypoints": ["w"],
            "services": ["api"],
            "nodes": [{"node_id": "w", "agent_type": "executor",
                       "config": {"command": "true", "environment": {"PORT": "7001"}},
                       "services": [{"name": "worker", "port": "${env.PORT}"}]}],
            "edges": [],
        }))
        .expect("valid manifest");
        let mut state = JobState::new("j1");
        state.plan = Some(
            serde_json::from_value::<Plan>(json!({
                "status": "planned", "job_id": "g", "job_type": "batch", "strategy": "binpack",
                "placement_count": 1,
                "requirements": {"cpu_millis": 0, "memory_mb": 0, "disk_mb": 0, "gpu_count": 0},
                "placements": [{"agent_id": "w", "node": "gpu-1", "cpu_millis": 0, "memory_mb": 0,
                                "disk_mb": 0, "gpus": 0, "device_ids": []}]
            }))
            .expect("plan"),
        );
        let site = Site {
            owner_node: "owner",
            bundle_root: None,
            now_ms: 1,
        };
        let out = desired(&state, &manifest, &site);
        let by_name = |n: &str| {
            out.iter()
                .find(|r| r.service.name == n)
                .expect("registered")
        };
        assert_eq!(by_name("api").node.as_deref(), Some("owner"));
        assert_eq!(by_name("api").id, "j1:job:api");
        let worker = by_name("worker");
        assert_eq!(worker.node.as_deref(), Some("gpu-1"));
        assert_eq!(worker.agent_id.as_deref(), Some("w"));
        assert_eq!(
            worker.service.port.as_ref().and_then(|p| p.number()),
            Some(7001)
        );
    }
}
