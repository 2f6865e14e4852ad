//! Facts about a node, stored on `{ns}:node:{name}:events` with gapless sequence numbers.

use serde::{Deserialize, Serialize};

use super::inventory::Inventory;

/// The facts of a node's life, in the past tense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A runtime process (`incarnation`) started serving under this name, or came back after
    /// having been marked lost.
    NodeJoined {
        incarnation: String,
        inventory: Inventory,
    },
    /// The process shut down cleanly and handed its jobs back.
    NodeLeft { incarnation: String, reason: String },
    /// The leader saw the node's liveness lease expire.
    NodeLost { incarnation: String, reason: String },
    /// The node won the leader lease at `epoch`.
    LeadershipAcquired { epoch: u64 },
    /// An operator asked for the node to be emptied; it takes no new work from here on, and
    /// after `deadline_at_ms` its remaining work is moved away.
    DrainStarted {
        reason: String,
        started_at_ms: i64,
        deadline_at_ms: i64,
        deadline_ms: u64,
        ignore_system_jobs: bool,
    },
    /// Nothing runs on the node any more; it stays out of scheduling until undrained.
    DrainCompleted,
    /// The drain was called off (before or after it completed).
    DrainCancelled { reason: String, mark_eligible: bool },
    /// Maintenance mode switched on or off.
    MaintenanceChanged {
        enabled: bool,
        reason: Option<String>,
    },
}

impl NodeEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            NodeEvent::NodeJoined { .. } => "node_joined",
            NodeEvent::NodeLeft { .. } => "node_left",
            NodeEvent::NodeLost { .. } => "node_lost",
            NodeEvent::LeadershipAcquired { .. } => "leadership_acquired",
            NodeEvent::DrainStarted { .. } => "node_drain_started",
            NodeEvent::DrainCompleted => "node_drain_completed",
            NodeEvent::DrainCancelled { .. } => "node_drain_cancelled",
            NodeEvent::MaintenanceChanged { .. } => "node_maintenance_changed",
        }
    }
}

/// A stored node event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEnvelope {
    pub node: String,
    /// Position in the node's history, from 1.
    pub seq: u64,
    pub at_ms: i64,
    pub event: NodeEvent,
}

pub fn encode_node_event(env: &NodeEnvelope) -> Vec<u8> {
    // Named fields, like job events: an added optional field stays readable.
    rmp_serde::to_vec_named(env).unwrap_or_default()
}

pub fn decode_node_event(bytes: &[u8]) -> Result<NodeEnvelope, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}
