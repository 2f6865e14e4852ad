//! The node listing operators and clients read (`node list`, `GetSystemSummary`): node views
//! plus liveness, backlog, owned jobs and leadership.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::domain::node::NodeState;
use crate::store::{Store, StoreError};

/// One node as JSON, in the shape the published client expects (`name`/`node_name`, `status`,
/// `scheduling_eligible`, `drain`, `maintenance`, `self`, `gpu_count`, ...).
pub fn node_json(
    v: &NodeState,
    alive: bool,
    this: bool,
    leader: bool,
    owned_jobs: usize,
    pending_work: u64,
) -> Value {
    let inv = v.inventory.clone().unwrap_or_default();
    let status = if v.connected && !alive {
        // Heartbeats stopped but the leader has not marked it yet.
        "unreachable"
    } else {
        v.status().as_str()
    };
    json!({
        "name": v.name,
        "node_name": v.name,
        "node": v.name,
        "status": status,
        "scheduling_eligible": v.scheduling_eligible() && alive,
        "connected": v.connected && alive,
        "self": this,
        "leader": leader,
        "incarnation": v.incarnation,
        "drain": v.draining().is_some(),
        "drain_info": v.drain,
        "maintenance": v.maintenance.as_ref().is_some_and(|m| m.enabled),
        "maintenance_info": v.maintenance,
        "hostname": inv.hostname,
        "cpu_cores": inv.cpu_cores,
        "memory_mb": inv.memory_mb,
        "disk_mb": inv.disk_mb,
        "gpu_count": inv.gpu_count(),
        "gpus": inv.gpus,
        "gpu_driver": inv.gpu_driver,
        "capabilities": inv.capabilities,
        "execution_profiles": inv.execution_profiles,
        "executor_slots": inv.executor_slots,
        "owned_jobs": owned_jobs,
        "pending_work": pending_work,
        "joined_at_ms": v.joined_at_ms,
        "updated_at_ms": v.updated_at_ms,
        "down_reason": v.down_reason,
        "version": v.version,
    })
}

/// Every node, as JSON; `this` marks the node answering.
pub async fn nodes(store: &Store, this: Option<&str>) -> Result<Vec<Value>, StoreError> {
    let views = store.node_views().await?;
    let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
    let alive = store.alive(&names).await?;
    let leader = store.leader().await?.map(|(n, _)| n);
    let owned = owned_jobs(store).await?;
    let backlog = store.pending_work_of(&names).await?;
    Ok(views
        .iter()
        .zip(alive)
        .zip(backlog)
        .map(|((v, a), pending_work)| {
            let is_alive = a.is_some() && a == v.incarnation;
            node_json(
                v,
                is_alive,
                this == Some(v.name.as_str()),
                leader.as_deref() == Some(v.name.as_str()),
                owned.get(&v.name).copied().unwrap_or(0),
                pending_work,
            )
        })
        .collect())
}

/// Active jobs per lease holder.
pub async fn owned_jobs(store: &Store) -> Result<BTreeMap<String, usize>, StoreError> {
    let mut out = BTreeMap::new();
    for (owner, _) in active_jobs_by_owner(store).await? {
        *out.entry(owner).or_default() += 1;
    }
    Ok(out)
}

/// `(owner, job_id)` for every active job with a live lease.
pub async fn active_jobs_by_owner(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    let ids: Vec<String> = store
        .active_job_views()
        .await?
        .into_iter()
        .map(|v| v.job_id)
        .collect();
    let holders = store.job_lease_holders(&ids).await?;
    Ok(ids
        .into_iter()
        .zip(holders)
        .filter_map(|(job, holder)| holder.map(|(owner, _)| (owner, job)))
        .collect())
}
