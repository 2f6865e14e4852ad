//! The scheduler's inputs read off the cluster: node views plus liveness become
//! [`NodeCandidate`]s, the persisted plans of active jobs become the [`Allocation`]s already
//! holding capacity, and the operator's resource limits become [`AdmissionLimits`].
//!
//! The mapping is pure (table-tested below); the two `read_*` functions only gather what it
//! needs from Redis. The owner, `mirror-neuron plan` and the gRPC `PlanJob` all go through
//! here, so a dry run sees exactly what a real start would.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::node::{Inventory, NodeState, NodeStatus as NodeLife};
use crate::domain::scheduler::{
    AdmissionLimits, Allocation, Capacity, Device, NodeCandidate, NodeStatus, Plan,
};
use crate::domain::view::JobView;
use crate::store::{Store, StoreError};

/// The scheduler's view of one node. `alive`: its liveness lease is held by the incarnation
/// the view knows. `limits`: the admission caps, when admission is enabled.
pub fn candidate(view: &NodeState, alive: bool, limits: Option<AdmissionLimits>) -> NodeCandidate {
    let inv = view.inventory.clone().unwrap_or_default();
    NodeCandidate {
        status: status(view, alive),
        eligible: view.scheduling_eligible(),
        limits,
        ..from_inventory(&view.name, &inv)
    }
}

/// A healthy, eligible node with what `inv` says it has (this machine, for a local `run`).
pub fn from_inventory(name: &str, inv: &Inventory) -> NodeCandidate {
    let mut devices: Vec<Device> = inv
        .gpus
        .iter()
        .map(|g| Device {
            id: if g.uuid.trim().is_empty() {
                g.index.to_string()
            } else {
                g.uuid.clone()
            },
            kind: "gpu".into(),
            vendor: Some("nvidia".into()),
            model: Some(g.name.clone()).filter(|n| !n.is_empty()),
            memory_mb: g.memory_mb,
            driver: Some("cuda".into()),
            capabilities: vec!["cuda".into()],
        })
        .collect();
    // GPUs declared with MN_NODE_GPU that NVML does not see: as the operator described them
    // (MN_NODE_GPU_MEMORY_MB, ...), else of unknown make and memory, so only requests that
    // ask for no more than "a GPU" match them.
    let seen = inv.gpus.len() as u32;
    let declared = inv.declared_gpu.as_deref().cloned().unwrap_or_default();
    for index in seen..inv.declared_gpus.unwrap_or(0) {
        devices.push(Device {
            id: index.to_string(),
            kind: "gpu".into(),
            vendor: declared.vendor.clone(),
            model: declared.model.clone(),
            memory_mb: declared.memory_mb,
            driver: declared.driver.clone(),
            capabilities: declared.driver.iter().cloned().collect(),
        });
    }
    let mut attributes = BTreeMap::new();
    if !inv.hostname.is_empty() {
        attributes.insert("hostname".to_string(), inv.hostname.clone());
    }
    if let Some(d) = &inv.gpu_driver {
        attributes.insert("gpu_driver".to_string(), d.clone());
    }
    NodeCandidate {
        name: name.to_string(),
        status: NodeStatus::Healthy,
        eligible: true,
        capacity: Capacity {
            cpu_millis: u64::from(inv.cpu_cores).saturating_mul(1000),
            memory_mb: inv.memory_mb,
            disk_mb: inv.disk_mb,
        },
        devices,
        attributes,
        capabilities: inv.capabilities.clone(),
        execution_profiles: inv.execution_profiles.clone(),
        runtime_drivers: inv.runtime_drivers.clone(),
        host_paths: inv.host_volumes.clone(),
        services: Vec::new(),
        limits: None,
    }
}

/// A node's lifecycle status in the scheduler's words. A node whose view says healthy but
/// whose liveness lease lapsed is `disconnected` until the leader marks it lost.
fn status(view: &NodeState, alive: bool) -> NodeStatus {
    match view.status() {
        NodeLife::Healthy if alive => NodeStatus::Healthy,
        NodeLife::Healthy => NodeStatus::Disconnected,
        NodeLife::Draining => NodeStatus::Draining,
        NodeLife::Maintenance => NodeStatus::Maintenance,
        NodeLife::Lost | NodeLife::Left | NodeLife::Unknown => NodeStatus::Offline,
    }
}

/// Reads the stored `resource:limits` (`{"cpu": 75, "gpu": 50, ...}`, percentages set with
/// `SetResource`). A missing key means 100; fractions are rounded down.
pub fn admission_limits(stored: &Value) -> Result<AdmissionLimits, String> {
    let Some(map) = stored.as_object() else {
        return Err(format!(
            "resource limits must be a JSON object, got {stored}"
        ));
    };
    let pct = |key: &str| -> Result<u8, String> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(100),
            Some(v) => match v.as_f64() {
                Some(p) if (0.0..=100.0).contains(&p) => Ok(p.floor() as u8),
                _ => Err(format!(
                    "resource limits: {key} must be a percentage between 0 and 100, got {v}"
                )),
            },
        }
    };
    Ok(AdmissionLimits {
        cpu_percent: pct("cpu")?,
        memory_percent: pct("memory")?,
        disk_percent: pct("disk")?,
        gpu_percent: pct("gpu")?,
    })
}

/// The allocations a job's persisted plan holds (`job_id` filled in), if it has a readable one.
pub fn plan_allocations(view: &JobView) -> Option<Vec<Allocation>> {
    let plan: Plan = serde_json::from_value(view.scheduler.clone()?).ok()?;
    Some(
        plan.allocations
            .into_iter()
            .map(|mut a| {
                a.job_id.clone_from(&view.job_id);
                a
            })
            .collect(),
    )
}

/// Every node as a candidate, with admission limits applied when `admission` is on.
pub async fn read_candidates(
    store: &Store,
    admission: bool,
) -> Result<Vec<NodeCandidate>, StoreError> {
    let views = store.node_views().await?;
    let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
    let alive = store.alive(&names).await?;
    let limits = if admission {
        Some(read_limits(store).await?)
    } else {
        None
    };
    let mut services = crate::runtime::services::registry::passing_on_nodes(store).await?;
    Ok(views
        .iter()
        .zip(alive)
        .map(|(v, a)| {
            let is_alive = a.is_some() && a == v.incarnation && v.connected;
            let mut c = candidate(v, is_alive, limits);
            c.services = services.remove(&v.name).unwrap_or_default();
            c
        })
        .collect())
}

/// The stored limits; unreadable ones are reported and ignored (SetResource validates what
/// it stores, so only a hand-edited key gets here).
pub async fn read_limits(store: &Store) -> Result<AdmissionLimits, StoreError> {
    Ok(match store.resource_limits().await? {
        None => AdmissionLimits::default(),
        Some(v) => admission_limits(&v).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring unreadable resource limits");
            AdmissionLimits::default()
        }),
    })
}

/// Allocations of every active (pending, running, paused) job except `exclude`, from the
/// plans in their views.
pub async fn read_allocations(
    store: &Store,
    exclude: Option<&str>,
) -> Result<BTreeMap<String, Vec<Allocation>>, StoreError> {
    let mut out = BTreeMap::new();
    for view in store.active_job_views().await? {
        if exclude == Some(view.job_id.as_str()) {
            continue;
        }
        if let Some(allocs) = plan_allocations(&view) {
            out.insert(view.job_id.clone(), allocs);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::node::{DeclaredGpu, Drain, DrainStatus, Gpu, Inventory};

    fn node(name: &str, inv: Inventory) -> NodeState {
        NodeState {
            name: name.into(),
            version: 3,
            incarnation: Some("i1".into()),
            connected: true,
            inventory: Some(inv),
            ..NodeState::default()
        }
    }

    fn inventory() -> Inventory {
        Inventory {
            hostname: "box".into(),
            cpu_cores: 8,
            memory_mb: 32_000,
            disk_mb: 100_000,
            gpus: vec![Gpu {
                index: 0,
                uuid: "GPU-1234".into(),
                name: "NVIDIA H100".into(),
                memory_mb: 81_000,
            }],
            gpu_driver: Some("550.54".into()),
            declared_gpus: None,
            declared_gpu: None,
            capabilities: vec!["cuda".into()],
            execution_profiles: vec!["host_local".into()],
            executor_slots: 4,
            runtime_drivers: vec!["host_local".into(), "docker_worker".into()],
            host_volumes: vec!["/data".into()],
        }
    }

    #[test]
    fn capacity_gpus_capabilities_and_profiles_come_from_the_inventory() {
        let c = candidate(&node("a", inventory()), true, None);
        assert_eq!(c.name, "a");
        assert!(c.schedulable());
        assert_eq!(
            c.capacity,
            Capacity {
                cpu_millis: 8_000,
                memory_mb: 32_000,
                disk_mb: 100_000
            }
        );
        assert_eq!(c.devices.len(), 1);
        let gpu = &c.devices[0];
        assert_eq!(gpu.id, "GPU-1234");
        assert_eq!(gpu.kind, "gpu");
        assert_eq!(gpu.vendor.as_deref(), Some("nvidia"));
        assert_eq!(gpu.model.as_deref(), Some("NVIDIA H100"));
        assert_eq!(gpu.memory_mb, 81_000);
        assert_eq!(c.capabilities, vec!["cuda".to_string()]);
        assert_eq!(c.execution_profiles, vec!["host_local".to_string()]);
        assert_eq!(
            c.attributes.get("gpu_driver").map(String::as_str),
            Some("550.54")
        );
        assert_eq!(c.limits, None);
        // Probed drivers and declared host volumes are what placement matches.
        assert!(c.offers_driver("docker_worker") && !c.offers_driver("openshell"));
        assert!(c.exposes_path("/data/models"));
    }

    #[test]
    fn declared_gpus_nvml_cannot_see_become_anonymous_devices_by_index() {
        let mut inv = inventory();
        inv.gpus[0].uuid.clear();
        inv.declared_gpus = Some(3);
        let c = candidate(&node("a", inv), true, None);
        let ids: Vec<&str> = c.devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["0", "1", "2"]);
        assert_eq!(c.gpu_count(), 3);
        assert_eq!(c.devices[2].vendor, None);
        assert_eq!(c.devices[2].memory_mb, 0);
        // No NVML GPUs at all: MN_NODE_GPU=1 alone gives one GPU with id "0".
        let mut bare = inventory();
        bare.gpus.clear();
        bare.declared_gpus = Some(1);
        let c = candidate(&node("b", bare.clone()), true, None);
        assert_eq!(c.devices.len(), 1);
        assert_eq!(c.devices[0].id, "0");
        // Described by the operator: memory, make and driver can be asked for.
        bare.declared_gpu = Some(Box::new(DeclaredGpu {
            memory_mb: 24_576,
            vendor: Some("amd".into()),
            model: Some("Radeon RX 7900 XTX".into()),
            driver: Some("rocm".into()),
        }));
        let c = candidate(&node("b", bare), true, None);
        let gpu = &c.devices[0];
        assert_eq!(gpu.memory_mb, 24_576);
        assert_eq!(gpu.vendor.as_deref(), Some("amd"));
        assert_eq!(gpu.driver.as_deref(), Some("rocm"));
        assert_eq!(gpu.capabilities, ["rocm"]);
    }

    #[test]
    fn liveness_drain_and_departure_decide_the_status() {
        let inv = inventory();
        assert_eq!(
            candidate(&node("a", inv.clone()), false, None).status,
            NodeStatus::Disconnected
        );
        let mut drained = node("a", inv.clone());
        drained.drain = Some(Drain {
            status: DrainStatus::Draining,
            reason: "r".into(),
            started_at_ms: 0,
            deadline_at_ms: 1,
            deadline_ms: 1,
            ignore_system_jobs: false,
            completed_at_ms: None,
        });
        let c = candidate(&drained, true, None);
        assert_eq!(c.status, NodeStatus::Draining);
        assert!(!c.schedulable());
        let mut lost = node("a", inv);
        lost.connected = false;
        assert_eq!(candidate(&lost, false, None).status, NodeStatus::Offline);
        // A node that never reported an inventory has nothing to give.
        let empty = NodeState {
            inventory: None,
            ..node("e", inventory())
        };
        assert_eq!(candidate(&empty, true, None).capacity, Capacity::default());
    }

    #[test]
    fn admission_limits_cap_what_the_scheduler_may_hand_out() {
        let limits = admission_limits(&json!({"cpu": 50, "gpu": 50, "memory": 75.9})).unwrap();
        assert_eq!(
            limits,
            AdmissionLimits {
                cpu_percent: 50,
                memory_percent: 75,
                disk_percent: 100,
                gpu_percent: 50
            }
        );
        let c = candidate(&node("a", inventory()), true, Some(limits));
        assert_eq!(c.usable().cpu_millis, 4_000);
        assert_eq!(c.usable().memory_mb, 24_000);
        // floor(1 GPU × 50%) = 0: the one GPU may not be handed out.
        assert_eq!(c.usable_gpus(), 0);
    }

    #[test]
    fn unreadable_limits_name_the_field() {
        let e = admission_limits(&json!({"cpu": 150})).unwrap_err();
        assert!(e.contains("cpu must be a percentage"), "{e}");
        let e = admission_limits(&json!({"gpu": "half"})).unwrap_err();
        assert!(e.contains("gpu"), "{e}");
        assert!(admission_limits(&json!([1])).is_err());
    }

    #[test]
    fn a_jobs_plan_in_its_view_gives_its_allocations() {
        let view = JobView {
            job_id: "j1".into(),
            scheduler: Some(json!({
                "status": "planned", "job_id": "graph", "job_type": "batch",
                "strategy": "binpack", "placement_count": 1,
                "requirements": {"cpu_millis": 0, "memory_mb": 0, "disk_mb": 0, "gpu_count": 1},
                "placements": [{"agent_id": "w", "node": "a", "cpu_millis": 0,
                                "memory_mb": 0, "disk_mb": 0, "gpus": 1,
                                "device_ids": ["GPU-1234"]}]
            })),
            ..JobView::default()
        };
        let allocs = plan_allocations(&view).unwrap();
        assert_eq!(allocs.len(), 1);
        assert_eq!(allocs[0].job_id, "j1");
        assert_eq!(allocs[0].device_ids, vec!["GPU-1234".to_string()]);
        assert_eq!(plan_allocations(&JobView::default()), None);
        let garbage = JobView {
            scheduler: Some(json!({"placements": "nope"})),
            ..JobView::default()
        };
        assert_eq!(plan_allocations(&garbage), None);
    }
}
