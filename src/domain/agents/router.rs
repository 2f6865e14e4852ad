//! Router: forwards every message, re-typed to `config.emit_type` when set.

use serde_json::{Map, Value, json};

use super::{Emit, StepOutcome, config_str};
use crate::domain::message::Message;

/// Emits the incoming body as `emit_type` (or the incoming type), counting forwards.
pub fn handle(config: &Map<String, Value>, state: &Value, message: &Message) -> StepOutcome {
    let forwarded = state.get("forwarded").and_then(Value::as_u64).unwrap_or(0) + 1;
    let message_type = config_str(config, "emit_type").unwrap_or(&message.message_type);
    StepOutcome {
        state: json!({ "forwarded": forwarded }),
        emits: vec![Emit::routed(message_type, message.body.clone())],
        events: vec![],
        complete: None,
    }
}
