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

/// What the operator says about the GPUs declared with `MN_NODE_GPU` that NVML cannot see
/// (another vendor's, or NVIDIA's without NVML): each is alike. Read from
/// `MN_NODE_GPU_MEMORY_MB`, `MN_NODE_GPU_VENDOR`, `MN_NODE_GPU_MODEL` and `MN_NODE_GPU_DRIVER`,
/// so requests with `min_memory_mb`, a vendor, a model or a driver can be placed on them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeclaredGpu {
    pub memory_mb: u64,
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// `cuda`, `rocm`, `metal`, ...: also offered as the device's capability.
    pub driver: Option<String>,
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
    /// What each declared GPU is, when the operator said (boxed: most nodes have none, and
    /// node events carry the inventory).
    #[serde(default)]
    pub declared_gpu: Option<Box<DeclaredGpu>>,
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
