//! What an agent does with one message, as pure functions of (config, state, message).
//!
//! Built-in agents (router, aggregator, sensor) are split in two:
//! - [`effects`] reads the state and says what the step emits, records and completes;
//! - [`apply`] advances the state in place.
//!
//! History records only the fact that a built-in agent handled a message; replay re-applies
//! [`apply`] to rebuild the state. So an aggregator that collects 10,000 results writes 10,000
//! small events, not 10,000 ever-growing snapshots, and no step clones the collection.
//!
//! Executors and process modules do their work outside (a process); the runtime turns their
//! result into the same [`StepOutcome`], carrying their (small) state explicitly.

mod aggregator;
mod outcome;
mod router;
mod sensor;

pub use outcome::{Emit, StepOutcome};

use serde_json::{Map, Value};

use crate::domain::manifest::AgentType;
use crate::domain::message::Message;

/// The agents whose behaviour is decided here, without a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Router,
    Aggregator,
    Sensor,
}

impl Builtin {
    /// The built-in for an agent type; `None` for executors and modules.
    pub fn of(agent_type: AgentType) -> Option<Builtin> {
        match agent_type {
            AgentType::Router => Some(Builtin::Router),
            AgentType::Aggregator => Some(Builtin::Aggregator),
            AgentType::Sensor => Some(Builtin::Sensor),
            AgentType::Executor | AgentType::Module => None,
        }
    }
}

/// What handling `message` emits, records and completes. `state` is only read.
pub fn effects(
    kind: Builtin,
    config: &Map<String, Value>,
    state: &Value,
    message: &Message,
) -> StepOutcome {
    match kind {
        Builtin::Router => router::effects(config, message),
        Builtin::Aggregator => aggregator::effects(config, state, message),
        Builtin::Sensor => sensor::effects(config, state, message),
    }
}

/// Advances the agent's state for `message`, in place.
pub fn apply(kind: Builtin, config: &Map<String, Value>, state: &mut Value, message: &Message) {
    match kind {
        Builtin::Router => router::apply(state),
        Builtin::Aggregator => aggregator::apply(config, state, message),
        Builtin::Sensor => sensor::apply(state),
    }
}

/// Reads a config key as a non-empty string.
pub(crate) fn config_str<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Reads a config key as a positive integer (numbers or numeric strings).
pub(crate) fn config_positive(config: &Map<String, Value>, key: &str) -> Option<u64> {
    match config.get(key)? {
        Value::Number(n) => n.as_u64().filter(|v| *v > 0),
        Value::String(s) => s.trim().parse().ok().filter(|v: &u64| *v > 0),
        _ => None,
    }
}

/// Reads a config key as a boolean (absent -> `default`).
pub(crate) fn config_bool(config: &Map<String, Value>, key: &str, default: bool) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// Makes `state` an object (a fresh agent's state is null) and returns it.
pub(crate) fn object(state: &mut Value) -> &mut Map<String, Value> {
    if !state.is_object() {
        *state = Value::Object(Map::new());
    }
    match state {
        Value::Object(map) => map,
        _ => unreachable!("state was just made an object"),
    }
}

/// Adds one to a counter field.
pub(crate) fn bump(state: &mut Value, key: &str) -> u64 {
    let map = object(state);
    let n = map.get(key).and_then(Value::as_u64).unwrap_or(0) + 1;
    map.insert(key.to_string(), Value::from(n));
    n
}
