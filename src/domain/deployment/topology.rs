//! Comparing two manifests: is the graph the same shape, and which agents changed.
//! Order-insensitive on purpose: reordering a manifest's lists is not a change.

use serde_json::Value;

use crate::domain::manifest::{Manifest, NodeSpec};

/// Same node ids, same (from, to, message_type, routing_mode) edges, same entrypoints.
/// Anything else cannot be done by replacing agents in place.
pub fn same_topology(a: &Manifest, b: &Manifest) -> bool {
    node_ids(a) == node_ids(b)
        && edges(a) == edges(b)
        && sorted(&a.entrypoints) == sorted(&b.entrypoints)
}

fn node_ids(m: &Manifest) -> Vec<&str> {
    let mut ids: Vec<&str> = m.nodes.iter().map(|n| n.node_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

fn edges(m: &Manifest) -> Vec<(&str, &str, &str, &'static str)> {
    let mut edges: Vec<_> = m
        .edges
        .iter()
        .map(|e| {
            let mode = e.routing_mode.as_str();
            (
                e.from_node.as_str(),
                e.to_node.as_str(),
                e.message_type.as_str(),
                mode,
            )
        })
        .collect();
    edges.sort_unstable();
    edges
}

fn sorted(ids: &[String]) -> Vec<&str> {
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.sort_unstable();
    ids
}

/// Ids of `target`'s nodes whose runtime-relevant fields differ from `source`'s (or that
/// `source` lacks), in `target`'s order so batches follow the author's order.
pub fn changed_nodes(source: &Manifest, target: &Manifest) -> Vec<String> {
    target
        .nodes
        .iter()
        .filter(|t| source.node(&t.node_id).is_none_or(|s| node_differs(s, t)))
        .map(|t| t.node_id.clone())
        .collect()
}

/// The fields the original compared (agent type, type, role, config, resources,
/// constraints, services): a change anywhere else (display name, ...) needs no restart.
fn node_differs(a: &NodeSpec, b: &NodeSpec) -> bool {
    let ext = |n: &NodeSpec, key: &str| n.extensions.get(key).cloned().unwrap_or(Value::Null);
    a.agent_type != b.agent_type
        || a.template != b.template
        || a.role != b.role
        || a.config != b.config
        || a.resources != b.resources
        || a.policies != b.policies
        || a.services != b.services
        || a.requires_services != b.requires_services
        || ["constraints", "services"]
            .iter()
            .any(|k| ext(a, k) != ext(b, k))
}
