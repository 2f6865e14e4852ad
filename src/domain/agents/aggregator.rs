//! Aggregator: collects message bodies and completes once, on the first message
//! (`complete_on_message`) or after `complete_after` distinct results.
//!
//! Two fixes over the original runtime: the completion is latched (later messages are kept
//! but never complete again), and duplicates are recognised by the sending agent's id when the
//! body has one, else by the incoming message id, so a replayed result is never counted twice.

use serde_json::{Map, Value, json};

use super::{Emit, StepOutcome, config_bool, config_positive, config_str};
use crate::domain::message::Message;

fn dedupe_key(message: &Message) -> String {
    match message.body.get("agent_id").and_then(Value::as_str) {
        Some(agent) => format!("agent:{agent}"),
        None => format!("message:{}", message.message_id),
    }
}

pub fn handle(config: &Map<String, Value>, state: &Value, message: &Message) -> StepOutcome {
    let mut messages: Vec<Value> = state.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut seen: Vec<Value> = state.get("seen").and_then(Value::as_array).cloned().unwrap_or_default();
    let completed = state.get("completed").and_then(Value::as_bool).unwrap_or(false);
    let key = dedupe_key(message);
    if seen.iter().any(|s| s.as_str() == Some(key.as_str())) {
        return StepOutcome {
            state: state.clone(),
            events: vec![("aggregator_duplicate_ignored".into(), json!({ "key": key }))],
            ..Default::default()
        };
    }
    seen.push(Value::String(key));
    messages.push(message.body.clone());
    let count = messages.len() as u64;
    let mut events = vec![("aggregator_received".into(), json!({ "count": count }))];
    let due = config_bool(config, "complete_on_message", false)
        || config_positive(config, "complete_after").is_some_and(|n| count >= n);
    let mut outcome = StepOutcome::default();
    if due && !completed {
        let result = json!({ "messages": messages, "count": count, "last_message": message.body });
        let output_type = config_str(config, "output_message_type");
        if let Some(t) = output_type {
            let mut emit = Emit::routed(t, result.clone());
            emit.class = Some("event".into());
            emit.headers.insert("schema_ref".into(), json!("com.mirrorneuron.aggregator.result"));
            emit.headers.insert("schema_version".into(), json!("1.0.0"));
            outcome.emits.push(emit);
        }
        // Completing the job is the default only for a sink (no output type to pass on).
        if config_bool(config, "complete_job", output_type.is_none()) {
            outcome.complete = Some(result);
        }
        events.push(("aggregator_completed".into(), json!({ "count": count })));
    } else if completed {
        events.push(("aggregator_late_message".into(), json!({ "count": count })));
    }
    outcome.state = json!({ "messages": messages, "seen": seen, "completed": completed || due });
    outcome.events = events;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, body: Value) -> Message {
        Message {
            message_id: id.into(),
            job_id: "j".into(),
            from: "x".into(),
            to: "agg".into(),
            message_type: "result".into(),
            class: "event".into(),
            correlation_id: None,
            causation_id: None,
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

    #[test]
    fn completes_after_n_distinct_results_once() {
        let c = cfg(json!({"complete_after": 2}));
        let s1 = handle(&c, &Value::Null, &msg("m1", json!({"agent_id": "w1", "v": 1})));
        assert!(s1.complete.is_none());
        let dup = handle(&c, &s1.state, &msg("m2", json!({"agent_id": "w1", "v": 1})));
        assert!(dup.complete.is_none() && dup.events[0].0 == "aggregator_duplicate_ignored");
        let s2 = handle(&c, &dup.state, &msg("m3", json!({"agent_id": "w2", "v": 2})));
        let result = s2.complete.expect("completes at 2");
        assert_eq!(result["count"], 2);
        assert_eq!(result["last_message"], json!({"agent_id": "w2", "v": 2}));
        let late = handle(&c, &s2.state, &msg("m4", json!({"agent_id": "w3"})));
        assert!(late.complete.is_none(), "latched: no second completion");
    }

    #[test]
    fn output_type_emits_instead_of_completing_by_default() {
        let c = cfg(json!({"complete_on_message": true, "output_message_type": "summary"}));
        let out = handle(&c, &Value::Null, &msg("m1", json!({"x": 1})));
        assert!(out.complete.is_none());
        assert_eq!(out.emits.len(), 1);
        assert_eq!(out.emits[0].message_type, "summary");
        assert_eq!(out.emits[0].headers["schema_ref"], "com.mirrorneuron.aggregator.result");
    }

    #[test]
    fn bodies_without_agent_id_dedupe_by_message_id() {
        let c = cfg(json!({"complete_after": 3}));
        let s = handle(&c, &Value::Null, &msg("m1", json!(1)));
        let again = handle(&c, &s.state, &msg("m1", json!(1)));
        assert_eq!(again.state["messages"].as_array().unwrap().len(), 1);
    }
}
