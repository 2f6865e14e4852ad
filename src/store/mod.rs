//! Redis: connections, the fenced append, history reads, leases, consumer groups, views and
//! migrations. Knows Redis and the domain types; knows nothing of gRPC or processes.

mod append;
mod archive;
mod blob_share;
mod bundles;
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

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisFuture, Value};

pub use append::{AppendError, AppendOutcome, seal};
pub use archive::{ArchiveRecord, RawEntry};
pub use blob_share::{BlobAnswer, BlobRequest};
pub use bundles::BundleFile;
pub use feed::{FeedEntry, FeedRead, TrimReport};
pub use health::{DurabilityReport, check_durability};
pub use history::HistoryItem;
pub use keys::{JobIdError, Keyspace, MAX_JOB_ID_LEN, validate_job_id};
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

/// Response timeout for ordinary commands: generous, because a big script batch is one command.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens connections: to one server, or to the master the sentinels name.
#[derive(Clone)]
enum Connector {
    /// In an `Arc`: a client is large, and a store handle is passed around by value.
    Single(Arc<redis::Client>),
    Sentinel(SentinelConn),
}

/// The store's shared connection. Cheap to clone; clones share the link.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    /// Follows the master through a Sentinel failover ([`sentinel`]).
    Sentinel(SentinelConn),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Sentinel(c) => c.get_db(),
        }
    }
}

/// A handle on the event store. Cheap to clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct Store {
    connector: Connector,
    conn: RedisConn,
    keys: Keyspace,
    scripts: Arc<Scripts>,
    /// `MN_REDIS_MIN_REPLICAS_ACK`: acknowledged writes wait for this many replicas.
    replica_ack: Option<ReplicaAck>,
}

impl Store {
    /// Connects to `url`, loads the scripts, and uses `namespace` for every key.
    pub async fn connect(url: &str, namespace: &str) -> Result<Store, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(6)
            .set_max_delay(Duration::from_secs(2));
        let conn = client.get_connection_manager_with_config(config).await?;
        Self::open(
            Connector::Single(Arc::new(client)),
            RedisConn::Single(conn),
            namespace,
        )
        .await
    }

    /// Connects to the master the sentinels of `config` name, following it through failovers.
    pub async fn connect_sentinel(
        config: &SentinelConfig,
        namespace: &str,
    ) -> Result<Store, StoreError> {
        let conn = SentinelConn::connect(config).await?;
        Self::open(
            Connector::Sentinel(conn.clone()),
            RedisConn::Sentinel(conn),
            namespace,
        )
        .await
    }

    /// Makes acknowledged writes (appends, lease acquisitions) wait for replicas.
    pub fn with_replica_ack(mut self, ack: Option<ReplicaAck>) -> Store {
        self.replica_ack = ack;
        self
    }

    /// Loads the scripts (waiting out a Redis that is still loading its data).
    async fn open(
        connector: Connector,
        mut conn: RedisConn,
        namespace: &str,
    ) -> Result<Store, StoreError> {
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
        Ok(Store {
            connector,
            conn,
            keys: Keyspace::new(namespace),
            scripts,
            replica_ack: None,
        })
    }

    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    pub fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// The shared multiplexed connection (reconnects, and follows a failover, by itself).
    pub fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// A dedicated connection for blocking reads (`XREADGROUP ... BLOCK`): blocking on the
    /// shared connection would stall every other command, and its response timeout would fire.
    pub async fn blocking_conn(
        &self,
        block: Duration,
    ) -> Result<MultiplexedConnection, StoreError> {
        let client = match &self.connector {
            Connector::Single(client) => client,
            Connector::Sentinel(s) => return Ok(s.open_blocking(block).await?),
        };
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(block + Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        Ok(client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// The blocking connection kept in `slot`, opened when missing. `None` (after a short
    /// pause, so callers can simply loop) while Redis cannot be reached.
    pub async fn blocking_conn_in<'a>(
        &self,
        slot: &'a mut Option<MultiplexedConnection>,
        block: Duration,
    ) -> Option<&'a mut MultiplexedConnection> {
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
