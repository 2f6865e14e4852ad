//! Startup check of the Redis settings durability depends on.

use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};

use super::{RedisConn, Store, StoreError};

/// What the Redis server says about persistence and eviction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurabilityReport {
    /// `appendonly` setting (None when CONFIG GET is not allowed).
    pub appendonly: Option<String>,
    /// `maxmemory-policy` setting (None when CONFIG GET is not allowed).
    pub maxmemory_policy: Option<String>,
}

impl DurabilityReport {
    /// Human-readable problems; empty when the settings keep jobs safe.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.appendonly.as_deref() {
            Some("yes") => {}
            Some(v) => out.push(format!(
                "Redis has appendonly={v}: a Redis restart can lose recent job history; set 'appendonly yes'"
            )),
            None => out.push("could not read Redis 'appendonly' (CONFIG GET refused); make sure AOF is on".into()),
        }
        match self.maxmemory_policy.as_deref() {
            Some("noeviction") => {}
            Some(v) => out.push(format!(
                "Redis has maxmemory-policy={v}: under memory pressure it will EVICT job history; set 'maxmemory-policy noeviction'"
            )),
            None => out.push("could not read Redis 'maxmemory-policy'; make sure it is 'noeviction'".into()),
        }
        out
    }
}

/// `CONFIG GET name` on the server, or, under Redis Cluster, on every master: a setting that
/// is safe on one master and not on another is reported as the unsafe value, naming the
/// master (`no (on 10.0.0.6:7000)`).
async fn config_get(store: &Store, name: &str, safe: &str) -> Result<Option<String>, StoreError> {
    let RedisConn::Cluster(mut cluster) = store.conn() else {
        return config_get_one(store, name).await;
    };
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg(name);
    let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
    let redis::Value::Map(replies) = cluster.route_command(cmd, routing).await? else {
        return Ok(None);
    };
    let mut seen = None;
    for (addr, reply) in replies {
        let value = <Vec<String> as redis::FromRedisValue>::from_redis_value(reply)
            .ok()
            .and_then(|kv| kv.get(1).cloned());
        let addr = <String as redis::FromRedisValue>::from_redis_value(addr).unwrap_or_default();
        match value {
            Some(v) if v == safe => seen = seen.or(Some(v)),
            Some(v) => return Ok(Some(format!("{v} (on {addr})"))),
            // CONFIG refused on that master: as unknown as on one server.
            None => return Ok(None),
        }
    }
    Ok(seen)
}

async fn config_get_one(store: &Store, name: &str) -> Result<Option<String>, StoreError> {
    let reply: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(&mut store.conn())
        .await;
    match reply {
        Ok(kv) => Ok(kv.get(1).cloned()),
        // Managed Redis services often forbid CONFIG; that is not a reason to refuse to run.
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// True when the server is a node of a Redis Cluster (`cluster_enabled:1`): a plain client
/// would get `MOVED` for most keys there, so the caller refuses it without
/// `MN_REDIS_CLUSTER=1`.
pub async fn is_cluster_node(store: &Store) -> Result<bool, StoreError> {
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(&mut store.conn())
        .await?;
    Ok(info.lines().any(|l| l.trim() == "cluster_enabled:1"))
}

/// Reads the settings and logs a loud warning for each unsafe one.
pub async fn check_durability(store: &Store) -> Result<DurabilityReport, StoreError> {
    let report = DurabilityReport {
        appendonly: config_get(store, "appendonly", "yes").await?,
        maxmemory_policy: config_get(store, "maxmemory-policy", "noeviction").await?,
    };
    for problem in report.problems() {
        tracing::warn!("DURABILITY WARNING: {problem}");
    }
    Ok(report)
}
