//! [`JobRequest`]: what the planner is asked to place, read from a validated manifest.
//!
//! Only executors and modules get placements: the built-in router, aggregator and sensor
//! agents run inside the job's owner process and take no node resources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::constraints::{Constraint, Operator};
use super::resources::{Demand, DemandError};
use super::services::ServiceRequirement;
use crate::domain::manifest::{AgentType, JobType, Manifest};

/// How the planner chooses among feasible nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Fill nodes already in use before opening an empty one.
    #[default]
    Binpack,
    /// Put the job's tasks on distinct, least-used nodes.
    Spread,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "binpack" => Some(Strategy::Binpack),
            "spread" => Some(Strategy::Spread),
            _ => None,
        }
    }
}

/// One agent to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRequest {
    pub agent_id: String,
    pub demand: Demand,
    /// The node's own constraints (job-wide ones live on [`JobRequest`]).
    pub constraints: Vec<Constraint>,
    pub execution_profile: Option<String>,
    /// Nodes to use when feasible, before any scoring.
    pub preferred_nodes: Vec<String>,
    /// Services that must be passing on the chosen node.
    #[serde(default)]
    pub requires_services: Vec<ServiceRequirement>,
}

/// A whole job to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    pub job_id: String,
    pub job_type: JobType,
    pub strategy: Strategy,
    pub preferred_nodes: Vec<String>,
    /// Apply to every task, in front of the task's own.
    pub constraints: Vec<Constraint>,
    pub tasks: Vec<TaskRequest>,
}

/// What an execution profile adds to a task that uses it (core-spec 7.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRequirement {
    /// Raises the task's GPU demand to at least one.
    pub gpu: bool,
    pub required_capabilities: Vec<String>,
}

/// Why a manifest cannot be turned into a request; fix the manifest (or the profile config).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRequestError {
    #[error(transparent)]
    Invalid(#[from] DemandError),
    /// The cluster's profile configuration cannot be read (names the setting and field).
    #[error("{0}")]
    ProfileConfig(String),
    #[error("agent {agent_id}: execution profile {profile:?} is not configured")]
    UnknownProfile { agent_id: String, profile: String },
}

impl JobRequest {
    /// Reads placement inputs from `manifest` (job id = graph id; the runtime may overwrite it).
    pub fn from_manifest(manifest: &Manifest) -> Result<JobRequest, JobRequestError> {
        let empty = Map::new();
        let policies = manifest.policies.as_object().unwrap_or(&empty);
        let scheduler = policies
            .get("scheduler")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut constraints = Vec::new();
        for (map, path) in [(policies, "policies"), (scheduler, "policies.scheduler")] {
            if let Some(c) = map.get("constraints") {
                constraints.extend(Constraint::parse_list(c, &format!("{path}.constraints"))?);
            }
        }
        let mut tasks = Vec::new();
        for (i, node) in manifest.nodes.iter().enumerate() {
            match node.agent_type {
                AgentType::Executor | AgentType::Module => {
                    tasks.push(task(node, &manifest.node_path(i))?);
                }
                AgentType::Router | AgentType::Aggregator | AgentType::Sensor => {}
            }
        }
        Ok(JobRequest {
            job_id: manifest.graph_id.clone(),
            job_type: manifest.job_type,
            strategy: strategy(policies, scheduler)?,
            preferred_nodes: names(scheduler, &["preferred_nodes", "preferred_node"]),
            constraints,
            tasks,
        })
    }

    /// Applies the cluster's execution profiles: a task naming an unknown one is an error, a
    /// `gpu` profile raises the GPU demand, required capabilities become constraints.
    pub fn with_profiles(
        mut self,
        profiles: &BTreeMap<String, ProfileRequirement>,
    ) -> Result<JobRequest, JobRequestError> {
        for task in &mut self.tasks {
            let Some(name) = &task.execution_profile else {
                continue;
            };
            let Some(profile) = profiles.get(name) else {
                return Err(JobRequestError::UnknownProfile {
                    agent_id: task.agent_id.clone(),
                    profile: name.clone(),
                });
            };
            if profile.gpu {
                task.demand.require_gpus(task.demand.gpus.max(1));
            }
            if !profile.required_capabilities.is_empty() {
                let caps = profile.required_capabilities.join(",");
                task.constraints
                    .push(Constraint::new("capabilities", Operator::Contains, &caps));
            }
        }
        Ok(self)
    }

    /// Whether the job forbids two of its tasks on one node.
    pub fn distinct_hosts(&self) -> bool {
        self.constraints.iter().any(Constraint::is_distinct_hosts)
    }
}

fn strategy(
    policies: &Map<String, Value>,
    scheduler: &Map<String, Value>,
) -> Result<Strategy, DemandError> {
    let found = [
        (
            policies,
            "policies.scheduler_strategy",
            "scheduler_strategy",
        ),
        (scheduler, "policies.scheduler.strategy", "strategy"),
    ]
    .into_iter()
    .find_map(|(map, path, key)| map.get(key).filter(|v| !v.is_null()).map(|v| (path, v)));
    match found {
        None => Ok(Strategy::Binpack),
        Some((path, v)) => v
            .as_str()
            .and_then(Strategy::parse)
            .ok_or_else(|| DemandError::new(path, format!("unsupported scheduler strategy {v}"))),
    }
}

fn task(node: &crate::domain::manifest::NodeSpec, path: &str) -> Result<TaskRequest, DemandError> {
    let mut demand = Demand::parse(&node.resources, &format!("{path}.resources"))?;
    if demand.runtime_driver.is_none() {
        demand.runtime_driver = inferred_driver(&node.config);
    }
    let constraints = match (
        node.extensions.get("constraints"),
        node.config.get("constraints"),
    ) {
        (Some(c), _) => Constraint::parse_list(c, &format!("{path}.constraints"))?,
        (None, Some(c)) => Constraint::parse_list(c, &format!("{path}.config.constraints"))?,
        (None, None) => Vec::new(),
    };
    let empty = Map::new();
    let policies = node.policies.as_object().unwrap_or(&empty);
    let scheduler = policies
        .get("scheduler")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut preferred = names(
        scheduler,
        &["preferred_node", "preferredNode", "preferred_nodes"],
    );
    if preferred.is_empty() {
        preferred = names(policies, &["preferred_node"]);
    }
    let profile = ["execution_profile", "profile"]
        .iter()
        .find_map(|k| node.config.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_string());
    // Typed once at validation; entries with `required: false` do not constrain placement.
    let requires_services = node
        .requires_services
        .iter()
        .filter(|s| s.required)
        .map(ServiceRequirement::of)
        .collect();
    Ok(TaskRequest {
        agent_id: node.node_id.clone(),
        demand,
        constraints,
        execution_profile: profile,
        preferred_nodes: preferred,
        requires_services,
    })
}

/// Node names under the first of `keys`: a string or a list of strings.
fn names(map: &Map<String, Value>, keys: &[&str]) -> Vec<String> {
    let Some(v) = keys.iter().find_map(|k| map.get(*k)) else {
        return Vec::new();
    };
    match v {
        Value::String(s) if !s.trim().is_empty() => vec![s.trim().to_string()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The driver implied by `config.runner_module` (`...HostLocal` → `host_local`), or by
/// `config.sandbox` / `config.container` settings (those runners: only nodes where they work
/// can run them).
fn inferred_driver(config: &Map<String, Value>) -> Option<String> {
    let module = config.get("runner_module").and_then(Value::as_str);
    let Some(module) = module else {
        let set = |key: &str| config.get(key).is_some_and(|v| !v.is_null());
        return if set("container") {
            Some("docker_worker".to_string())
        } else {
            set("sandbox").then(|| "sandbox".to_string())
        };
    };
    [
        (".HostLocal", "host_local"),
        (".OpenShell", "openshell"),
        (".DockerWorker", "docker_worker"),
    ]
    .iter()
    .find(|(suffix, _)| module.ends_with(suffix))
    .map(|(_, driver)| driver.to_string())
}
