//! Does one task fit one node? Split in two: the static half (status, profile, constraints,
//! driver, volumes, services) cannot change during a plan and is cached per kind of task; the dynamic half
//! (distinct hosts, ports, capacity, devices) is checked against the running totals.

use super::constraints::Constraint;
use super::devices::allocate;
use super::node::NodeStatus;
use super::request::TaskRequest;
use super::state::NodeState;

/// Why a node was filtered, in the order the checks run (the order is what `stage` reports).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reject {
    Status(NodeStatus),
    Cordoned,
    Profile(String),
    Constraint(Constraint),
    Driver(String),
    Volume(String),
    Service(String),
    DistinctHosts,
    Port(String, u16),
    Cpu {
        free: u64,
    },
    Memory {
        free: u64,
    },
    Disk {
        free: u64,
    },
    GpuLimit {
        free: u64,
    },
    /// Index of the device request that could not be met.
    Devices(usize),
}

impl Reject {
    /// How far the node got: the furthest stage reached by any node names the real blocker.
    pub fn stage(&self) -> u8 {
        match self {
            Reject::Status(_) => 0,
            Reject::Cordoned => 1,
            Reject::Profile(_) => 2,
            Reject::Constraint(_) => 3,
            Reject::Driver(_) => 4,
            Reject::Volume(_) => 5,
            Reject::Service(_) => 6,
            Reject::DistinctHosts => 7,
            Reject::Port(..) => 8,
            Reject::Cpu { .. } => 9,
            Reject::Memory { .. } => 10,
            Reject::Disk { .. } => 11,
            Reject::GpuLimit { .. } => 12,
            Reject::Devices(_) => 13,
        }
    }
}

/// Checks that do not depend on what else is placed.
pub(crate) fn static_fit(
    state: &NodeState<'_>,
    job_constraints: &[Constraint],
    task: &TaskRequest,
) -> Result<(), Reject> {
    let node = state.node;
    if !node.status.accepts_work() {
        return Err(Reject::Status(node.status));
    }
    if !node.eligible {
        return Err(Reject::Cordoned);
    }
    if let Some(p) = &task.execution_profile
        && !node.execution_profiles.iter().any(|np| np == p)
    {
        return Err(Reject::Profile(p.clone()));
    }
    if let Some(c) = job_constraints
        .iter()
        .chain(&task.constraints)
        .find(|c| !c.matches(node))
    {
        return Err(Reject::Constraint(c.clone()));
    }
    if let Some(d) = &task.demand.runtime_driver
        && !node.offers_driver(d)
    {
        return Err(Reject::Driver(d.clone()));
    }
    if let Some(v) = task
        .demand
        .volumes
        .iter()
        .find(|v| !node.exposes_path(&v.source))
    {
        return Err(Reject::Volume(v.source.clone()));
    }
    if let Some(s) = task
        .requires_services
        .iter()
        .find(|s| !node.services.iter().any(|i| s.met_by(i)))
    {
        return Err(Reject::Service(s.name.clone()));
    }
    Ok(())
}

/// Checks against current usage; on success, the device indices to allocate.
pub(crate) fn dynamic_fit(
    state: &NodeState<'_>,
    task: &TaskRequest,
    distinct_hosts: bool,
) -> Result<Vec<usize>, Reject> {
    let d = &task.demand;
    if distinct_hosts && state.job_allocs > 0 {
        return Err(Reject::DistinctHosts);
    }
    if let Some(p) = d
        .ports
        .iter()
        .find(|p| state.ports.contains(&(p.protocol.clone(), p.port)))
    {
        return Err(Reject::Port(p.protocol.clone(), p.port));
    }
    let free = state.free();
    if d.cpu_millis > free.cpu_millis {
        return Err(Reject::Cpu {
            free: free.cpu_millis,
        });
    }
    if d.memory_mb > free.memory_mb {
        return Err(Reject::Memory {
            free: free.memory_mb,
        });
    }
    if d.disk_mb > free.disk_mb {
        return Err(Reject::Disk { free: free.disk_mb });
    }
    if state.gpu_capped && u64::from(d.gpus) > state.free_gpus() {
        return Err(Reject::GpuLimit {
            free: state.free_gpus(),
        });
    }
    allocate(&d.devices, &state.node.devices, &state.taken).ok_or_else(|| {
        let failing = (0..d.devices.len())
            .find(|&i| allocate(&d.devices[..=i], &state.node.devices, &state.taken).is_none())
            .unwrap_or(0);
        Reject::Devices(failing)
    })
}
