//! Startup check of the Redis settings durability depends on.

use super::{Store, StoreError};

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

async fn config_get(store: &Store, name: &str) -> Result<Option<String>, StoreError> {
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
        appendonly: config_get(store, "appendonly").await?,
        maxmemory_policy: config_get(store, "maxmemory-policy").await?,
    };
    for problem in report.problems() {
        tracing::warn!("DURABILITY WARNING: {problem}");
    }
    Ok(report)
}
