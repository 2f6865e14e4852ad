//! How the store reaches Redis: one server, a master watched by Sentinel, or a Redis Cluster.
//! Each gives the rest of the store the same two things: a shared connection that reconnects
//! (and follows a failover) by itself, and dedicated connections for blocking reads. Every
//! command the store sends names keys of one slot (see `keys.rs`), so the cluster client can
//! route each one whole.

use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};

use super::sentinel::{SentinelConfig, SentinelConn};

/// Response timeout for ordinary commands: generous, because a big script batch is one command.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the event store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One Redis server (`MN_REDIS_URL`, or the embedded one).
    Single { url: String },
    /// The master the sentinels of `MN_REDIS_SENTINELS` name, followed through failovers.
    Sentinel(SentinelConfig),
    /// A Redis Cluster reached through any of `seeds` (`MN_REDIS_CLUSTER=1`; the seeds are the
    /// comma-separated `MN_REDIS_URL`). Cross-node keys are spread over `shards` hash tags.
    Cluster { seeds: Vec<String>, shards: u16 },
}

impl Topology {
    /// The addresses, for messages (passwords hidden).
    pub fn describe(&self) -> String {
        match self {
            Topology::Single { url } => format!("Redis at {}", redact(url)),
            Topology::Sentinel(config) => config.describe(),
            Topology::Cluster { seeds, .. } => format!(
                "Redis Cluster via {}",
                seeds
                    .iter()
                    .map(|s| redact(s))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// Hides a password in a Redis URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Opens connections for one topology.
#[derive(Clone)]
pub(super) enum Connector {
    Single(redis::Client),
    Sentinel(SentinelConn),
    /// Boxed: a cluster client is more than twice the size of a plain one.
    Cluster(Box<ClusterClient>),
}

impl Connector {
    pub(super) async fn new(topology: &Topology) -> redis::RedisResult<Connector> {
        Ok(match topology {
            Topology::Single { url } => Connector::Single(redis::Client::open(url.as_str())?),
            Topology::Sentinel(config) => Connector::Sentinel(SentinelConn::connect(config).await?),
            Topology::Cluster { seeds, .. } => Connector::Cluster(Box::new(
                ClusterClient::builder(seeds.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(6)
                    .build()?,
            )),
        })
    }

    /// The shared connection: multiplexed, and reconnecting by itself.
    pub(super) async fn shared(&self) -> redis::RedisResult<RedisConn> {
        Ok(match self {
            Connector::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_number_of_retries(6)
                    .set_max_delay(Duration::from_secs(2));
                RedisConn::Single(client.get_connection_manager_with_config(config).await?)
            }
            Connector::Sentinel(conn) => RedisConn::Sentinel(conn.clone()),
            Connector::Cluster(client) => RedisConn::Cluster(client.get_async_connection().await?),
        })
    }

    /// A connection of its own for `XREADGROUP ... BLOCK` and `BLPOP`: blocking on the shared
    /// one would stall every other command, and its response timeout would fire.
    pub(super) async fn blocking(&self, block: Duration) -> redis::RedisResult<BlockingConn> {
        let timeout = block + Duration::from_secs(5);
        Ok(match self {
            Connector::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(Some(timeout))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT));
                BlockingConn::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
            Connector::Sentinel(conn) => BlockingConn::Single(conn.open_blocking(block).await?),
            Connector::Cluster(client) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_response_timeout(timeout)
                    .set_connection_timeout(CONNECT_TIMEOUT);
                BlockingConn::Cluster(client.get_async_connection_with_config(config).await?)
            }
        })
    }
}

/// The store's shared connection. Cheap to clone; clones share the link(s).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    /// Follows the master through a Sentinel failover (`sentinel.rs`).
    Sentinel(SentinelConn),
    Cluster(ClusterConnection),
}

/// A connection for blocking reads, owned by one reader. Under Sentinel it is a plain
/// connection to the master of the moment: a reader drops it on an error and opens a new one,
/// which asks the sentinels again.
#[derive(Clone)]
pub enum BlockingConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Both connection kinds forward every call to the link they hold.
macro_rules! forward_connection_like {
    ($t:ident: $($v:ident),+) => {
        impl ConnectionLike for $t {
            fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
                match self {
                    $($t::$v(c) => c.req_packed_command(cmd),)+
                }
            }

            fn req_packed_commands<'a>(
                &'a mut self,
                pipeline: &'a Pipeline,
                offset: usize,
                count: usize,
            ) -> RedisFuture<'a, Vec<Value>> {
                match self {
                    $($t::$v(c) => c.req_packed_commands(pipeline, offset, count),)+
                }
            }

            fn get_db(&self) -> i64 {
                match self {
                    $($t::$v(c) => c.get_db(),)+
                }
            }
        }
    };
}

forward_connection_like!(RedisConn: Single, Sentinel, Cluster);
forward_connection_like!(BlockingConn: Single, Cluster);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        let t = Topology::Cluster {
            seeds: vec!["redis://u:p@a:1".into(), "redis://b:2".into()],
            shards: 8,
        };
        assert_eq!(
            t.describe(),
            "Redis Cluster via redis://***@a:1,redis://b:2"
        );
    }
}
