//! Aggregator: collects message bodies and completes once, on the first message
//! (`complete_on_message`) or after `complete_after` distinct results.
//!
//! Two fixes over the original runtime: the completion is latched (later messages are kept
//! but never complete again), and duplicates are recognised by the sending agent's id *and*
//! the input it answered (else by message id), so a replayed result is never counted twice
//! while an executor's results for different inputs all count.
//!
//! State: `{count, seen: {key: true}, messages: [bodies], completed}`.

use serde_json::{Map, Value, json};

use super::{Emit, StepOutcome, config_bool, config_positive, config_str, object};
use crate::domain::message::Message;

/// A result is "the same" when the same agent sent it for the same input (its causation):
/// a replayed executor result is a duplicate, one executor's results for different inputs
/// are not. Bodies without an `agent_id` are keyed by message id.
fn dedupe_key(message: &Message) -> String {
    match (
        message.body.get("agent_id").and_then(Value::as_str),
        &message.causation_id,
    ) {
        (Some(agent), Some(cause)) => format!("agent:{agent}/{cause}"),
        (Some(agent), None) => format!("agent:{agent}/{}", message.message_id),
        (None, _) => format!("message:{}", message.message_id),
    }
}

fn is_duplicate(state: &Value, key: &str) -> bool {
    state
        .get("seen")
        .and_then(Value::as_object)
        .is_some_and(|seen| seen.contains_key(key))
}

fn is_due(config: &Map<String, Value>, count: u64) -> bool {
    config_bool(config, "complete_on_message", false)
        || config_positive(config, "complete_after").is_some_and(|n| count >= n)
}

fn count(state: &Value) -> u64 {
    state.get("count").and_then(Value::as_u64).unwrap_or(0)
}

fn completed(state: &Value) -> bool {
    state
        .get("completed")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

pub fn effects(config: &Map<String, Value>, state: &Value, message: &Message) -> StepOutcome {
    let key = dedupe_key(message);
    if is_duplicate(state, &key) {
        return StepOutcome {
            events: vec![("aggregator_duplicate_ignored".into(), json!({ "key": key }))],
            ..Default::default()
        };
    }
    let count = count(state) + 1;
    // Receiving is the step itself (the fold re-derives the count); only what is unusual
    // (a duplicate, a late message, the completion) is noted.
    let mut outcome = StepOutcome::default();
    if completed(state) {
        outcome
            .events
            .push(("aggregator_late_message".into(), json!({ "count": count })));
        return outcome;
    }
    if !is_due(config, count) {
        return outcome;
    }
    // The only place the collection is copied: once, into the result.
    let mut messages: Vec<Value> = state
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    messages.push(message.body.clone());
    let result = json!({ "messages": messages, "count": count, "last_message": message.body });
    let output_type = config_str(config, "output_message_type");
    if let Some(t) = output_type {
        outcome.emits.push(Emit::result(
            t,
            result.clone(),
            "com.mirrorneuron.aggregator.result",
        ));
    }
    // Completing the job is the default only for a sink (no output type to pass on).
    if config_bool(config, "complete_job", output_type.is_none()) {
        outcome.complete = Some(result);
    }
    outcome
        .events
        .push(("aggregator_completed".into(), json!({ "count": count })));
    outcome
}

pub fn apply(config: &Map<String, Value>, state: &mut Value, message: &Message) {
    let key = dedupe_key(message);
    if is_duplicate(state, &key) {
        return;
    }
    let count = count(state) + 1;
    let due = is_due(config, count);
    let map = object(state);
    map.entry("seen")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(seen) = map.get_mut("seen").and_then(Value::as_object_mut) {
        seen.insert(key, Value::Bool(true));
    }
    map.entry("messages")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(messages) = map.get_mut("messages").and_then(Value::as_array_mut) {
        messages.push(message.body.clone());
    }
    map.insert("count".into(), Value::from(count));
    let was_completed = map
        .get("completed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    map.insert("completed".into(), Value::Bool(was_completed || due));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, body: Value) -> Message {
        caused(id, "in-1", body)
    }

    /// A message answering input `cause` (its causation id).
    fn caused(id: &str, cause: &str, body: Value) -> Message {
        Message {
            message_id: id.into(),
            job_id: "j".into(),
            from: "x".into(),
            to: "agg".into(),
            message_type: "result".into(),
            class: "event".into(),
            correlation_id: None,
            causation_id: Some(cause.into()),
            content_type: "application/json".into(),
            content_encoding: "identity".into(),
            headers: Map::new(),
            body,
            artifacts: vec![],
            stream: None,
            timestamp_ms: 0,
        }
    }

    fn cfg(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// Runs effects then apply, as the owner and replay do.
    fn step(c: &Map<String, Value>, state: &mut Value, m: &Message) -> StepOutcome {
        let out = effects(c, state, m);
        apply(c, state, m);
        out
    }

    #[test]
    fn completes_after_n_distinct_results_once() {
        let c = cfg(json!({"complete_after": 2}));
        let mut s = Value::Null;
        assert!(
            step(&c, &mut s, &msg("m1", json!({"agent_id": "w1", "v": 1})))
                .complete
                .is_none()
        );
        let dup = step(&c, &mut s, &msg("m2", json!({"agent_id": "w1", "v": 1})));
        assert!(dup.complete.is_none() && dup.events[0].0 == "aggregator_duplicate_ignored");
        let done = step(
            &c,
            &mut s,
            &caused("m3", "in-2", json!({"agent_id": "w2", "v": 2})),
        );
        let result = done.complete.expect("completes at 2");
        assert_eq!(result["count"], 2);
        assert_eq!(result["messages"].as_array().unwrap().len(), 2);
        assert_eq!(result["last_message"], json!({"agent_id": "w2", "v": 2}));
        let late = step(&c, &mut s, &caused("m4", "in-3", json!({"agent_id": "w3"})));
        assert!(late.complete.is_none(), "latched: no second completion");
        assert_eq!(s["count"], 3);
    }

    #[test]
    fn one_agents_results_for_different_inputs_all_count() {
        let c = cfg(json!({"complete_after": 2}));
        let mut s = Value::Null;
        step(&c, &mut s, &caused("m1", "in-1", json!({"agent_id": "w1"})));
        let done = step(&c, &mut s, &caused("m2", "in-2", json!({"agent_id": "w1"})));
        assert!(done.complete.is_some());
    }

    #[test]
    fn output_type_emits_instead_of_completing_by_default() {
        let c = cfg(json!({"complete_on_message": true, "output_message_type": "summary"}));
        let out = step(&c, &mut Value::Null, &msg("m1", json!({"x": 1})));
        assert!(out.complete.is_none());
        assert_eq!(out.emits.len(), 1);
        assert_eq!(out.emits[0].message_type, "summary");
        assert_eq!(
            out.emits[0].headers["schema_ref"],
            "com.mirrorneuron.aggregator.result"
        );
    }

    #[test]
    fn bodies_without_agent_id_dedupe_by_message_id() {
        let c = cfg(json!({"complete_after": 3}));
        let mut s = Value::Null;
        step(&c, &mut s, &msg("m1", json!(1)));
        step(&c, &mut s, &msg("m1", json!(1)));
        assert_eq!(s["messages"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn references_stay_references_in_the_result() {
        let c = cfg(json!({"complete_after": 60}));
        let mut s = Value::Null;
        let mut done = None;
        for i in 0..60 {
            let stdout = crate::domain::output::blob_ref(
                &crate::domain::output::BlobPointer {
                    sha256: format!("{i:064x}"),
                    size: 1024 * 1024,
                },
                &vec![b'x'; 1024 * 1024],
            );
            let body = json!({"agent_id": format!("w{i}"), "sandbox": {"stdout": stdout}});
            done = step(
                &c,
                &mut s,
                &caused(&format!("m{i}"), &format!("in-{i}"), body),
            )
            .complete;
        }
        let result = done.expect("completes at 60");
        let refs = crate::domain::output::blob_refs(&result["messages"]);
        assert_eq!(refs.len(), 60);
        assert!(refs.iter().all(|r| r.size == 1024 * 1024));
        let size = result.to_string().len();
        assert!(
            size < 150 * 1024,
            "60 x 1 MiB outputs make a {size}-byte result"
        );
    }
}
