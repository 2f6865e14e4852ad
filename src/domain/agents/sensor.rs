//! Sensor: observes messages, re-emits them as `output_message_type`, and can complete the job
//! after `complete_after` observations when `complete_job` is set.

use serde_json::{Map, Value, json};

use super::{Emit, StepOutcome, bump, config_bool, config_positive, config_str};
use crate::domain::message::Message;

pub fn effects(config: &Map<String, Value>, state: &Value, message: &Message) -> StepOutcome {
    let count = state
        .get("observations")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        + 1;
    let output = config_str(config, "output_message_type").unwrap_or("sensor_ready");
    let after = config_positive(config, "complete_after").unwrap_or(1);
    let complete = (config_bool(config, "complete_job", false) && count >= after)
        .then(|| json!({ "count": count, "last_message": message.body }));
    StepOutcome {
        state: None,
        emits: vec![Emit::routed(output, message.body.clone())],
        events: vec![("sensor_observed".into(), json!({ "count": count }))],
        complete,
    }
}

pub fn apply(state: &mut Value) {
    bump(state, "observations");
}
