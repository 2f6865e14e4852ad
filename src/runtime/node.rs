//! A runtime node (`mirror-neuron serve`): projection workers plus job owners. It owns the
//! jobs submitted through it at once, and adopts any active job whose owner is gone (its
//! lease expired) on a short sweep, so a restarted node resumes its jobs by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Projectors;
use super::executor::ExecutorPools;
use super::owner::{self, OwnerConfig, OwnerExit};
use crate::domain::job::JobStatus;
use crate::store::{JobListFilter, Store};

/// How a node behaves.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub owner: OwnerConfig,
    pub projection_workers: usize,
    /// How often to look for active jobs nobody owns.
    pub adopt_every: Duration,
}

impl NodeConfig {
    pub fn from_env(name: impl Into<String>) -> Result<NodeConfig, crate::config::ConfigError> {
        Ok(NodeConfig {
            owner: OwnerConfig::from_env(name)?,
            projection_workers: crate::config::u64_var("MN_PROJECTION_WORKERS", 2)? as usize,
            adopt_every: Duration::from_millis(crate::config::u64_var(
                "MN_ADOPT_INTERVAL_MS",
                1000,
            )?),
        })
    }
}

type Owners = Arc<Mutex<HashMap<String, JoinHandle<()>>>>;

/// A running node. Drop-safe, but call [`Node::shutdown`] to hand jobs back cleanly.
pub struct Node {
    store: Store,
    cfg: NodeConfig,
    pools: Arc<ExecutorPools>,
    owners: Owners,
    stop: watch::Sender<bool>,
    sweeper: Mutex<Option<JoinHandle<()>>>,
    projectors: Mutex<Option<Projectors>>,
}

impl Node {
    /// Starts the projection workers and the adoption sweep.
    pub fn start(
        store: Store,
        cfg: NodeConfig,
    ) -> Result<Node, crate::runtime::executor::PoolConfigError> {
        let pools = Arc::new(ExecutorPools::from_env()?);
        let projectors = Projectors::start(&store, &cfg.owner.node, cfg.projection_workers);
        let (stop, stop_rx) = watch::channel(false);
        let owners: Owners = Arc::default();
        let sweeper = tokio::spawn(sweep(
            store.clone(),
            cfg.clone(),
            pools.clone(),
            owners.clone(),
            stop_rx,
        ));
        Ok(Node {
            store,
            cfg,
            pools,
            owners,
            stop,
            sweeper: Mutex::new(Some(sweeper)),
            projectors: Mutex::new(Some(projectors)),
        })
    }

    /// The node's name (as written into leases).
    pub fn name(&self) -> &str {
        &self.cfg.owner.node
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts owning `job_id` now (e.g. right after it was submitted here).
    pub fn own(&self, job_id: &str) {
        own(
            &self.store,
            &self.cfg,
            &self.pools,
            &self.owners,
            self.stop.subscribe(),
            job_id,
        );
    }

    /// Jobs this node is running right now.
    pub fn owned_jobs(&self) -> Vec<String> {
        let owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<String> = owners.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Stops adopting, asks every owner to stop (they release their leases so another node can
    /// take over at once), waits for them, then stops the projection workers.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let sweeper = self
            .sweeper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = sweeper {
            let _ = s.await;
        }
        let handles: Vec<JoinHandle<()>> = {
            let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            owners.drain().map(|(_, h)| h).collect()
        };
        for h in handles {
            let _ = h.await;
        }
        let projectors = self
            .projectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(p) = projectors {
            p.stop().await;
        }
    }
}

fn own(
    store: &Store,
    cfg: &NodeConfig,
    pools: &Arc<ExecutorPools>,
    owners: &Owners,
    stop: watch::Receiver<bool>,
    job_id: &str,
) {
    let mut map = owners.lock().unwrap_or_else(|e| e.into_inner());
    if map.get(job_id).is_some_and(|h| !h.is_finished()) {
        return;
    }
    let (store, cfg, pools, owners2, job) = (
        store.clone(),
        cfg.owner.clone(),
        pools.clone(),
        owners.clone(),
        job_id.to_string(),
    );
    let handle = tokio::spawn(async move {
        match owner::run(store, job.clone(), cfg, pools, stop).await {
            Ok(OwnerExit::Finished(status)) => {
                tracing::info!(job_id = %job, %status, "job finished")
            }
            Ok(OwnerExit::NotOwner { .. } | OwnerExit::NotFound | OwnerExit::Stopped) => {}
            Err(e) => {
                tracing::warn!(job_id = %job, error = %e, "job owner stopped with an error; the job will be adopted again")
            }
        }
        owners2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job);
    });
    map.insert(job_id.to_string(), handle);
}

/// Periodically adopts active jobs without a live owner.
async fn sweep(
    store: Store,
    cfg: NodeConfig,
    pools: Arc<ExecutorPools>,
    owners: Owners,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for status in [JobStatus::Pending, JobStatus::Running, JobStatus::Paused] {
            let Ok(jobs) = store
                .list_jobs(&JobListFilter {
                    status: Some(status),
                    limit: 0,
                })
                .await
            else {
                continue;
            };
            for job in jobs {
                let held: bool = {
                    let map = owners.lock().unwrap_or_else(|e| e.into_inner());
                    map.get(&job.job_id).is_some_and(|h| !h.is_finished())
                };
                if !held {
                    own(&store, &cfg, &pools, &owners, stop.clone(), &job.job_id);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.adopt_every) => {}
            _ = stop.changed() => return,
        }
    }
}
