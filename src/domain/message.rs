//! The message envelope agents exchange (`mn-msg/1`), reduced to what routing and agents use.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::artifact::ArtifactRef;

/// Spec tag carried by every message.
pub const SPEC_VERSION: &str = "mn-msg/1";

/// One message between agents (or from the runtime/outside into an agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub message_id: String,
    pub job_id: String,
    /// Sender: an agent id, `runtime` for seeds, `external` for operator input.
    pub from: String,
    /// Receiving agent id.
    pub to: String,
    /// The message type edges are matched on.
    #[serde(rename = "type")]
    pub message_type: String,
    /// `event`, `command` or `control`.
    pub class: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub content_type: String,
    pub content_encoding: String,
    #[serde(default)]
    pub headers: Map<String, Value>,
    pub body: Value,
    /// Files handed on by reference (parsed and checked when read: see [`ArtifactRef`]).
    #[serde(default)]
    pub artifacts: Vec<ArtifactRef>,
    #[serde(default)]
    pub stream: Option<Value>,
    pub timestamp_ms: i64,
}

impl Message {
    /// The short form stored in `agent_message_received`-style events and views.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "message_id": self.message_id,
            "from": self.from,
            "to": self.to,
            "type": self.message_type,
            "class": self.class,
            "content_type": self.content_type,
            "content_encoding": self.content_encoding,
        })
    }

    /// The full `mn-msg/1` JSON shape handed to executor processes.
    pub fn to_wire_json(&self) -> Value {
        serde_json::json!({
            "envelope": {
                "spec_version": SPEC_VERSION,
                "message_id": self.message_id,
                "job_id": self.job_id,
                "from": self.from,
                "to": self.to,
                "type": self.message_type,
                "class": self.class,
                "timestamp": chrono::DateTime::from_timestamp_millis(self.timestamp_ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                "correlation_id": self.correlation_id,
                "causation_id": self.causation_id,
                "content_type": self.content_type,
                "content_encoding": self.content_encoding,
            },
            "headers": self.headers,
            "body": self.body,
            "artifacts": self.artifacts,
            "stream": self.stream,
        })
    }
}
