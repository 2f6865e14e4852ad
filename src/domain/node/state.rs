//! The folded state of a node and the status derived from it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::inventory::Inventory;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainStatus {
    Draining,
    Complete,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub status: DrainStatus,
    pub reason: String,
    pub started_at_ms: i64,
    pub deadline_at_ms: i64,
    pub deadline_ms: u64,
    pub ignore_system_jobs: bool,
    pub completed_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub enabled: bool,
    pub reason: Option<String>,
    pub updated_at_ms: i64,
}

/// What the scheduler and operators see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Connected and taking work.
    Healthy,
    /// Connected, finishing its work, taking none.
    Draining,
    /// Connected, out of scheduling on purpose (maintenance, or a completed drain).
    Maintenance,
    /// Its liveness lease expired.
    Lost,
    /// Shut down cleanly.
    Left,
    /// Never joined.
    Unknown,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Healthy => "healthy",
            NodeStatus::Draining => "draining",
            NodeStatus::Maintenance => "maintenance",
            NodeStatus::Lost => "lost",
            NodeStatus::Left => "left",
            NodeStatus::Unknown => "unknown",
        }
    }
}

/// A node's state: the fold of its history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    /// Seq of the last event folded in (0: the node never joined).
    pub version: u64,
    pub incarnation: Option<String>,
    pub connected: bool,
    /// Set when the node went away cleanly rather than being lost.
    pub left: bool,
    pub inventory: Option<Inventory>,
    pub joined_at_ms: Option<i64>,
    pub down_at_ms: Option<i64>,
    pub down_reason: Option<String>,
    pub updated_at_ms: i64,
    pub drain: Option<Drain>,
    pub maintenance: Option<Maintenance>,
    /// Last leader epoch this node won.
    pub leader_epoch: Option<u64>,
}

impl NodeState {
    pub fn new(name: &str) -> NodeState {
        NodeState {
            name: name.to_string(),
            ..NodeState::default()
        }
    }

    pub fn status(&self) -> NodeStatus {
        if self.version == 0 {
            return NodeStatus::Unknown;
        }
        if !self.connected {
            return if self.left {
                NodeStatus::Left
            } else {
                NodeStatus::Lost
            };
        }
        if self.maintenance.as_ref().is_some_and(|m| m.enabled) {
            return NodeStatus::Maintenance;
        }
        match self.drain.as_ref().map(|d| d.status) {
            Some(DrainStatus::Draining) => NodeStatus::Draining,
            Some(DrainStatus::Complete) => NodeStatus::Maintenance,
            _ => NodeStatus::Healthy,
        }
    }

    /// Whether new work may be placed here.
    pub fn scheduling_eligible(&self) -> bool {
        self.status() == NodeStatus::Healthy
    }

    /// True while a drain is in progress.
    pub fn draining(&self) -> Option<&Drain> {
        self.drain
            .as_ref()
            .filter(|d| d.status == DrainStatus::Draining)
    }

    /// The JSON view operators and clients read.
    pub fn to_view(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut v {
            map.insert("node".into(), json!(self.name));
            map.insert("status".into(), json!(self.status().as_str()));
            map.insert(
                "scheduling_eligible".into(),
                json!(self.scheduling_eligible()),
            );
        }
        v
    }

    /// Reads a view written by [`NodeState::to_view`].
    pub fn from_view(v: &Value) -> Option<NodeState> {
        serde_json::from_value(v.clone()).ok()
    }
}
