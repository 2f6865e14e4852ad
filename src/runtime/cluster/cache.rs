//! A node's cached picture of the cluster for placing work: node views, liveness and load,
//! refreshed in the background so an owner never reads Redis to place a step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::domain::cluster::{Candidate, Need, choose_node};
use crate::domain::node::NodeState;
use crate::runtime::clock::now_ms;
use crate::store::{Store, StoreError};

#[derive(Default)]
struct Inner {
    candidates: Vec<Candidate>,
    nodes: Vec<(NodeState, bool)>,
    /// Work placed by this process since the last refresh, by node.
    placed: HashMap<String, u64>,
}

/// Shared by every owner on a node.
#[derive(Default)]
pub struct ClusterCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ClusterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterCache")
    }
}

impl ClusterCache {
    /// Reads the cluster once.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let views = store.node_views().await?;
        let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
        let alive = store.alive(&names).await?;
        let mut pipe = redis::pipe();
        for n in &names {
            pipe.xlen(store.keys().node_work(n));
        }
        let loads: Vec<u64> = if names.is_empty() {
            vec![]
        } else {
            pipe.query_async(&mut store.conn()).await?
        };
        let mut nodes = vec![];
        let mut candidates = vec![];
        for ((v, a), load) in views.into_iter().zip(alive).zip(loads) {
            let is_alive = a.is_some() && a == v.incarnation;
            let inv = v.inventory.clone().unwrap_or_default();
            candidates.push(Candidate {
                name: v.name.clone(),
                eligible: is_alive && v.connected && v.scheduling_eligible(),
                slots: inv.executor_slots,
                load,
                gpus: inv.gpu_count(),
                execution_profiles: inv.execution_profiles.clone(),
            });
            nodes.push((v, is_alive));
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.candidates = candidates;
        inner.nodes = nodes;
        inner.placed.clear();
        Ok(())
    }

    /// Picks a node for a step and counts the step against it.
    pub fn place(&self, need: &Need) -> Option<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let view: Vec<Candidate> = inner
            .candidates
            .iter()
            .map(|c| Candidate {
                load: c.load + inner.placed.get(&c.name).copied().unwrap_or(0),
                ..c.clone()
            })
            .collect();
        let name = choose_node(&view, need)?.name.clone();
        *inner.placed.entry(name.clone()).or_default() += 1;
        Some(name)
    }

    /// Whether `node` is connected and alive (its work will be done or reclaimed).
    pub fn is_alive(&self, node: &str) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .nodes
            .iter()
            .any(|(v, alive)| v.name == node && *alive && v.connected)
    }

    /// Healthy nodes that have been up for at least `stable`, with their execution profiles.
    pub fn stable_healthy(&self, stable: Duration) -> Vec<(String, Vec<String>)> {
        let now = now_ms();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
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
