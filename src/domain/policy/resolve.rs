//! Policy resolution: defaults ← job `policies.<kind>` ← the agent's `policies.<kind>`, each
//! layer replacing only the keys it sets (core-spec 8). A system copy (`agent@node`) uses its
//! source agent's overrides.

use serde_json::{Map, Value};

use super::defaults::defaults;
use super::model::{DelayFunction, LifecyclePolicy, PolicyKind, RecoveryMode, RestartMode};
use crate::domain::manifest::{JobType, Manifest};

/// A policy field of the wrong type; `path` is where it sits (`nodes.w.policies.restart.attempts`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} {message}")]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

fn err(path: &str, key: &str, message: &str) -> PolicyError {
    PolicyError {
        path: format!("{path}.{key}"),
        message: message.to_string(),
    }
}

/// Resolves the `kind` policy from raw JSON: job-level `policies` and, for one agent, its id and
/// its node-level `policies`.
pub fn resolve(
    kind: PolicyKind,
    job_type: JobType,
    recovery: RecoveryMode,
    job_policies: &Value,
    agent: Option<(&str, &Value)>,
) -> Result<LifecyclePolicy, PolicyError> {
    let mut policy = defaults(kind, job_type, recovery);
    let job_layer = layer(job_policies, kind, "policies")?;
    if kind == PolicyKind::Restart && job_layer.is_none_or(|m| !m.contains_key("attempts")) {
        apply_legacy_attempts(&mut policy, job_policies)?;
    }
    if let Some(map) = job_layer {
        apply(&mut policy, map, &format!("policies.{}", kind.key()))?;
    }
    if let Some((agent_id, policies)) = agent {
        let path = format!("nodes.{agent_id}.policies");
        if let Some(map) = layer(policies, kind, &path)? {
            apply(&mut policy, map, &format!("{path}.{}", kind.key()))?;
        }
    }
    policy.max_delay_ms = policy.max_delay_ms.max(policy.delay_ms);
    if kind == PolicyKind::Restart {
        policy.unlimited = false;
    }
    Ok(policy)
}

/// Resolves for an agent of a parsed manifest; `agent_id` may be a system copy `agent@node`.
pub fn resolve_for_agent(
    manifest: &Manifest,
    agent_id: &str,
    kind: PolicyKind,
    recovery: RecoveryMode,
) -> Result<LifecyclePolicy, PolicyError> {
    let node = manifest.node(agent_id).or_else(|| {
        agent_id
            .split_once('@')
            .and_then(|(source, _)| manifest.node(source))
    });
    let agent = node.map(|n| (n.node_id.as_str(), &n.policies));
    resolve(kind, manifest.job_type, recovery, &manifest.policies, agent)
}

fn layer<'a>(
    policies: &'a Value,
    kind: PolicyKind,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, PolicyError> {
    match policies.get(kind.key()) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(err(path, kind.key(), "must be an object")),
    }
}

/// `policies.max_agent_restart_attempts`: an integer or a numeric string.
fn apply_legacy_attempts(
    policy: &mut LifecyclePolicy,
    policies: &Value,
) -> Result<(), PolicyError> {
    let key = "max_agent_restart_attempts";
    let n = match policies.get(key) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(v) => v.as_u64(),
    };
    let n = n.ok_or_else(|| err("policies", key, "must be a non-negative integer"))?;
    policy.attempts = u32::try_from(n).unwrap_or(u32::MAX);
    Ok(())
}

fn apply(
    policy: &mut LifecyclePolicy,
    map: &Map<String, Value>,
    path: &str,
) -> Result<(), PolicyError> {
    let int = |key: &str| -> Result<Option<u64>, PolicyError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| err(path, key, "must be a non-negative integer")),
        }
    };
    let flag = |key: &str| -> Result<Option<bool>, PolicyError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| err(path, key, "must be a boolean")),
        }
    };
    let text = |key: &str| -> Result<Option<&str>, PolicyError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| err(path, key, "must be a string")),
        }
    };
    if let Some(n) = int("attempts")? {
        policy.attempts = u32::try_from(n).unwrap_or(u32::MAX);
    }
    policy.interval_ms = int("interval_ms")?.unwrap_or(policy.interval_ms);
    policy.delay_ms = int("delay_ms")?.unwrap_or(policy.delay_ms);
    policy.max_delay_ms = int("max_delay_ms")?.unwrap_or(policy.max_delay_ms);
    policy.enabled = flag("enabled")?.unwrap_or(policy.enabled);
    policy.unlimited = flag("unlimited")?.unwrap_or(policy.unlimited);
    if let Some(f) = text("delay_function")? {
        policy.delay_function = DelayFunction::parse(f);
    }
    if let Some(m) = text("mode")? {
        policy.mode = if m == "delay" {
            RestartMode::Delay
        } else {
            RestartMode::Fail
        };
    }
    Ok(())
}
