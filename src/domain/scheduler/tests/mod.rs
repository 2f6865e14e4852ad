//! Scheduler tests, Nomad `scheduler/` style: many small table cases per concern, one helper
//! to build nodes and jobs, and property tests for the invariants no plan may break.

mod constraints;
mod devices;
mod explain;
mod manifest;
mod placement;
mod props;
mod resources;
mod system;

use serde_json::Value;

use super::{
    Demand, Device, JobRequest, NodeCandidate, Strategy, TaskRequest, constraints::Constraint,
};
use crate::domain::manifest::JobType;

/// A healthy node with `cores` cores, `mem` MB memory and 100 GB disk.
pub(super) fn node(name: &str, cores: u64, mem: u64) -> NodeCandidate {
    NodeCandidate::new(name, cores * 1000, mem, 100_000)
}

/// A GPU device with the given memory and capabilities.
pub(super) fn gpu(id: &str, memory_mb: u64, caps: &[&str]) -> Device {
    Device {
        id: id.into(),
        kind: "gpu".into(),
        vendor: Some("nvidia".into()),
        model: Some("NVIDIA A100-SXM4".into()),
        memory_mb,
        driver: Some("cuda".into()),
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
    }
}

pub(super) fn with_gpus(mut n: NodeCandidate, gpus: Vec<Device>) -> NodeCandidate {
    n.devices = gpus;
    n
}

/// A task asking for `cores` cores and `mem` MB.
pub(super) fn task(id: &str, cores: u64, mem: u64) -> TaskRequest {
    TaskRequest {
        agent_id: id.into(),
        demand: Demand {
            cpu_millis: cores * 1000,
            memory_mb: mem,
            ..Demand::default()
        },
        constraints: Vec::new(),
        execution_profile: None,
        preferred_nodes: Vec::new(),
        requires_services: Vec::new(),
    }
}

/// A task whose demand is read from `resources` JSON.
pub(super) fn task_json(id: &str, resources: Value) -> TaskRequest {
    let demand = Demand::parse(&resources, "resources").expect("test resources are valid");
    TaskRequest {
        demand,
        ..task(id, 0, 0)
    }
}

pub(super) fn job(strategy: Strategy, tasks: Vec<TaskRequest>) -> JobRequest {
    JobRequest {
        job_id: "job".into(),
        job_type: JobType::Batch,
        strategy,
        preferred_nodes: Vec::new(),
        constraints: Vec::new(),
        tasks,
    }
}

pub(super) fn constraint(v: Value) -> Constraint {
    let mut list = Constraint::parse_list(&v, "c").expect("test constraint is valid");
    list.remove(0)
}

/// `agent -> node` pairs of a plan, sorted by agent.
pub(super) fn placements(plan: &super::Plan) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = plan
        .allocations
        .iter()
        .map(|a| (a.agent_id.clone(), a.node.clone()))
        .collect();
    out.sort();
    out
}

pub(super) fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = expected
        .iter()
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect();
    out.sort();
    out
}
