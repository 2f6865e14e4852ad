//! [`NodeCandidate`]: the scheduler's view of one runtime node. A plain struct on purpose: the
//! runtime fills it from its node records and hardware inventory, tests build it by hand, and
//! nothing here knows where the numbers came from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::devices::Device;
use super::services::ServiceInstance;

/// A node's lifecycle state (core-spec 6.4); only `healthy` and `joining` take new work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    #[default]
    Healthy,
    Joining,
    Reconnecting,
    Disconnected,
    Offline,
    Maintenance,
    Draining,
    Quarantined,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Healthy => "healthy",
            NodeStatus::Joining => "joining",
            NodeStatus::Reconnecting => "reconnecting",
            NodeStatus::Disconnected => "disconnected",
            NodeStatus::Offline => "offline",
            NodeStatus::Maintenance => "maintenance",
            NodeStatus::Draining => "draining",
            NodeStatus::Quarantined => "quarantined",
        }
    }

    /// Whether new allocations may land here (before `eligible` is considered).
    pub fn accepts_work(self) -> bool {
        match self {
            NodeStatus::Healthy | NodeStatus::Joining => true,
            NodeStatus::Reconnecting
            | NodeStatus::Disconnected
            | NodeStatus::Offline
            | NodeStatus::Maintenance
            | NodeStatus::Draining
            | NodeStatus::Quarantined => false,
        }
    }
}

/// Total schedulable amounts of a node, before admission limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub cpu_millis: u64,
    pub memory_mb: u64,
    pub disk_mb: u64,
}

/// Operator caps (`mn resource set`, core-spec 7.6): the percentage of each resource the
/// scheduler may hand out; GPUs are capped at `floor(gpus × percent / 100)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionLimits {
    pub cpu_percent: u8,
    pub memory_percent: u8,
    pub disk_percent: u8,
    pub gpu_percent: u8,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            cpu_percent: 100,
            memory_percent: 100,
            disk_percent: 100,
            gpu_percent: 100,
        }
    }
}

/// One node as the planner sees it. `Default` gives an ineligible node with no capacity (safe
/// if a field is forgotten); [`NodeCandidate::new`] gives a schedulable one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCandidate {
    /// Unique node name; also the deterministic tie-break between equal scores.
    pub name: String,
    pub status: NodeStatus,
    /// `false` when an operator cordoned the node (`scheduling_eligible: false`).
    pub eligible: bool,
    pub capacity: Capacity,
    pub devices: Vec<Device>,
    /// Free-form facts matched by constraints: `os`, `arch`, `node_role`, `gpu`, dotted keys...
    pub attributes: BTreeMap<String, String>,
    /// Node capabilities (`cuda`, `docker`); device capabilities count too when matching.
    pub capabilities: Vec<String>,
    /// Healthy execution profiles this node advertises.
    pub execution_profiles: Vec<String>,
    /// Worker drivers offered; empty means the default, `host_local`.
    pub runtime_drivers: Vec<String>,
    /// Host directories volumes may be mounted from (a source must equal or sit below one).
    pub host_paths: Vec<String>,
    /// Passing service instances running here (for `requires_services`).
    #[serde(default)]
    pub services: Vec<ServiceInstance>,
    pub limits: Option<AdmissionLimits>,
}

impl NodeCandidate {
    /// A healthy, eligible node with the given capacity and nothing else.
    pub fn new(name: impl Into<String>, cpu_millis: u64, memory_mb: u64, disk_mb: u64) -> Self {
        NodeCandidate {
            name: name.into(),
            eligible: true,
            capacity: Capacity {
                cpu_millis,
                memory_mb,
                disk_mb,
            },
            ..NodeCandidate::default()
        }
    }

    pub fn schedulable(&self) -> bool {
        self.eligible && self.status.accepts_work()
    }

    /// Capacity after admission limits.
    pub fn usable(&self) -> Capacity {
        let l = self.limits.unwrap_or_default();
        Capacity {
            cpu_millis: percent(self.capacity.cpu_millis, l.cpu_percent),
            memory_mb: percent(self.capacity.memory_mb, l.memory_percent),
            disk_mb: percent(self.capacity.disk_mb, l.disk_percent),
        }
    }

    /// How many GPUs may be allocated here at once.
    pub fn usable_gpus(&self) -> u64 {
        percent(
            self.gpu_count(),
            self.limits.unwrap_or_default().gpu_percent,
        )
    }

    /// GPUs the node has, before limits.
    pub fn gpu_count(&self) -> u64 {
        self.devices
            .iter()
            .filter(|d| d.kind.eq_ignore_ascii_case("gpu"))
            .count() as u64
    }

    pub fn offers_driver(&self, driver: &str) -> bool {
        if self.runtime_drivers.is_empty() {
            return driver == "host_local";
        }
        self.runtime_drivers
            .iter()
            .any(|d| d.eq_ignore_ascii_case(driver))
    }

    /// Whether `source` equals or sits below one of the node's host paths.
    pub fn exposes_path(&self, source: &str) -> bool {
        self.host_paths.iter().any(|root| {
            let root = root.trim_end_matches('/');
            source == root
                || root.is_empty()
                || source
                    .strip_prefix(root)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

fn percent(value: u64, pct: u8) -> u64 {
    value.saturating_mul(u64::from(pct.min(100))) / 100
}
