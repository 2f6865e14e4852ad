//! The placement algorithm and the [`Plan`] it returns (core-spec 7.5, 7.6, with the fixes of
//! 13 item 16).
//!
//! 1. Feasibility: static checks once per kind of task, then capacity, ports and devices
//!    against usage that includes both existing allocations and this plan's earlier ones.
//! 2. Scoring, where the strategy decides: a feasible preferred node always wins; then binpack
//!    takes a node already in use before an empty one, and the fullest after placement; spread
//!    takes the node with the fewest tasks of this job, then the emptiest.
//! 3. Ties go to the smallest node name, so the same snapshot always gives the same plan.
//!
//! Tasks go largest first (devices, then cpu, memory, disk), so a big task is not left without
//! room by small ones placed before it. System and sysbatch jobs get one copy of every task on
//! each node where the whole group fits.

use serde::{Deserialize, Serialize};

use super::explain::{self, PlacementError};
use super::fit::{Reject, dynamic_fit, static_fit};
use super::node::NodeCandidate;
use super::request::{JobRequest, Strategy, TaskRequest};
use super::state::{Cluster, NodeState};
use crate::domain::manifest::JobType;

/// A port bound by an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPort {
    pub label: String,
    pub port: u16,
    pub protocol: String,
}

/// One task bound to one node. Also the input form of allocations already running.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    /// The job holding it; lets spread and distinct_hosts see a job's earlier allocations.
    #[serde(default)]
    pub job_id: String,
    /// Runtime agent id (`<agent>@<node>` for system jobs).
    pub agent_id: String,
    /// The manifest agent a system copy came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_agent_id: Option<String>,
    pub node: String,
    pub cpu_millis: u64,
    pub memory_mb: u64,
    pub disk_mb: u64,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub device_ids: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PlannedPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_driver: Option<String>,
    /// `honored` or `fallback` when the task named preferred nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_node_status: Option<String>,
    /// Utilisation of the node after placement (0..1), as the strategy saw it.
    #[serde(default)]
    pub score: f64,
}

/// Sum of what a plan allocates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    pub cpu_millis: u64,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub gpu_count: u64,
}

/// A node a system job did not use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedNode {
    pub node: String,
    pub reason: String,
}

/// The result, persisted as the job's `scheduler` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Always `planned` here; `disabled` is written by a runtime that skips scheduling.
    pub status: String,
    pub job_id: String,
    pub job_type: JobType,
    pub strategy: Strategy,
    pub placement_count: usize,
    pub requirements: Requirements,
    /// Named `placements` on disk, as in the original's persisted format.
    #[serde(rename = "placements", alias = "allocations")]
    pub allocations: Vec<Allocation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_nodes: Vec<SkippedNode>,
}

/// Places every task of `job` on `nodes`, given what `existing` allocations already hold.
pub fn plan(
    nodes: &[NodeCandidate],
    existing: &[Allocation],
    job: &JobRequest,
) -> Result<Plan, PlacementError> {
    if job.tasks.is_empty() {
        // Only built-in agents: they run on the owner, so no node is needed at all.
        return Ok(empty_plan(job));
    }
    if nodes.is_empty() {
        return Err(PlacementError::NoNodes);
    }
    if !nodes.iter().any(NodeCandidate::schedulable) {
        return Err(explain::none_schedulable(nodes));
    }
    let mut cluster = Cluster::new(nodes, existing, &job.job_id);
    let (allocations, system_targets, skipped_nodes) = match job.job_type {
        JobType::Batch | JobType::Service => {
            (place_each(&mut cluster, job)?, Vec::new(), Vec::new())
        }
        JobType::System | JobType::Sysbatch => place_system(&mut cluster, job)?,
    };
    let requirements = allocations
        .iter()
        .fold(Requirements::default(), |r, a| Requirements {
            cpu_millis: r.cpu_millis + a.cpu_millis,
            memory_mb: r.memory_mb + a.memory_mb,
            disk_mb: r.disk_mb + a.disk_mb,
            gpu_count: r.gpu_count + u64::from(a.gpus),
        });
    Ok(Plan {
        status: "planned".into(),
        job_id: job.job_id.clone(),
        job_type: job.job_type,
        strategy: job.strategy,
        placement_count: allocations.len(),
        requirements,
        allocations,
        system_targets,
        skipped_nodes,
    })
}

fn empty_plan(job: &JobRequest) -> Plan {
    Plan {
        status: "planned".into(),
        job_id: job.job_id.clone(),
        job_type: job.job_type,
        strategy: job.strategy,
        placement_count: 0,
        requirements: Requirements::default(),
        allocations: Vec::new(),
        system_targets: Vec::new(),
        skipped_nodes: Vec::new(),
    }
}

/// Indices of tasks, largest demand first; agent id breaks ties.
fn largest_first(tasks: &[TaskRequest]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    let key = |t: &TaskRequest| {
        let devices: u32 = t.demand.devices.iter().map(|d| d.count).sum();
        (
            devices,
            t.demand.cpu_millis,
            t.demand.memory_mb,
            t.demand.disk_mb,
        )
    };
    order.sort_by(|&a, &b| {
        key(&tasks[b])
            .cmp(&key(&tasks[a]))
            .then_with(|| tasks[a].agent_id.cmp(&tasks[b].agent_id))
    });
    order
}

/// The parts of a task the static checks read; tasks sharing them share the feasible list.
type StaticKey<'t> = (
    &'t [super::constraints::Constraint],
    Option<&'t str>,
    Option<&'t str>,
    Vec<&'t str>,
    &'t [super::services::ServiceRequirement],
);

fn static_key(task: &TaskRequest) -> StaticKey<'_> {
    (
        &task.constraints,
        task.execution_profile.as_deref(),
        task.demand.runtime_driver.as_deref(),
        task.demand
            .volumes
            .iter()
            .map(|v| v.source.as_str())
            .collect(),
        &task.requires_services,
    )
}

fn place_each(
    cluster: &mut Cluster<'_>,
    job: &JobRequest,
) -> Result<Vec<Allocation>, PlacementError> {
    let distinct = job.distinct_hosts();
    let mut cache: Vec<(StaticKey<'_>, Vec<usize>)> = Vec::new();
    let mut out = Vec::with_capacity(job.tasks.len());
    for i in largest_first(&job.tasks) {
        let task = &job.tasks[i];
        let key = static_key(task);
        let pos = match cache.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                let feasible = (0..cluster.nodes.len())
                    .filter(|&n| static_fit(&cluster.nodes[n], &job.constraints, task).is_ok())
                    .collect();
                cache.push((key, feasible));
                cache.len() - 1
            }
        };
        let preferred: Vec<&str> = task
            .preferred_nodes
            .iter()
            .chain(&job.preferred_nodes)
            .map(String::as_str)
            .collect();
        let Some((n, devices, score)) = best_node(
            cluster,
            &cache[pos].1,
            task,
            job.strategy,
            &preferred,
            distinct,
        ) else {
            let rejects = cluster.nodes.iter().map(|s| {
                let r = static_fit(s, &job.constraints, task)
                    .and_then(|()| dynamic_fit(s, task, distinct).map(|_| ()));
                (s, r.err())
            });
            return Err(explain::unplaceable(task, &job.job_id, rejects));
        };
        let mut alloc = allocation(&cluster.nodes[n], task, &job.job_id, devices, score);
        if !preferred.is_empty() {
            let honored = preferred.contains(&alloc.node.as_str());
            alloc.preferred_node_status = Some(if honored { "honored" } else { "fallback" }.into());
        }
        cluster.nodes[n].commit(&alloc, true);
        out.push(alloc);
    }
    Ok(out)
}

/// Compared lexicographically: preferred, then the strategy's count rule, then utilisation.
type ScoreKey = (bool, i64, f64);

/// The best feasible node among `candidates`: (index, device indices, utilisation after).
fn best_node(
    cluster: &Cluster<'_>,
    candidates: &[usize],
    task: &TaskRequest,
    strategy: Strategy,
    preferred: &[&str],
    distinct: bool,
) -> Option<(usize, Vec<usize>, f64)> {
    let d = &task.demand;
    let mut best: Option<(ScoreKey, usize, Vec<usize>, f64)> = None;
    for &n in candidates {
        let state = &cluster.nodes[n];
        let Ok(devices) = dynamic_fit(state, task, distinct) else {
            continue;
        };
        let util = state.utilisation_with(d.cpu_millis, d.memory_mb, d.disk_mb, u64::from(d.gpus));
        let is_preferred = !preferred.is_empty() && preferred.contains(&state.node.name.as_str());
        let key = match strategy {
            Strategy::Binpack => (is_preferred, i64::from(state.in_use()), util),
            Strategy::Spread => (is_preferred, -i64::from(state.job_allocs), -util),
        };
        // Strictly better only: candidates come in name order, so ties keep the smaller name.
        if best
            .as_ref()
            .is_none_or(|(b, ..)| key.partial_cmp(b).is_some_and(|o| o.is_gt()))
        {
            best = Some((key, n, devices, util));
        }
    }
    best.map(|(_, n, devices, util)| (n, devices, util))
}

fn allocation(
    state: &NodeState<'_>,
    task: &TaskRequest,
    job_id: &str,
    devices: Vec<usize>,
    score: f64,
) -> Allocation {
    let d = &task.demand;
    Allocation {
        job_id: job_id.to_string(),
        agent_id: task.agent_id.clone(),
        source_agent_id: None,
        node: state.node.name.clone(),
        cpu_millis: d.cpu_millis,
        memory_mb: d.memory_mb,
        disk_mb: d.disk_mb,
        gpus: d.gpus,
        device_ids: devices
            .into_iter()
            .map(|i| state.node.devices[i].id.clone())
            .collect(),
        ports: d
            .ports
            .iter()
            .map(|p| PlannedPort {
                label: p.label.clone(),
                port: p.port,
                protocol: p.protocol.clone(),
            })
            .collect(),
        runtime_driver: d.runtime_driver.clone(),
        preferred_node_status: None,
        score,
    }
}

type SystemPlacement = (Vec<Allocation>, Vec<String>, Vec<SkippedNode>);

/// One copy of every task on each node where the whole group fits.
fn place_system(
    cluster: &mut Cluster<'_>,
    job: &JobRequest,
) -> Result<SystemPlacement, PlacementError> {
    let order = largest_first(&job.tasks);
    let (mut out, mut targets, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..cluster.nodes.len() {
        let mut scratch = cluster.nodes[n].clone();
        let mut group = Vec::with_capacity(order.len());
        let mut failure: Option<(usize, Reject)> = None;
        for &i in &order {
            let task = &job.tasks[i];
            let fit = static_fit(&scratch, &job.constraints, task)
                .and_then(|()| dynamic_fit(&scratch, task, false));
            match fit {
                Ok(devices) => {
                    let util = scratch.utilisation_with(
                        task.demand.cpu_millis,
                        task.demand.memory_mb,
                        task.demand.disk_mb,
                        u64::from(task.demand.gpus),
                    );
                    let mut alloc = allocation(&scratch, task, &job.job_id, devices, util);
                    alloc.source_agent_id = Some(task.agent_id.clone());
                    alloc.agent_id = format!("{}@{}", task.agent_id, scratch.node.name);
                    scratch.commit(&alloc, true);
                    group.push(alloc);
                }
                Err(r) => {
                    failure = Some((i, r));
                    break;
                }
            }
        }
        match failure {
            None => {
                targets.push(scratch.node.name.clone());
                cluster.nodes[n] = scratch;
                out.extend(group);
            }
            Some((i, reject)) => skipped.push(SkippedNode {
                node: cluster.nodes[n].node.name.clone(),
                reason: format!(
                    "agent {}: {}",
                    job.tasks[i].agent_id,
                    explain::short_reason(&reject, &job.tasks[i])
                ),
            }),
        }
    }
    if targets.is_empty() {
        return Err(PlacementError::SystemNoEligible { nodes: skipped });
    }
    Ok((out, targets, skipped))
}
