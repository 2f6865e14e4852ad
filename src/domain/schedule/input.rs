//! What a scheduled run starts with: the bundle's own initial inputs, each carrying a
//! `schedule` object (which schedule, which dispatch, why, its payload) and, for a trigger,
//! the `event` that fired it (type, id, source and payload). An executor reads them from
//! its first message's body.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::event::Dispatch;
use crate::domain::manifest::ENTRYPOINTS_KEY;
use crate::domain::view::iso_ms;

/// The fields added to each initial input of a run.
pub fn dispatch_fields(schedule_id: &str, schedule_name: &str, d: &Dispatch) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(
        "schedule".into(),
        json!({
            "schedule_id": schedule_id,
            "schedule_name": schedule_name,
            "dispatch_id": d.dispatch_id,
            "reason": d.reason,
            "scheduled_for": d.scheduled_for_ms.and_then(iso_ms),
            "scheduled_for_ms": d.scheduled_for_ms,
            "payload": d.payload,
        }),
    );
    if let Some(e) = &d.event {
        fields.insert(
            "event".into(),
            json!({
                "event_id": e.event_id,
                "event_type": e.event_type,
                "source": e.source,
                "payload": e.payload,
                "created_at": iso_ms(e.created_at_ms),
            }),
        );
    }
    fields
}

/// Adds `fields` to every initial input. Inputs whose body sits under `body` or `payload`
/// get the fields there (that is what the agent receives); a non-object input is wrapped
/// as `{"input": ...}`. Entrypoints with no inputs of their own get one carrying the fields.
pub fn attach(
    initial_inputs: &mut BTreeMap<String, Vec<Value>>,
    entrypoints: &[String],
    fields: &Map<String, Value>,
) {
    for inputs in initial_inputs.values_mut() {
        for input in inputs.iter_mut() {
            add_to(input, fields);
        }
    }
    let shared = initial_inputs.contains_key(ENTRYPOINTS_KEY);
    let uncovered = entrypoints.iter().any(|e| !initial_inputs.contains_key(e));
    if uncovered && !shared {
        initial_inputs.insert(
            ENTRYPOINTS_KEY.to_string(),
            vec![Value::Object(fields.clone())],
        );
    }
}

fn add_to(input: &mut Value, fields: &Map<String, Value>) {
    let target = match input {
        Value::Object(o) => {
            let inner = ["body", "payload"].into_iter().find(|k| o.contains_key(*k));
            match inner {
                Some(k) => match o.get_mut(k) {
                    Some(Value::Object(inner)) => inner,
                    Some(other) => {
                        let wrapped = json!({ "input": other.take() });
                        *other = wrapped;
                        match other {
                            Value::Object(inner) => inner,
                            _ => return,
                        }
                    }
                    None => return,
                },
                None => o,
            }
        }
        other => {
            *other = json!({ "input": other.take() });
            match other {
                Value::Object(o) => o,
                _ => return,
            }
        }
    };
    for (k, v) in fields {
        target.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Map<String, Value> {
        let mut f = Map::new();
        f.insert("schedule".into(), json!({"schedule_id": "s"}));
        f
    }

    #[test]
    fn every_input_carries_the_fields_where_the_agent_will_see_them() {
        let mut inputs = BTreeMap::new();
        inputs.insert(
            "a".to_string(),
            vec![
                json!({"x": 1}),
                json!({"body": {"y": 2}}),
                json!({"payload": 3}),
                json!("raw"),
            ],
        );
        attach(&mut inputs, &["a".to_string()], &fields());
        assert_eq!(
            inputs["a"],
            vec![
                json!({"x": 1, "schedule": {"schedule_id": "s"}}),
                json!({"body": {"y": 2, "schedule": {"schedule_id": "s"}}}),
                json!({"payload": {"input": 3, "schedule": {"schedule_id": "s"}}}),
                json!({"input": "raw", "schedule": {"schedule_id": "s"}}),
            ]
        );
        assert!(!inputs.contains_key(ENTRYPOINTS_KEY));
    }

    #[test]
    fn entrypoints_without_inputs_get_one() {
        let mut inputs = BTreeMap::new();
        attach(&mut inputs, &["a".to_string(), "b".to_string()], &fields());
        assert_eq!(
            inputs[ENTRYPOINTS_KEY],
            vec![json!({"schedule": {"schedule_id": "s"}})]
        );
    }
}
