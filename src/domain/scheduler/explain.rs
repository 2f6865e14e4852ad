//! Why nothing fits, in words an operator can act on: which requirement of which agent no node
//! meets, the closest any node came ("most free: 4 cores on node a"), and how many nodes each
//! check filtered (as Nomad reports "constraint X filtered N nodes").

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::fit::Reject;
use super::node::NodeCandidate;
use super::plan::SkippedNode;
use super::request::TaskRequest;
use super::state::NodeState;

/// A job cannot be placed now. Retrying after the cluster changes (a node joins, a job ends)
/// may succeed; the message says what kind of node would help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("no runtime nodes are available")]
    NoNodes,
    #[error("no schedulable runtime nodes are available ({})", list(nodes))]
    NoSchedulableNodes { nodes: Vec<SkippedNode> },
    /// `requirement` is the check that stopped the nodes that got furthest.
    #[error(
        "agent {agent_id} needs {requirement}; {closest} ({})",
        counts(filtered)
    )]
    Unplaceable {
        agent_id: String,
        requirement: String,
        closest: String,
        filtered: Vec<FilterCount>,
    },
    #[error("system job has no eligible nodes ({})", list(nodes))]
    SystemNoEligible { nodes: Vec<SkippedNode> },
}

/// How many nodes one kind of check removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterCount {
    pub reason: String,
    pub nodes: usize,
}

fn list(nodes: &[SkippedNode]) -> String {
    nodes
        .iter()
        .map(|s| format!("{}: {}", s.node, s.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

fn counts(filtered: &[FilterCount]) -> String {
    let parts: Vec<String> = filtered
        .iter()
        .map(|f| format!("{} filtered {} node{}", f.reason, f.nodes, plural(f.nodes)))
        .collect();
    parts.join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(crate) fn none_schedulable(nodes: &[NodeCandidate]) -> PlacementError {
    let mut nodes: Vec<SkippedNode> = nodes
        .iter()
        .map(|n| SkippedNode {
            node: n.name.clone(),
            reason: if n.status.accepts_work() {
                "scheduling is disabled".into()
            } else {
                format!("status {:?}", n.status.as_str())
            },
        })
        .collect();
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    PlacementError::NoSchedulableNodes { nodes }
}

/// Cores from millicores, without trailing zeros (`1.5`, `4`).
struct Cores(u64);

impl fmt::Display for Cores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = format!("{:.3}", self.0 as f64 / 1000.0);
        f.write_str(s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// The filter label a rejection is counted under.
fn label(r: &Reject) -> String {
    match r {
        Reject::Status(s) => format!("status {}", s.as_str()),
        Reject::Cordoned => "scheduling disabled".into(),
        Reject::Profile(p) => format!("execution profile {p}"),
        Reject::Constraint(c) => format!("constraint `{c}`"),
        Reject::Driver(d) => format!("runtime driver {d}"),
        Reject::Volume(v) => format!("host path {v}"),
        Reject::Service(name) => format!("service {name}"),
        Reject::DistinctHosts => "distinct_hosts".into(),
        Reject::Port(proto, port) => format!("port {proto}:{port}"),
        Reject::Cpu { .. } => "cpu".into(),
        Reject::Memory { .. } => "memory".into(),
        Reject::Disk { .. } => "disk".into(),
        Reject::GpuLimit { .. } => "gpu admission limit".into(),
        Reject::Devices(_) => "devices".into(),
    }
}

/// One node's reason, for system-job skip lists.
pub(crate) fn short_reason(r: &Reject, task: &TaskRequest) -> String {
    let d = &task.demand;
    match r {
        Reject::Cpu { free } => format!(
            "needs {} cpu cores, {} free",
            Cores(d.cpu_millis),
            Cores(*free)
        ),
        Reject::Memory { free } => format!("needs {} MB memory, {free} MB free", d.memory_mb),
        Reject::Disk { free } => format!("needs {} MB disk, {free} MB free", d.disk_mb),
        Reject::GpuLimit { free } => format!("needs {} GPUs, {free} allowed free", d.gpus),
        Reject::Devices(i) => format!(
            "needs {}",
            d.devices.get(*i).map(|r| r.describe()).unwrap_or_default()
        ),
        Reject::Status(s) => format!("node is {}", s.as_str()),
        Reject::Cordoned => "scheduling is disabled".into(),
        Reject::Profile(p) => format!("execution profile {p} not available"),
        Reject::Constraint(c) => format!("constraint `{c}` not matched"),
        Reject::Driver(dr) => format!("runtime driver {dr} not offered"),
        Reject::Volume(v) => format!("host path {v} not exposed"),
        Reject::Service(name) => format!("no passing {name} service on the node"),
        Reject::DistinctHosts => "distinct_hosts".into(),
        Reject::Port(proto, port) => format!("port {proto}:{port} in use"),
    }
}

/// Builds the error for a task no node could take; `rejects` holds every node's first failure.
pub(crate) fn unplaceable<'s, 'a: 's>(
    task: &TaskRequest,
    job_id: &str,
    rejects: impl Iterator<Item = (&'s NodeState<'a>, Option<Reject>)>,
) -> PlacementError {
    let rejects: Vec<(&NodeState<'_>, Reject)> =
        rejects.filter_map(|(s, r)| r.map(|r| (s, r))).collect();
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in &rejects {
        *by_label.entry(label(r)).or_default() += 1;
    }
    let mut filtered: Vec<FilterCount> = by_label
        .into_iter()
        .map(|(reason, nodes)| FilterCount { reason, nodes })
        .collect();
    filtered.sort_by(|a, b| b.nodes.cmp(&a.nodes).then_with(|| a.reason.cmp(&b.reason)));
    let furthest = rejects.iter().map(|(_, r)| r.stage()).max().unwrap_or(0);
    let blocked: Vec<&(&NodeState<'_>, Reject)> = rejects
        .iter()
        .filter(|(_, r)| r.stage() == furthest)
        .collect();
    let (requirement, closest) = match blocked.first() {
        Some((_, r)) => describe(r, task, job_id, &blocked),
        None => ("a node".into(), "no node was considered".into()),
    };
    PlacementError::Unplaceable {
        agent_id: task.agent_id.clone(),
        requirement,
        closest,
        filtered,
    }
}

/// (what is needed, the closest any node came) for the blocking check.
fn describe(
    first: &Reject,
    task: &TaskRequest,
    job_id: &str,
    blocked: &[&(&NodeState<'_>, Reject)],
) -> (String, String) {
    let d = &task.demand;
    let most = |f: &dyn Fn(&Reject) -> Option<u64>| {
        blocked
            .iter()
            .filter_map(|(s, r)| f(r).map(|v| (v, s.node.name.as_str())))
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
    };
    match first {
        Reject::Status(_) | Reject::Cordoned => (
            "a schedulable node".into(),
            "every node is cordoned or not healthy/joining: undrain one or attach a node".into(),
        ),
        Reject::Profile(p) => (
            format!("execution profile {p}"),
            format!("no schedulable node advertises {p}: attach one that does"),
        ),
        Reject::Constraint(c) => (
            format!("a node where {c}"),
            "no schedulable node satisfies it: attach one that does".into(),
        ),
        Reject::Driver(dr) => (
            format!("runtime driver {dr}"),
            format!("no schedulable node offers {dr}"),
        ),
        Reject::Volume(v) => (
            format!("host path {v}"),
            "no schedulable node exposes it in its host paths".into(),
        ),
        Reject::Service(name) => (
            format!("a passing {name} service on its node"),
            format!("no candidate node runs a passing {name} instance: start one there"),
        ),
        Reject::DistinctHosts => (
            format!("a node without another task of job {job_id} (distinct_hosts)"),
            "every other feasible node already runs one: attach more nodes".into(),
        ),
        Reject::Port(proto, port) => (
            format!("port {proto}:{port} free"),
            "it is bound on every feasible node".into(),
        ),
        Reject::Cpu { .. } => {
            let m = most(&|r| {
                if let Reject::Cpu { free } = r {
                    Some(*free)
                } else {
                    None
                }
            });
            (
                format!("{} cpu cores", Cores(d.cpu_millis)),
                m.map_or_else(String::new, |(v, n)| {
                    format!("most free: {} on node {n}", Cores(v))
                }),
            )
        }
        Reject::Memory { .. } => {
            let m = most(&|r| {
                if let Reject::Memory { free } = r {
                    Some(*free)
                } else {
                    None
                }
            });
            (
                format!("{} MB memory", d.memory_mb),
                m.map_or_else(String::new, |(v, n)| {
                    format!("most free: {v} MB on node {n}")
                }),
            )
        }
        Reject::Disk { .. } => {
            let m = most(&|r| {
                if let Reject::Disk { free } = r {
                    Some(*free)
                } else {
                    None
                }
            });
            (
                format!("{} MB disk", d.disk_mb),
                m.map_or_else(String::new, |(v, n)| {
                    format!("most free: {v} MB on node {n}")
                }),
            )
        }
        Reject::GpuLimit { .. } => {
            let m = most(&|r| {
                if let Reject::GpuLimit { free } = r {
                    Some(*free)
                } else {
                    None
                }
            });
            (
                format!("{} GPUs", d.gpus),
                m.map_or_else(String::new, |(v, n)| {
                    format!("most allowed by admission limits: {v} free on node {n}")
                }),
            )
        }
        Reject::Devices(i) => device_hint(d.devices.get(*i), blocked),
    }
}

/// Names the largest device of the requested kind among the nodes that got this far.
fn device_hint(
    request: Option<&super::devices::DeviceRequest>,
    blocked: &[&(&NodeState<'_>, Reject)],
) -> (String, String) {
    let Some(request) = request else {
        return ("devices".into(), String::new());
    };
    let noun = if request.is_gpu() {
        "GPU".to_string()
    } else {
        request.kind.clone()
    };
    let largest = blocked
        .iter()
        .flat_map(|(s, _)| {
            s.node
                .devices
                .iter()
                .map(move |dev| (dev, s.node.name.as_str()))
        })
        .filter(|(dev, _)| request.matches_kind(dev))
        .max_by(|a, b| a.0.memory_mb.cmp(&b.0.memory_mb).then_with(|| b.1.cmp(a.1)));
    let closest = match largest {
        Some((dev, node)) => format!("largest {noun} seen: {} MB on node {node}", dev.memory_mb),
        None => format!("no candidate node has a {noun}: attach one"),
    };
    (request.describe(), closest)
}
