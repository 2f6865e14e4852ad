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
