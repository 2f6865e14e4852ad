//! Edge selection for one emitted message (semantics in the [module docs](super)).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::manifest::{EdgeSpec, Manifest};

/// How a group of candidate edges shares one emission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingMode {
    #[default]
    Broadcast,
    FirstMatch,
    AllMatch,
}

impl RoutingMode {
    pub fn parse(s: &str) -> Option<RoutingMode> {
        match s {
            "broadcast" => Some(RoutingMode::Broadcast),
            "first_match" => Some(RoutingMode::FirstMatch),
            "all_match" => Some(RoutingMode::AllMatch),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoutingMode::Broadcast => "broadcast",
            RoutingMode::FirstMatch => "first_match",
            RoutingMode::AllMatch => "all_match",
        }
    }
}

/// One delivery the caller must make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTarget {
    /// The edge's id, or `from->to` when the manifest gave none.
    pub edge_id: String,
    pub to_node: String,
}

/// The outcome of one candidate edge's condition (recorded as `route_evaluated` events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEvaluation {
    pub edge_id: String,
    pub to_node: String,
    pub routing_mode: RoutingMode,
    pub matched: bool,
}

/// Where one emission goes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDecision {
    pub from_agent: String,
    pub message_type: String,
    /// Deliveries in manifest order; empty means dead-letter.
    pub targets: Vec<RouteTarget>,
    /// Every candidate edge, in manifest order.
    pub evaluations: Vec<RouteEvaluation>,
}

impl RouteDecision {
    /// Why nothing was delivered, for the dead letter; `None` when there are targets.
    pub fn no_match_reason(&self) -> Option<String> {
        if !self.targets.is_empty() {
            return None;
        }
        let (from, ty) = (&self.from_agent, &self.message_type);
        if self.evaluations.is_empty() {
            return Some(format!(
                "no outbound edge from {from:?} carries message type {ty:?}"
            ));
        }
        let ids: Vec<&str> = self
            .evaluations
            .iter()
            .map(|e| e.edge_id.as_str())
            .collect();
        let partial_all_match = self
            .evaluations
            .iter()
            .any(|e| e.routing_mode == RoutingMode::AllMatch && e.matched);
        let why = if partial_all_match {
            "no condition matched, and all_match edges deliver only when every one of them matches"
        } else {
            "no condition matched"
        };
        Some(format!(
            "edges {ids:?} from {from:?} carry message type {ty:?} but {why}"
        ))
    }
}

/// The document conditions are evaluated against.
///
/// `message` is the message being handled (its `body`, `headers`, `type`, `class`, `from`,
/// `to`), `payload` the body being emitted, `state` the emitting agent's state.
pub fn route_context(message: &Value, payload: &Value, state: &Value) -> Value {
    json!({ "message": message, "payload": payload, "state": state })
}

/// Selects the edges an emission of `message_type` by `from_agent` travels along.
pub fn route(
    manifest: &Manifest,
    from_agent: &str,
    message_type: &str,
    ctx: &Value,
) -> RouteDecision {
    let candidates: Vec<(&EdgeSpec, bool)> = manifest
        .outbound(from_agent)
        .filter(|e| e.message_type == message_type || e.message_type == "*")
        .map(|e| (e, e.conditions.matches(ctx)))
        .collect();
    let all_match_ok = candidates
        .iter()
        .filter(|(e, _)| e.routing_mode == RoutingMode::AllMatch)
        .all(|(_, m)| *m);
    let mut first_match_taken = false;
    let mut targets = Vec::new();
    for (edge, matched) in &candidates {
        let deliver = match edge.routing_mode {
            RoutingMode::Broadcast => *matched,
            RoutingMode::FirstMatch if *matched && !first_match_taken => {
                first_match_taken = true;
                true
            }
            RoutingMode::FirstMatch => false,
            RoutingMode::AllMatch => all_match_ok,
        };
        if deliver {
            targets.push(RouteTarget {
                edge_id: edge.label(),
                to_node: edge.to_node.clone(),
            });
        }
    }
    let evaluations = candidates
        .iter()
        .map(|(e, matched)| RouteEvaluation {
            edge_id: e.label(),
            to_node: e.to_node.clone(),
            routing_mode: e.routing_mode,
            matched: *matched,
        })
        .collect();
    RouteDecision {
        from_agent: from_agent.to_string(),
        message_type: message_type.to_string(),
        targets,
        evaluations,
    }
}
