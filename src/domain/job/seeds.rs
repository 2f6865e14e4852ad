//! The `init` messages a job starts with: one per initial input of each entrypoint.

use serde_json::{Map, Value, json};

use crate::domain::manifest::{ENTRYPOINTS_KEY, Manifest};
use crate::domain::message::Message;

/// Envelope keys a legacy (flat) input may carry next to its body.
const RESERVED: &[&str] = &[
    "message_id",
    "job_id",
    "from",
    "to",
    "type",
    "class",
    "timestamp",
    "correlation_id",
    "causation_id",
    "attempt",
    "priority",
    "ttl_ms",
    "content_type",
    "content_encoding",
    "headers",
    "artifacts",
    "stream",
    "payload",
    "body",
    "envelope",
];

/// Builds the seed messages, deterministically (ids derive from the job, node and index).
/// An entrypoint gets `initial_inputs[node]`, else the shared `__entrypoints__` list, else `[{}]`.
pub fn seed_messages(job_id: &str, manifest: &Manifest, now_ms: i64) -> Vec<Message> {
    let mut out = Vec::new();
    for ep in &manifest.entrypoints {
        let inputs = manifest
            .initial_inputs
            .get(ep)
            .or_else(|| manifest.initial_inputs.get(ENTRYPOINTS_KEY))
            .cloned()
            .unwrap_or_else(|| vec![json!({})]);
        for (i, input) in inputs.into_iter().enumerate() {
            out.push(seed(job_id, ep, i, input, now_ms));
        }
    }
    out
}

/// How many seed messages each entrypoint gets (what [`seed_messages`] builds, counted
/// without building them).
pub fn seed_counts(manifest: &Manifest) -> Vec<(String, u32)> {
    manifest
        .entrypoints
        .iter()
        .map(|ep| {
            let n = manifest
                .initial_inputs
                .get(ep)
                .or_else(|| manifest.initial_inputs.get(ENTRYPOINTS_KEY))
                .map_or(1, Vec::len);
            (ep.clone(), n as u32)
        })
        .collect()
}

fn seed(job_id: &str, to: &str, index: usize, input: Value, now_ms: i64) -> Message {
    let obj = input.as_object();
    let field = |k: &str| {
        obj.and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let body = match obj {
        Some(o) if o.contains_key("body") => o["body"].clone(),
        Some(o) if o.contains_key("payload") => o["payload"].clone(),
        Some(o) if o.keys().any(|k| RESERVED.contains(&k.as_str())) => Value::Object(
            o.iter()
                .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => input.clone(),
    };
    let headers = obj
        .and_then(|o| o.get("headers"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    Message {
        message_id: format!("seed-{to}-{index}"),
        job_id: job_id.to_string(),
        from: "runtime".into(),
        to: to.to_string(),
        message_type: field("type").unwrap_or_else(|| "init".into()),
        class: field("class").unwrap_or_else(|| "command".into()),
        correlation_id: Some(field("correlation_id").unwrap_or_else(|| job_id.to_string())),
        causation_id: None,
        content_type: field("content_type").unwrap_or_else(|| "application/json".into()),
        content_encoding: field("content_encoding").unwrap_or_else(|| "identity".into()),
        headers,
        body,
        artifacts: vec![],
        stream: None,
        timestamp_ms: now_ms,
    }
}
