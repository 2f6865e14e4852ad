//! Cluster timings, from the environment.

use std::time::Duration;

use crate::config::{ConfigError, bool_var, u64_var};

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// How long a node counts as alive after its last heartbeat.
    pub node_lease: Duration,
    pub heartbeat_every: Duration,
    pub leader_lease: Duration,
    pub leader_renew_every: Duration,
    /// How often the leader reconciles.
    pub sweep_every: Duration,
    /// A node must have been up this long to count towards cluster recovery (core-spec 6.8).
    pub health_stable: Duration,
    /// `MN_RESOURCE_ADMISSION_ENABLED`: the scheduler places within the stored resource
    /// limits (`SetResource` percentages) rather than whole nodes.
    pub resource_admission: bool,
}

impl ClusterConfig {
    pub fn from_env() -> Result<ClusterConfig, ConfigError> {
        let ms = |name, default| u64_var(name, default).map(Duration::from_millis);
        Ok(ClusterConfig {
            node_lease: ms("MN_NODE_LEASE_DURATION_MS", 10_000)?,
            heartbeat_every: ms("MN_NODE_HEARTBEAT_INTERVAL_MS", 2_000)?,
            leader_lease: ms("MN_LEADER_LEASE_DURATION_MS", 10_000)?,
            leader_renew_every: ms("MN_LEADER_LEASE_RENEW_INTERVAL_MS", 2_000)?,
            sweep_every: ms("MN_LEADER_SWEEP_INTERVAL_MS", 1_000)?,
            health_stable: ms("MN_CLUSTER_HEALTH_STABLE_MS", 5_000)?,
            resource_admission: bool_var("MN_RESOURCE_ADMISSION_ENABLED", false)?,
        })
    }
}
