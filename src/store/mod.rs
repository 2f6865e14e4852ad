//! Redis: connections, the fenced append, history reads, leases, consumer groups, views and
//! migrations. Knows Redis and the domain types; knows nothing of gRPC or processes.

mod append;
mod archive;
mod blob_share;
mod bundles;
mod connection;
mod definitions;
mod delete;
mod deployments;
mod feed;
mod health;
mod history;
mod json_rows;
mod keys;
mod lease;
pub mod migrate;
mod nodes;
mod operations;
mod outputs;
mod replica_ack;
mod schedules;
mod script;
pub mod sentinel;
mod views;
mod work;

use std::sync::Arc;
use std::time::Duration;

use redis::FromRedisValue;

pub use append::{AppendError, AppendOutcome, seal};
pub use archive::{ArchiveRecord, RawEntry};
pub use blob_share::{BlobAnswer, BlobRequest};
pub use bundles::BundleFile;
pub use connection::{BlockingConn, RedisConn, Topology, redact};
pub use feed::{FeedEntry, FeedRead, PROJECTION_GROUP, TrimReport};
pub use health::{DurabilityReport, check_durability, is_cluster_node};
pub use history::HistoryItem;
pub use keys::{
    JobIdError, Keyspace, MAX_JOB_ID_LEN, MAX_SHARDS, Shard, cluster_slot, validate_job_id,
};
pub use lease::LeaseGrant;
pub use nodes::NodeCommandError;
pub use replica_ack::ReplicaAck;
pub use schedules::{EMITTED_EVENTS_KEPT, EmitRecord};
pub use script::{LuaScript, Scripts, is_noscript};
pub use sentinel::{SentinelConfig, SentinelConn};
pub use views::{JobListFilter, LoadedProjection};
pub use work::{InboxCommand, WORK_GROUP, WorkItem, WorkResult};

/// Errors at the Redis boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis refused or the connection failed. Retryable when `is_retryable()`.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A script answered something this build does not understand (version skew).
    #[error("unexpected reply from {script}: {detail}")]
    Protocol {
        script: &'static str,
        detail: String,
    },
    /// A stored JSON view could not be parsed.
    #[error("corrupt view {key}: {detail}")]
    CorruptView { key: String, detail: String },
    /// The write happened on the master but fewer than `wanted` replicas confirmed it in time
    /// (`MN_REDIS_MIN_REPLICAS_ACK`): not acknowledged, since a failover could lose it.
    /// Retryable: the writes that wait are idempotent on retry.
    #[error(
        "only {acked} of {wanted} replicas confirmed the write in time (MN_REDIS_MIN_REPLICAS_ACK)"
    )]
    NotReplicated { acked: i64, wanted: u32 },
}

/// Runs a store call, failing it as an I/O error after `limit`: for callers that must act on
/// time (lease renewals) rather than wait for the client's own timeouts on a half-open link.
pub async fn within<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Redis(redis::RedisError::from((
            redis::ErrorKind::Io,
            "timed out",
        )))),
    }
}

impl StoreError {
    /// Connection drops and timeouts are worth retrying; so are the answers of a server that
    /// is not (or no longer) a writable master (`READONLY` after a failover, `MASTERDOWN`),
    /// and a write replicas did not confirm. Script and data errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || is_loading(e)
                    || sentinel::is_not_master(e)
            }
            StoreError::NotReplicated { .. } => true,
            StoreError::Protocol { .. } | StoreError::CorruptView { .. } => false,
        }
    }
}

/// `LOADING`: a Redis that just restarted accepts connections while it reads its AOF back,
/// and refuses commands until it is done. Not a failure: wait it out.
fn is_loading(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
}

/// How long a connect waits for a restarted Redis to finish loading its data.
const LOADING_WAIT: Duration = Duration::from_secs(60);

/// A handle on the event store. Cheap to clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct Store {
    connector: Arc<connection::Connector>,
    conn: RedisConn,
    topology: Arc<Topology>,
    keys: Keyspace,
    scripts: Arc<Scripts>,
    /// `MN_REDIS_MIN_REPLICAS_ACK`: acknowledged writes wait for this many replicas.
    replica_ack: Option<ReplicaAck>,
}

impl Store {
    /// Connects to the single Redis at `url`, loads the scripts, and uses `namespace` for
    /// every key.
    pub async fn connect(url: &str, namespace: &str) -> Result<Store, StoreError> {
        Store::connect_to(&Topology::Single { url: url.into() }, namespace).await
    }

    /// Connects to `topology`, loads the scripts (on every master of a cluster), and uses
    /// `namespace` for every key.
    pub async fn connect_to(topology: &Topology, namespace: &str) -> Result<Store, StoreError> {
        let connector = Arc::new(connection::Connector::new(topology).await?);
        let mut conn = connector.shared().await?;
        let scripts = Arc::new(Scripts::new());
        let deadline = tokio::time::Instant::now() + LOADING_WAIT;
        loop {
            match scripts.load_all(&mut conn).await {
                Ok(()) => break,
                Err(e) if is_loading(&e) && tokio::time::Instant::now() < deadline => {
                    tracing::info!("redis is loading its data; waiting");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let keys = match topology {
            Topology::Single { .. } | Topology::Sentinel(_) => Keyspace::new(namespace),
            Topology::Cluster { shards, .. } => Keyspace::sharded(namespace, *shards),
        };
        Ok(Store {
            connector,
            conn,
            topology: Arc::new(topology.clone()),
            keys,
            scripts,
            replica_ack: None,
        })
    }

    /// Makes acknowledged writes (appends, lease acquisitions) wait for replicas.
    pub fn with_replica_ack(mut self, ack: Option<ReplicaAck>) -> Store {
        self.replica_ack = ack;
        self
    }

    /// The shard count the keyspace was created with: the first node to start records its
    /// own. The shard tags follow from the count, so nodes with two counts would write the
    /// same jobs under different keys; the caller refuses to start on a mismatch.
    pub async fn recorded_shard_count(&self) -> Result<usize, StoreError> {
        let n = self.keys().shards().count();
        let key = format!("{}:meta:cluster_shards", self.keys().namespace());
        let mut conn = self.conn();
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(n)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        let recorded: Option<usize> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        Ok(recorded.unwrap_or(n))
    }

    /// Where this store's Redis is.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    pub fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// The shared multiplexed connection (reconnects by itself).
    pub fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// A dedicated connection for blocking reads (`XREADGROUP ... BLOCK`): blocking on the
    /// shared connection would stall every other command, and its response timeout would fire.
    pub async fn blocking_conn(&self, block: Duration) -> Result<BlockingConn, StoreError> {
        Ok(self.connector.blocking(block).await?)
    }

    /// The blocking connection kept in `slot`, opened when missing. `None` (after a short
    /// pause, so callers can simply loop) while Redis cannot be reached.
    pub async fn blocking_conn_in<'a>(
        &self,
        slot: &'a mut Option<BlockingConn>,
        block: Duration,
    ) -> Option<&'a mut BlockingConn> {
        if slot.is_none() {
            *slot = self.blocking_conn(block).await.ok();
            if slot.is_none() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        slot.as_mut()
    }

    /// Runs a script call built by [`LuaScript::evalsha`], reloading scripts once on NOSCRIPT.
    pub async fn eval<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn();
        match cmd.query_async(&mut conn).await {
            Err(e) if is_noscript(&e) => {
                self.scripts.load_all(&mut conn).await?;
                Ok(cmd.query_async(&mut conn).await?)
            }
            other => Ok(other?),
        }
    }

    /// Runs one command per item (built by `add`), pipelined, and returns the replies in item
    /// order. Under Redis Cluster a pipeline must stay in one slot, so items are grouped by
    /// their shard and each group is its own pipeline; on one Redis it is one pipeline.
    pub async fn pipelined<I, T: FromRedisValue>(
        &self,
        items: &[I],
        shard: impl Fn(&I) -> Shard,
        add: impl Fn(&mut redis::Pipeline, &I),
    ) -> Result<Vec<T>, StoreError> {
        let mut groups: std::collections::BTreeMap<Shard, Vec<usize>> = Default::default();
        for (i, item) in items.iter().enumerate() {
            groups.entry(shard(item)).or_default().push(i);
        }
        let mut out: Vec<Option<T>> = items.iter().map(|_| None).collect();
        for idx in groups.values() {
            let mut pipe = redis::pipe();
            for &i in idx {
                add(&mut pipe, &items[i]);
            }
            let replies: Vec<T> = self.eval_pipeline(&pipe).await?;
            if replies.len() != idx.len() {
                return Err(StoreError::Protocol {
                    script: "pipeline",
                    detail: format!("{} replies to {} commands", replies.len(), idx.len()),
                });
            }
            for (&i, r) in idx.iter().zip(replies) {
                out[i] = Some(r);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Runs a pipeline of script calls, reloading scripts once on NOSCRIPT.
    pub async fn eval_pipeline<T: FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        match pipe.query_async(&mut conn).await {
            Err(e) if is_noscript(&e) => {
                self.scripts.load_all(&mut conn).await?;
                Ok(pipe.query_async(&mut conn).await?)
            }
            other => Ok(other?),
        }
    }
}
