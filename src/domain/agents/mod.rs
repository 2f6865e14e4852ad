//! What an agent does with one message, as pure functions of (config, state, message).
//!
//! Built-in agents (router, aggregator, sensor) are decided here entirely. Executors and
//! process modules do their work outside (a process); the runtime turns their result into the
//! same [`StepOutcome`], so the rest of the pipeline (routing, completion, events) is shared.

mod aggregator;
mod outcome;
mod router;
mod sensor;

pub use aggregator::handle as aggregator;
pub use outcome::{Emit, StepOutcome};
pub use router::handle as router;
pub use sensor::handle as sensor;

use serde_json::{Map, Value};

/// Reads a config key as a non-empty string.
pub(crate) fn config_str<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
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
