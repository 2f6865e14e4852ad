//! The node: everything that does I/O over time. Composes `domain` and `store`.

pub mod artifacts;
pub mod blob_fetch;
pub mod blob_server;
pub mod blobs;
pub mod bundle;
pub mod bundle_archive;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod containment;
pub mod deployments;
pub mod embedded_redis;
pub mod executor;
pub mod gc;
pub mod hand_back;
pub mod history;
pub mod local;
pub mod metrics_poller;
pub mod module_process;
pub mod node;
pub mod outputs;
pub mod owner;
pub mod periodic;
pub mod projector;
pub mod rebuild;
pub mod schedules;
pub mod services;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Store;
use embedded_redis::EmbeddedRedis;
use projector::{ProjectorConfig, ProjectorStats};

/// A connected event store plus, when no `MN_REDIS_URL` was given, the embedded Redis behind it.
pub struct Backend {
    pub store: Store,
    embedded: Option<EmbeddedRedis>,
}

impl Backend {
    /// Connects to `MN_REDIS_URL`, or starts/reuses the embedded Redis under `MN_HOME`; checks
    /// durability settings, refuses a newer keyspace, and applies pending migrations.
    pub async fn open() -> anyhow::Result<Backend> {
        let namespace = crate::config::redis_namespace()?;
        let replica_ack = crate::store::ReplicaAck::from_env()?;
        let (topology, embedded) = match crate::config::redis_topology()? {
            Some(t) => (t, None),
            None => {
                let e = EmbeddedRedis::start_or_reuse(&crate::config::home_dir()).await?;
                let url = e.url().to_string();
                (crate::store::Topology::Single { url }, Some(e))
            }
        };
        let store = Store::connect_to(&topology, &namespace)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", topology.describe()))?
            .with_replica_ack(replica_ack);
        check_layout(&store, &topology).await?;
        crate::store::check_durability(&store).await?;
        store.check_not_newer().await?;
        store.migrate(clock::now_ms()).await?;
        Ok(Backend { store, embedded })
    }

    /// Stops the embedded Redis if this process started it.
    pub async fn close(mut self) {
        if let Some(e) = self.embedded.as_mut() {
            e.stop().await;
        }
    }
}

/// Refuses a cluster node used as a plain Redis (most keys would answer `MOVED`), and a
/// shard count other than the one the keyspace was created with (the keys would differ).
async fn check_layout(store: &Store, topology: &crate::store::Topology) -> anyhow::Result<()> {
    let sharded = matches!(topology, crate::store::Topology::Cluster { .. });
    if !sharded && crate::store::is_cluster_node(store).await? {
        anyhow::bail!(
            "{} is a Redis Cluster node: set MN_REDIS_CLUSTER=1 (MN_REDIS_URL may then list \
             several of its nodes)",
            topology.describe()
        );
    }
    let (recorded, ours) = (
        store.recorded_shard_count().await?,
        store.keys().shards().count(),
    );
    if recorded != ours {
        anyhow::bail!(
            "this keyspace is spread over {recorded} shard(s) but this node would use {ours}: \
             MN_REDIS_CLUSTER and MN_REDIS_CLUSTER_SHARDS must match the other nodes'"
        );
    }
    Ok(())
}

/// Running projection workers and the switch that stops them.
pub struct Projectors {
    shutdown: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
    pub stats: Arc<ProjectorStats>,
}

impl Projectors {
    /// Starts `n` workers in the projection group, named after `node`: at least one per feed
    /// shard (a blocking read waits on one shard), spread round-robin over the shards.
    pub fn start(store: &Store, node: &str, n: usize) -> Projectors {
        let (tx, rx) = watch::channel(false);
        let stats = Arc::new(ProjectorStats::default());
        let shards: Vec<crate::store::Shard> = store.keys().shards().collect();
        let handles = (0..n.max(shards.len()))
            .map(|i| {
                let mut cfg = ProjectorConfig::new(format!("{node}-{}-{i}", std::process::id()));
                cfg.shard = shards[i % shards.len()];
                tokio::spawn(projector::run(
                    store.clone(),
                    cfg,
                    stats.clone(),
                    rx.clone(),
                ))
            })
            .collect();
        Projectors {
            shutdown: tx,
            handles,
            stats,
        }
    }

    /// Stops the workers and waits for them (they finish the batch in hand first).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

/// Waits until the projection group has acknowledged everything on the feed (or `timeout`).
pub async fn wait_projections_caught_up(
    store: &Store,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match store.feed_backlog(projector::PROJECTION_GROUP).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // Redis briefly away (restarting, loading): keep waiting until the deadline.
            Err(e) if e.is_retryable() => {
                tracing::debug!(error = %e, "projection backlog unreadable; retrying")
            }
            Err(e) => return Err(e.into()),
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("projections did not catch up within {timeout:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
