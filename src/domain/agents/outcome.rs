//! The result of one agent step: new local state, messages to emit, events, completion.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::artifact::ArtifactRef;

/// A message an agent wants sent. Without `to` it is routed along the agent's edges by
/// `message_type`; with `to` it goes straight to that agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emit {
    pub to: Option<String>,
    pub message_type: String,
    pub body: Value,
    /// Overrides the class inherited from the incoming message.
    pub class: Option<String>,
    /// Merged over the headers inherited from the incoming message.
    #[serde(default)]
    pub headers: Map<String, Value>,
    pub content_type: Option<String>,
    /// The files the message carries by reference; `None` inherits the incoming message's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<ArtifactRef>>,
}

impl Emit {
    /// A routed `event`-class emit of a result, tagged with its schema (`schema_ref`).
    pub fn result(message_type: impl Into<String>, body: Value, schema_ref: &str) -> Emit {
        let mut emit = Emit::routed(message_type, body);
        emit.class = Some("event".into());
        emit.headers
            .insert("schema_ref".into(), Value::from(schema_ref));
        emit.headers
            .insert("schema_version".into(), Value::from("1.0.0"));
        emit
    }

    /// A routed emit of `message_type` with `body`.
    pub fn routed(message_type: impl Into<String>, body: Value) -> Emit {
        Emit {
            to: None,
            message_type: message_type.into(),
            body,
            class: None,
            headers: Map::new(),
            content_type: None,
            artifacts: None,
        }
    }
}

/// Everything one step decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// The agent's local state after the step, for agents that carry it explicitly
    /// (executors, modules). `None` for built-ins: replay derives it with `agents::apply`.
    pub state: Option<Value>,
    pub emits: Vec<Emit>,
    /// Agent events `(name, payload)`, e.g. `aggregator_completed`.
    pub events: Vec<(String, Value)>,
    /// Complete the job with this output.
    pub complete: Option<Value>,
}
