//! One edge: aliases resolved, endpoints checked against the node ids, condition parsed.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::{Errors, join, kind};
use super::fields::{aliased, opt_str};
use super::model::EdgeSpec;
use crate::domain::routing::{Condition, RoutingMode};

/// Keys read into [`EdgeSpec`]; every other key is kept in `extensions`.
const KNOWN_KEYS: [&str; 10] = [
    "edge_id",
    "id",
    "from_node",
    "from",
    "to_node",
    "to",
    "message_type",
    "event",
    "routing_mode",
    "conditions",
];

/// Parses the edge at `path`; `node_ids` are every node id the manifest declares.
pub(crate) fn parse(
    value: &Value,
    path: &str,
    node_ids: &HashSet<&str>,
    errs: &mut Errors,
) -> Option<EdgeSpec> {
    let Value::Object(map) = value else {
        errs.push(path, format!("edge must be an object, got {}", kind(value)));
        return None;
    };
    let before = errs.len();
    let (id_key, id_value) = aliased(map, &["edge_id", "id"]).unwrap_or(("edge_id", &Value::Null));
    let edge_id = opt_str(Some(id_value), &join(path, id_key), errs).map(str::to_string);
    let label = edge_id.clone().unwrap_or_else(|| "unknown".to_string());
    let from_node = endpoint(map, ["from_node", "from"], path, &label, node_ids, errs);
    let to_node = endpoint(map, ["to_node", "to"], path, &label, node_ids, errs);
    let message_type = message_type(map, path, &label, errs);
    let routing_mode = routing_mode(map, path, &label, errs);
    let conditions = match Condition::parse(map.get("conditions").unwrap_or(&Value::Null)) {
        Ok(c) => Some(c),
        Err(reason) => {
            errs.push(
                join(path, "conditions"),
                format!("edge {label} has invalid conditions: {reason}"),
            );
            None
        }
    };
    if errs.len() > before {
        return None;
    }
    Some(EdgeSpec {
        edge_id,
        from_node: from_node?,
        to_node: to_node?,
        message_type: message_type?,
        routing_mode: routing_mode?,
        conditions: conditions?,
        extensions: map
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

/// `from_node`/`to_node` (aliases `from`/`to`): required, and must name a declared node.
fn endpoint(
    map: &Map<String, Value>,
    keys: [&'static str; 2],
    path: &str,
    label: &str,
    node_ids: &HashSet<&str>,
    errs: &mut Errors,
) -> Option<String> {
    let canonical = keys[0];
    let (key, value) = aliased(map, &keys).unwrap_or((canonical, &Value::Null));
    let field = join(path, key);
    match value {
        Value::String(s) if node_ids.contains(s.as_str()) => Some(s.clone()),
        Value::String(s) if !s.is_empty() => {
            errs.push(
                field,
                format!("edge {label} references missing {canonical} {s}"),
            );
            None
        }
        Value::Null | Value::String(_) => {
            errs.push(field, format!("edge {label} must define {canonical}"));
            None
        }
        other => {
            errs.push(
                field,
                format!("{canonical} must be a string, got {}", kind(other)),
            );
            None
        }
    }
}

fn message_type(
    map: &Map<String, Value>,
    path: &str,
    label: &str,
    errs: &mut Errors,
) -> Option<String> {
    let (key, value) =
        aliased(map, &["message_type", "event"]).unwrap_or(("message_type", &Value::Null));
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => {
            errs.push(
                join(path, key),
                format!("edge {label} must define message_type"),
            );
            None
        }
    }
}

fn routing_mode(
    map: &Map<String, Value>,
    path: &str,
    label: &str,
    errs: &mut Errors,
) -> Option<RoutingMode> {
    let field = join(path, "routing_mode");
    let Some(name) = opt_str(map.get("routing_mode"), &field, errs) else {
        return map
            .get("routing_mode")
            .is_none_or(Value::is_null)
            .then_some(RoutingMode::Broadcast);
    };
    let mode = RoutingMode::parse(name);
    if mode.is_none() {
        errs.push(
            field,
            format!("edge {label} has unsupported routing_mode {name:?}; expected broadcast, first_match or all_match"),
        );
    }
    mode
}
