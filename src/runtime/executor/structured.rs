//! Structured stdout: a worker asks the runtime for emits, events, a new agent state or job
//! completion by printing one JSON object.
//!
//! Where it is looked for: the whole trimmed stdout, else its last non-empty line (so a script
//! may print log lines first and the object last, on one line). An object counts only if it has
//! at least one of [`STRUCTURED_KEYS`]; any other stdout is plain output. Once an object counts,
//! every field must be well-formed: a malformed one is an error, never a silently dropped emit.
//! A `null` `next_state` or `complete_job` means "not set".
//! Stdout cut at the output cap is never parsed: a cut object cannot be trusted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::artifact::ArtifactRef;

/// Keys whose presence makes a stdout object structured output.
pub const STRUCTURED_KEYS: &[&str] = &[
    "emit_messages",
    "events",
    "next_state",
    "complete_job",
    "complete_job?",
];

/// What the worker asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StructuredOutput {
    pub emit_messages: Vec<EmitSpec>,
    /// `(event type, payload)` pairs.
    pub events: Vec<(String, Value)>,
    /// Replaces the agent state seen by the next run.
    pub next_state: Option<Value>,
    /// Complete the job with this result.
    pub complete_job: Option<Value>,
    /// `"complete_job?": true`: complete the job with the default output payload.
    pub complete_job_default: bool,
}

/// One message to emit. Unset optional fields inherit from the incoming message when routed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmitSpec {
    /// Direct delivery to this agent (`emit_to`); `None` routes along matching edges.
    pub to: Option<String>,
    #[serde(rename = "type")]
    pub message_type: String,
    /// From `body`, else `payload`; `Null` when only `body_base64` was given.
    pub body: Value,
    /// Binary body, still base64-encoded, for the router to decode.
    pub body_base64: Option<String>,
    pub class: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub headers: Map<String, Value>,
    /// References the message carries instead of the incoming ones (checked when parsed).
    pub artifacts: Option<Vec<ArtifactRef>>,
    pub stream: Option<Value>,
}

/// Finds and parses structured output; `Ok(None)` when stdout is plain.
pub fn parse_structured(stdout: &str) -> Result<Option<StructuredOutput>, String> {
    let trimmed = stdout.trim();
    if let Some(object) = structured_object(trimmed) {
        return parse_object(&object).map(Some);
    }
    let last = trimmed.lines().map(str::trim).rfind(|l| !l.is_empty());
    match last
        .filter(|l| l.len() < trimmed.len())
        .and_then(structured_object)
    {
        Some(object) => parse_object(&object).map(Some),
        None => Ok(None),
    }
}

fn structured_object(text: &str) -> Option<Map<String, Value>> {
    if !text.starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) if STRUCTURED_KEYS.iter().any(|k| m.contains_key(*k)) => Some(m),
        _ => None,
    }
}

fn parse_object(m: &Map<String, Value>) -> Result<StructuredOutput, String> {
    Ok(StructuredOutput {
        emit_messages: list(m, "emit_messages")?
            .iter()
            .enumerate()
            .map(|(i, v)| parse_emit(i, v))
            .collect::<Result<_, _>>()?,
        events: list(m, "events")?
            .iter()
            .enumerate()
            .map(|(i, v)| parse_event(i, v))
            .collect::<Result<_, _>>()?,
        next_state: m.get("next_state").filter(|v| !v.is_null()).cloned(),
        complete_job: m.get("complete_job").filter(|v| !v.is_null()).cloned(),
        complete_job_default: match m.get("complete_job?") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("structured output: complete_job? must be a boolean".to_string()),
        },
    })
}

fn list<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("structured output: {key} must be a list")),
    }
}

fn parse_event(i: usize, v: &Value) -> Result<(String, Value), String> {
    let m = v
        .as_object()
        .ok_or_else(|| format!("structured output: events[{i}] must be an object"))?;
    let event_type = text(m, "type", &format!("events[{i}]"))?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("structured output: events[{i}].type must be a non-empty string"))?;
    Ok((event_type, m.get("payload").cloned().unwrap_or(Value::Null)))
}

fn parse_emit(i: usize, v: &Value) -> Result<EmitSpec, String> {
    let at = format!("emit_messages[{i}]");
    let m = v
        .as_object()
        .ok_or_else(|| format!("structured output: {at} must be an object"))?;
    let message_type = text(m, "type", &at)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("structured output: {at}.type must be a non-empty string"))?;
    let headers = match m.get("headers") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(h)) => h.clone(),
        Some(_) => return Err(format!("structured output: {at}.headers must be an object")),
    };
    let artifacts = match m.get("artifacts") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            ArtifactRef::parse_list(a, &format!("{at}.artifacts"))
                .map_err(|e| format!("structured output: {e}"))?,
        ),
        Some(_) => return Err(format!("structured output: {at}.artifacts must be a list")),
    };
    Ok(EmitSpec {
        to: text(m, "to", &at)?,
        message_type,
        body: m
            .get("body")
            .or_else(|| m.get("payload"))
            .cloned()
            .unwrap_or(Value::Null),
        body_base64: text(m, "body_base64", &at)?,
        class: text(m, "class", &at)?,
        correlation_id: text(m, "correlation_id", &at)?,
        causation_id: text(m, "causation_id", &at)?,
        content_type: text(m, "content_type", &at)?,
        content_encoding: text(m, "content_encoding", &at)?,
        headers,
        artifacts,
        stream: m.get("stream").filter(|v| !v.is_null()).cloned(),
    })
}

/// An optional string field; any other type is an error naming `at.key`.
fn text(m: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("structured output: {at}.{key} must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_artifacts_are_parsed_into_references_or_refused_naming_the_entry() {
        let sha = "c".repeat(64);
        let ok = format!(
            r#"{{"emit_messages": [{{"type": "t", "artifacts": [{{"name": "a.csv", "sha256": "{sha}", "size": 4}}]}}]}}"#
        );
        let parsed = parse_structured(&ok).unwrap().unwrap();
        let refs = parsed.emit_messages[0].artifacts.as_ref().unwrap();
        assert_eq!((refs[0].name.as_str(), refs[0].size), ("a.csv", 4));
        let bad = format!(
            r#"{{"emit_messages": [{{"type": "t", "artifacts": [{{"name": "../a", "sha256": "{sha}", "size": 4}}]}}]}}"#
        );
        let err = parse_structured(&bad).unwrap_err();
        assert!(
            err.contains("emit_messages[0].artifacts[0]") && err.contains("../a"),
            "{err}"
        );
    }
}
