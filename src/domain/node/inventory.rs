//! What a node brings: read off the machine at start (see `runtime::cluster::probe`) plus what
//! the operator declares in the environment.

use serde::{Deserialize, Serialize};

/// One NVIDIA GPU as NVML reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    pub memory_mb: u64,
}

/// A node's resources and abilities.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub hostname: String,
    pub cpu_cores: u32,
    pub memory_mb: u64,
    /// Free space on the disk that holds the runtime's home.
    pub disk_mb: u64,
    pub gpus: Vec<Gpu>,
    /// NVIDIA driver version; `None` where there is no driver.
    pub gpu_driver: Option<String>,
    /// Operator-declared GPU count (`MN_NODE_GPU`) when NVML cannot see the devices.
    #[serde(default)]
    pub declared_gpus: Option<u32>,
    /// `MN_NODE_CAPABILITIES`, e.g. `cuda,docker`.
    pub capabilities: Vec<String>,
    /// `MN_NODE_EXECUTION_PROFILES`, e.g. `host_local,python`.
    pub execution_profiles: Vec<String>,
    /// How many executor processes this node runs at once (its default pool).
    pub executor_slots: u32,
    /// Worker drivers probed at start (`host_local`, `openshell`, `docker_worker`); empty in
    /// inventories recorded before drivers were probed (they offered `host_local` only).
    #[serde(default)]
    pub runtime_drivers: Vec<String>,
    /// `MN_NODE_HOST_VOLUMES`: host directories executors' `volumes` may mount from.
    #[serde(default)]
    pub host_volumes: Vec<String>,
}

impl Inventory {
    /// GPUs the scheduler may count on: what NVML sees, or what the operator declared.
    pub fn gpu_count(&self) -> u32 {
        (self.gpus.len() as u32).max(self.declared_gpus.unwrap_or(0))
    }
}
