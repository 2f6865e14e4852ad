//! Settings read from the environment, parsed strictly: a malformed value is an error that
//! names the variable, never a silent default.

use std::path::PathBuf;

/// Why a setting could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be an integer, got {value:?}")]
    NotInteger { name: &'static str, value: String },
    #[error("{name} must be a boolean (1/true/yes/on or 0/false/no/off), got {value:?}")]
    NotBool { name: &'static str, value: String },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Reads an environment variable, treating empty as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads an unsigned integer setting with a default.
pub fn u64_var(name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError::NotInteger { name, value: v }),
    }
}

/// Reads a boolean setting with a default.
pub fn bool_var(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(ConfigError::NotBool { name, value: v }),
    }
}

/// Where the runtime keeps its state when nothing else is configured (`MN_HOME`, default `~/.mn`).
pub fn home_dir() -> PathBuf {
    if let Some(h) = var("MN_HOME") {
        return PathBuf::from(h);
    }
    let base = var("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    base.join(".mn")
}

/// The Redis namespace (`MN_REDIS_NAMESPACE`, default `mirror_neuron`).
pub fn redis_namespace() -> Result<String, ConfigError> {
    let ns = var("MN_REDIS_NAMESPACE").unwrap_or_else(|| "mirror_neuron".to_string());
    if ns.contains(['{', '}', ' ']) {
        return Err(ConfigError::Invalid {
            name: "MN_REDIS_NAMESPACE",
            reason: "must not contain '{', '}' or spaces".into(),
        });
    }
    Ok(ns)
}

/// `MN_REDIS_URL`, when set.
pub fn redis_url() -> Option<String> {
    var("MN_REDIS_URL")
}

/// Default for `MN_REDIS_CLUSTER_SHARDS`: enough hash tags to spread over a few masters
/// evenly, few enough that every shard keeps a projection worker busy.
pub const DEFAULT_CLUSTER_SHARDS: u64 = 8;

/// Where the event store is (`None`: nothing set, use the embedded Redis):
/// - `MN_REDIS_SENTINELS` (+ `MN_REDIS_SENTINEL_MASTER`, credentials): the master the sentinels
///   name, followed through failovers;
/// - `MN_REDIS_URL` with `MN_REDIS_CLUSTER=1`: a Redis Cluster; the URL may list several seed
///   nodes, comma-separated, and `MN_REDIS_CLUSTER_SHARDS` sets how many hash tags the cross-job
///   keys (feeds, registries, indexes) are spread over;
/// - `MN_REDIS_URL` alone: one server.
pub fn redis_topology() -> Result<Option<crate::store::Topology>, ConfigError> {
    let cluster = bool_var("MN_REDIS_CLUSTER", false)?;
    let shards = u64_var("MN_REDIS_CLUSTER_SHARDS", DEFAULT_CLUSTER_SHARDS)?;
    if let Some(sentinel) = crate::store::SentinelConfig::from_env()? {
        // Which one was meant cannot be guessed, and picking one silently could split a
        // cluster's nodes over two Redis servers.
        if redis_url().is_some() || cluster {
            return Err(ConfigError::Invalid {
                name: "MN_REDIS_SENTINELS",
                reason: "is set together with MN_REDIS_URL or MN_REDIS_CLUSTER: set one (with \
                         Sentinel, the master's address comes from the sentinels)"
                    .into(),
            });
        }
        return Ok(Some(crate::store::Topology::Sentinel(sentinel)));
    }
    let Some(url) = redis_url() else {
        if cluster {
            return Err(ConfigError::Invalid {
                name: "MN_REDIS_CLUSTER",
                reason: "needs MN_REDIS_URL naming at least one node of the cluster".into(),
            });
        }
        return Ok(None);
    };
    if !cluster {
        return Ok(Some(crate::store::Topology::Single { url }));
    }
    if !(1..=crate::store::MAX_SHARDS as u64).contains(&shards) {
        return Err(ConfigError::Invalid {
            name: "MN_REDIS_CLUSTER_SHARDS",
            reason: format!("must be 1..={}, got {shards}", crate::store::MAX_SHARDS),
        });
    }
    let seeds: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.contains("://") {
                s.to_string()
            } else {
                format!("redis://{s}")
            }
        })
        .collect();
    Ok(Some(crate::store::Topology::Cluster {
        seeds,
        shards: shards as u16,
    }))
}
