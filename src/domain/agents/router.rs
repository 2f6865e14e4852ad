//! Router: forwards every message, re-typed to `config.emit_type` when set.

use serde_json::{Map, Value};

use super::{Emit, StepOutcome, bump, config_str};
use crate::domain::message::Message;

/// Emits the incoming body as `emit_type` (or the incoming type).
pub fn effects(config: &Map<String, Value>, message: &Message) -> StepOutcome {
    let message_type = config_str(config, "emit_type").unwrap_or(&message.message_type);
    StepOutcome {
        emits: vec![Emit::routed(message_type, message.body.clone())],
        ..Default::default()
    }
}

/// Counts forwarded messages.
pub fn apply(state: &mut Value) {
    bump(state, "forwarded");
}
