//! Which deployment a manifest belongs to, and the id of one rollout under that key.

use serde_json::Value;

use crate::domain::manifest::Manifest;

/// The deployment key: the first non-blank of the caller's key, `metadata.deployment_key`,
/// `metadata.mn_deployment_key`, `metadata.mn_cli.deployment_key`, `deployment.key`,
/// `policies.deployment_key`, `job_name`, `graph_id` (core-spec 9.2). Blank values are
/// skipped rather than used: an empty key would merge unrelated jobs' histories.
pub fn resolve_key(explicit: Option<&str>, manifest: &Manifest) -> String {
    let meta = &manifest.metadata;
    let candidates = [
        explicit,
        text(meta.get("deployment_key")),
        text(meta.get("mn_deployment_key")),
        text(meta.get("mn_cli").and_then(|c| c.get("deployment_key"))),
        text(
            manifest
                .extensions
                .get("deployment")
                .and_then(|d| d.get("key")),
        ),
        text(manifest.policies.get("deployment_key")),
        Some(manifest.job_name.as_str()),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(manifest.graph_id.as_str())
        .to_string()
}

fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

/// `dep_<key>_<unique>`: the key with every run of characters outside `[A-Za-z0-9_.-]`
/// turned into `-` and `-` trimmed from the ends, so the id is safe in Redis keys and
/// paths. `unique` is an input (the caller's counter or clock), keeping this pure.
pub fn deployment_id(key: &str, unique: u64) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    // A key made only of other characters still needs a readable id.
    let key = if trimmed.is_empty() { "key" } else { trimmed };
    format!("dep_{key}_{unique}")
}
