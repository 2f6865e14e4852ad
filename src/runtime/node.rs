//! A runtime node (`mirror-neuron serve`): projection workers, job owners, and the cluster
//! member around them: it joins with its inventory, heartbeats, runs the executor work placed
//! on it, campaigns for leadership, and takes or hands back jobs when the leader says so.
//! Jobs submitted through this node are owned here at once; any other active job without an
//! owner is assigned by the leader's sweep.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Projectors;
use super::cluster::{self, ClusterCache, ClusterConfig, Membership};
use super::executor::ExecutorPools;
use super::owner::{self, OwnerConfig, OwnerExit};
use crate::store::{InboxCommand, Store};

/// How a node behaves.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub owner: OwnerConfig,
    pub projection_workers: usize,
    pub cluster: ClusterConfig,
}

impl NodeConfig {
    pub fn from_env(name: impl Into<String>) -> Result<NodeConfig, crate::config::ConfigError> {
        // What the node will advertise must be readable before it joins.
        cluster::probe::declared_gpus_from_env()?;
        cluster::probe::declared_gpu_from_env()?;
        Ok(NodeConfig {
            owner: OwnerConfig::from_env(name)?,
            projection_workers: crate::config::u64_var("MN_PROJECTION_WORKERS", 2)? as usize,
            cluster: ClusterConfig::from_env()?,
        })
    }
}

/// A running owner and the switch that stops it alone.
struct Owned {
    handle: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

type Owners = Arc<Mutex<HashMap<String, Owned>>>;

/// What every owner spawned by this node shares.
#[derive(Clone)]
struct Shared {
    store: Store,
    owner: OwnerConfig,
    pools: Arc<ExecutorPools>,
    owners: Owners,
    stop: watch::Receiver<bool>,
}

/// A running node. Drop-safe, but call [`Node::shutdown`] to hand jobs back cleanly.
pub struct Node {
    shared: Shared,
    /// Set while this node holds the leader lease.
    leading: Arc<AtomicBool>,
    me: Membership,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    projectors: Mutex<Option<Projectors>>,
}

impl Node {
    /// Starts the projection workers and the cluster member (join, heartbeat, work, inbox,
    /// leader campaign).
    pub fn start(
        store: Store,
        cfg: NodeConfig,
    ) -> Result<Node, crate::runtime::executor::PoolConfigError> {
        let pools = Arc::new(ExecutorPools::from_env()?);
        let name = cfg.owner.node.clone();
        let projectors = Projectors::start(&store, &name, cfg.projection_workers);
        let (stop, stop_rx) = watch::channel(false);
        let cache = Arc::new(ClusterCache::new(cfg.cluster.resource_admission));
        let mut owner_cfg = cfg.owner.clone();
        owner_cfg.cluster = Some(cache.clone());
        let home = crate::config::home_dir();
        // Claiming this process's run folder clears those of runtimes that died mid-step.
        if let Err(e) = crate::runtime::executor::run_root::claimed(&owner_cfg.temp_root) {
            tracing::warn!(error = %e, "run directories unavailable");
        }
        let slots = pools.capacity("default").unwrap_or(1);
        let me = Membership {
            node: name.clone(),
            incarnation: uuid::Uuid::now_v7().simple().to_string(),
            inventory: cluster::probe::probe(
                if home.exists() {
                    &home
                } else {
                    &owner_cfg.temp_root
                },
                slots,
            ),
        };
        crate::metrics::node_resources(
            f64::from(me.inventory.cpu_cores),
            me.inventory.memory_mb * 1024 * 1024,
        );
        let shared = Shared {
            store: store.clone(),
            owner: owner_cfg,
            pools: pools.clone(),
            owners: Arc::default(),
            stop: stop_rx.clone(),
        };
        let mut tasks = vec![];
        // Membership first: placement needs this node in the views.
        {
            let (store, me, ccfg, cache, stop) = (
                store.clone(),
                me.clone(),
                cfg.cluster.clone(),
                cache.clone(),
                stop_rx.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while let Err(e) = cluster::join(&store, &me, &ccfg).await {
                    tracing::warn!(node = %me.node, error = %e, "joining the cluster failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if *stop.borrow() {
                        return;
                    }
                }
                let _ = cache.refresh(&store).await;
                cluster::run_heartbeat(store, me, ccfg, stop).await;
            }));
        }
        tasks.push(tokio::spawn(crate::runtime::services::monitor::run(
            store.clone(),
            name.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(cache.clone().run(
            store.clone(),
            Duration::from_millis(500),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(cluster::run_node_views(
            store.clone(),
            name.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(cluster::run_worker(
            store.clone(),
            name.clone(),
            pools,
            cfg.owner.temp_root.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(crate::runtime::blob_server::run_blob_server(
            store.clone(),
            name.clone(),
            crate::runtime::blobs::BlobStore::from_env(),
            stop_rx.clone(),
        )));
        {
            let s = shared.clone();
            tasks.push(tokio::spawn(cluster::run_inbox(
                store.clone(),
                name.clone(),
                move |cmd| match cmd {
                    InboxCommand::Assign { job_id } => own(&s, &job_id),
                    InboxCommand::Release { job_id } => release(&s, &job_id),
                },
                stop_rx.clone(),
            )));
        }
        let leading = Arc::new(AtomicBool::new(false));
        tasks.push(tokio::spawn(cluster::run_leader(
            store,
            name,
            cfg.cluster.clone(),
            leading.clone(),
            stop_rx,
        )));
        Ok(Node {
            shared,
            leading,
            me,
            stop,
            tasks: Mutex::new(tasks),
            projectors: Mutex::new(Some(projectors)),
        })
    }

    /// The node's name (as written into leases).
    pub fn name(&self) -> &str {
        &self.me.node
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Whether this node leads the cluster right now (it holds the leader lease).
    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// A cheap handle on [`Node::is_leader`] for loops that outlive a borrow of the node.
    pub fn leadership(&self) -> Arc<AtomicBool> {
        self.leading.clone()
    }

    /// Starts owning `job_id` now (e.g. right after it was submitted here).
    pub fn own(&self, job_id: &str) {
        own(&self.shared, job_id);
    }

    /// Jobs this node is running right now.
    pub fn owned_jobs(&self) -> Vec<String> {
        let owners = self.shared.owners.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<String> = owners
            .iter()
            .filter(|(_, o)| !o.handle.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Stops the cluster tasks, asks every owner to stop (they release their leases so
    /// another node can take over at once), waits for them, records leaving the cluster, then
    /// stops the projection workers.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let owned: Vec<Owned> = {
            let mut owners = self.shared.owners.lock().unwrap_or_else(|e| e.into_inner());
            owners.drain().map(|(_, o)| o).collect()
        };
        for o in &owned {
            let _ = o.stop.send(true);
        }
        for o in owned {
            let _ = o.handle.await;
        }
        for t in tasks {
            let _ = t.await;
        }
        cluster::leave(&self.shared.store, &self.me, "node shut down").await;
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

fn own(s: &Shared, job_id: &str) {
    if *s.stop.borrow() {
        return;
    }
    let mut map = s.owners.lock().unwrap_or_else(|e| e.into_inner());
    if map.get(job_id).is_some_and(|o| !o.handle.is_finished()) {
        return;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (store, cfg, pools, owners, job) = (
        s.store.clone(),
        s.owner.clone(),
        s.pools.clone(),
        s.owners.clone(),
        job_id.to_string(),
    );
    let handle = tokio::spawn(async move {
        match owner::run(store, job.clone(), cfg, pools, stop_rx).await {
            Ok(OwnerExit::Finished(status)) => {
                tracing::info!(job_id = %job, %status, "job finished")
            }
            Ok(OwnerExit::Stopped) => tracing::info!(job_id = %job, "handed the job back"),
            Ok(OwnerExit::NotOwner { .. } | OwnerExit::NotFound) => {}
            Err(e) => {
                tracing::warn!(job_id = %job, error = %e, "job owner stopped with an error; the job will be assigned again")
            }
        }
        let mut map = owners.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(&job)
            .is_some_and(|o| o.handle.is_finished() || o.stop.is_closed())
        {
            map.remove(&job);
        }
    });
    map.insert(
        job_id.to_string(),
        Owned {
            handle,
            stop: stop_tx,
        },
    );
}

/// Stops owning `job_id`; the owner releases its lease on the way out.
fn release(s: &Shared, job_id: &str) {
    let map = s.owners.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(o) = map.get(job_id) {
        tracing::info!(job_id, "handing the job back (drain deadline)");
        let _ = o.stop.send(true);
    }
}
