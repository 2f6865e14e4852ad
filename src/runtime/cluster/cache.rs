//! A node's cached picture of the cluster for placing work: node views with liveness, as the
//! scheduler's candidates, refreshed in the background so an owner never reads Redis to
//! check where a step may go. Plans this process recorded are kept here too until the job's
//! view shows them, so two jobs started here back to back never get the same capacity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::candidates::{candidate, read_allocations, read_limits};
use crate::domain::node::NodeState;
use crate::domain::scheduler::{Allocation, NodeCandidate};
use crate::runtime::clock::now_ms;
use crate::store::{Store, StoreError};

#[derive(Default)]
struct Inner {
    nodes: Vec<(NodeState, bool)>,
    candidates: Vec<NodeCandidate>,
    /// Allocations of plans recorded by owners in this process, by job.
    local_plans: HashMap<String, Vec<Allocation>>,
}

/// Shared by every owner on a node.
#[derive(Default)]
pub struct ClusterCache {
    /// `MN_RESOURCE_ADMISSION_ENABLED`: cap candidates by the stored resource limits.
    admission: bool,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterCache")
    }
}

impl ClusterCache {
    /// An empty cache; `admission` applies the stored resource limits to every candidate.
    pub fn new(admission: bool) -> ClusterCache {
        ClusterCache {
            admission,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the cluster once.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let views = store.node_views().await?;
        let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
        let alive = store.alive(&names).await?;
        let limits = if self.admission {
            Some(read_limits(store).await?)
        } else {
            None
        };
        let mut nodes = vec![];
        let mut candidates = vec![];
        for (v, a) in views.into_iter().zip(alive) {
            let is_alive = a.is_some() && a == v.incarnation && v.connected;
            candidates.push(candidate(&v, is_alive, limits));
            nodes.push((v, is_alive));
        }
        let mut inner = self.lock();
        inner.candidates = candidates;
        inner.nodes = nodes;
        Ok(())
    }

    /// The nodes as the scheduler sees them, as of the last refresh.
    pub fn candidates(&self) -> Vec<NodeCandidate> {
        self.lock().candidates.clone()
    }

    /// Whether new work may go to `node` now: alive, healthy and not cordoned.
    pub fn is_schedulable(&self, node: &str) -> bool {
        self.lock()
            .candidates
            .iter()
            .any(|c| c.name == node && c.schedulable())
    }

    /// Of `device_ids` on `node`, those that are GPUs (what CUDA_VISIBLE_DEVICES lists).
    pub fn gpu_ids(&self, node: &str, device_ids: &[String]) -> Vec<String> {
        let inner = self.lock();
        let Some(c) = inner.candidates.iter().find(|c| c.name == node) else {
            return vec![];
        };
        device_ids
            .iter()
            .filter(|id| {
                c.devices
                    .iter()
                    .any(|d| &d.id == *id && d.kind.eq_ignore_ascii_case("gpu"))
            })
            .cloned()
            .collect()
    }

    /// What other active jobs hold: the plans in their views, plus plans recorded here that
    /// the views do not show yet. `exclude` is the job being planned.
    pub async fn existing(
        &self,
        store: &Store,
        exclude: &str,
    ) -> Result<Vec<Allocation>, StoreError> {
        let mut by_job = read_allocations(store, Some(exclude)).await?;
        for (job, allocs) in &self.lock().local_plans {
            if job != exclude && !by_job.contains_key(job) {
                by_job.insert(job.clone(), allocs.clone());
            }
        }
        Ok(by_job.into_values().flatten().collect())
    }

    /// Remembers a plan an owner here just recorded.
    pub fn note_plan(&self, job_id: &str, allocations: Vec<Allocation>) {
        self.lock()
            .local_plans
            .insert(job_id.to_string(), allocations);
    }

    /// Forgets a job's plan (its owner here stopped; its view or the next owner has it).
    pub fn forget(&self, job_id: &str) {
        self.lock().local_plans.remove(job_id);
    }

    /// Whether `node` is connected and alive (its work will be done or reclaimed).
    pub fn is_alive(&self, node: &str) -> bool {
        self.lock()
            .nodes
            .iter()
            .any(|(v, alive)| v.name == node && *alive && v.connected)
    }

    /// Healthy nodes that have been up for at least `stable`, with their execution profiles.
    pub fn stable_healthy(&self, stable: Duration) -> Vec<(String, Vec<String>)> {
        let now = now_ms();
        let inner = self.lock();
        inner
            .nodes
            .iter()
            .filter(|(v, alive)| *alive && v.scheduling_eligible())
            .filter(|(v, _)| {
                v.joined_at_ms
                    .is_some_and(|j| now - j >= stable.as_millis() as i64)
            })
            .map(|(v, _)| {
                (
                    v.name.clone(),
                    v.inventory
                        .as_ref()
                        .map(|i| i.execution_profiles.clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Refreshes every `every` until `stop`.
    pub async fn run(
        self: Arc<Self>,
        store: Store,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.refresh(&store).await {
                tracing::debug!(error = %e, "cluster cache refresh failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
