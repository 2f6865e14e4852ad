//! Where the graph sits. Three layouts are in use (core-spec 1.2, 13.18): top-level
//! `nodes`/`edges` (v1), `agents.nodes`/`agents.edges` (mn.workflow blueprints, which keep
//! their seeds in `runtime.initial_inputs`) and `flow.nodes`/`flow.edges`. All are accepted
//! and normalised into one shape; naming the graph in two places is an error, not a guess.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::error::{Errors, join, kind};
use super::model::{ENTRYPOINTS_KEY, GraphLayout};

/// The object holding `nodes`, `edges` (and maybe `entrypoints`) for the layout found.
pub(crate) struct Graph<'a> {
    pub layout: GraphLayout,
    pub container: &'a Map<String, Value>,
}

/// Top-level keys read into typed [`Manifest`](super::Manifest) fields.
const CONSUMED: [&str; 10] = [
    "manifest_version",
    "graph_id",
    "job_name",
    "type",
    "nodes",
    "edges",
    "entrypoints",
    "initial_inputs",
    "policies",
    "metadata",
];

/// Finds the graph; reports a missing or doubly-defined one.
pub(crate) fn locate<'a>(root: &'a Map<String, Value>, errs: &mut Errors) -> Option<Graph<'a>> {
    let nested = |key: &str| {
        root.get(key)
            .and_then(Value::as_object)
            .filter(|m| m.contains_key("nodes"))
    };
    let mut found = Vec::new();
    if root.contains_key("nodes") {
        found.push(Graph {
            layout: GraphLayout::Flat,
            container: root,
        });
    }
    if let Some(c) = nested("agents") {
        found.push(Graph {
            layout: GraphLayout::Agents,
            container: c,
        });
    }
    if let Some(c) = nested("flow") {
        found.push(Graph {
            layout: GraphLayout::Flow,
            container: c,
        });
    }
    if found.len() > 1 {
        let places: Vec<&str> = found.iter().map(|g| g.layout.nodes_path()).collect();
        errs.push(
            found[1].layout.nodes_path(),
            format!(
                "the node graph is defined in {}; keep one",
                places.join(" and ")
            ),
        );
    }
    if found.is_empty() {
        let hint = if root.get("kind").and_then(Value::as_str) == Some("WorkflowSource") {
            "; this is a WorkflowSource, which must be compiled into a manifest with nodes and edges first"
        } else {
            ""
        };
        errs.push("nodes", format!("nodes must not be empty: no node graph found (expected nodes, agents.nodes or flow.nodes){hint}"));
    }
    found.into_iter().next()
}

/// Entrypoints: `entrypoints` at the top level or beside the nodes, else every node whose
/// role is `root` or `root_coordinator`. `roots` are those nodes' ids.
pub(crate) fn entrypoints(
    root: &Map<String, Value>,
    graph: &Graph<'_>,
    node_ids: &HashSet<&str>,
    roots: Vec<String>,
    errs: &mut Errors,
) -> Vec<String> {
    let (path, value) = match (root.get("entrypoints"), graph.container.get("entrypoints")) {
        (Some(v), _) => ("entrypoints".to_string(), v),
        (None, Some(v)) => (join(graph.layout.container_path(), "entrypoints"), v),
        (None, None) => ("entrypoints".to_string(), &Value::Null),
    };
    let listed: Vec<(String, &Value)> = match value {
        Value::Null => Vec::new(),
        Value::String(_) => vec![(path.clone(), value)],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect(),
        other => {
            errs.push(
                &path,
                format!(
                    "entrypoints must be a list of node ids, got {}",
                    kind(other)
                ),
            );
            Vec::new()
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (item_path, item) in listed {
        match item.as_str() {
            Some(id) if node_ids.contains(id) => {
                if !out.iter().any(|e| e == id) {
                    out.push(id.to_string());
                }
            }
            Some(id) => errs.push(
                item_path,
                format!("entrypoint {id} does not reference a known node"),
            ),
            None => errs.push(
                item_path,
                format!("entrypoint must be a node id string, got {}", kind(item)),
            ),
        }
    }
    if out.is_empty() {
        out = roots;
    }
    if out.is_empty() && !node_ids.is_empty() {
        errs.push(path, "manifest must define at least one entrypoint or one node with role root/root_coordinator");
    }
    out
}

/// Seeds: `initial_inputs`, else `runtime.initial_inputs`. A single payload becomes a list of
/// one; a bare list is addressed to every entrypoint.
pub(crate) fn initial_inputs(
    root: &Map<String, Value>,
    node_ids: &HashSet<&str>,
    errs: &mut Errors,
) -> BTreeMap<String, Vec<Value>> {
    let runtime_inputs = root.get("runtime").and_then(|r| r.get("initial_inputs"));
    let (path, value) = match (root.get("initial_inputs"), runtime_inputs) {
        (Some(v), _) => ("initial_inputs", v),
        (None, Some(v)) => ("runtime.initial_inputs", v),
        (None, None) => return BTreeMap::new(),
    };
    let as_list = |v: &Value| match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    match value {
        Value::Null => BTreeMap::new(),
        Value::Array(items) => BTreeMap::from([(ENTRYPOINTS_KEY.to_string(), items.clone())]),
        Value::Object(map) => {
            for key in map
                .keys()
                .filter(|k| *k != ENTRYPOINTS_KEY && !node_ids.contains(k.as_str()))
            {
                errs.push(
                    join(path, key),
                    format!("initial input targets unknown node {key}"),
                );
            }
            map.iter().map(|(k, v)| (k.clone(), as_list(v))).collect()
        }
        other => {
            errs.push(
                path,
                format!(
                    "initial_inputs must be an object of node id to payloads, or a list, got {}",
                    kind(other)
                ),
            );
            BTreeMap::new()
        }
    }
}

/// Top-level keys not read into typed fields, minus what was lifted out of `agents`/`flow`/
/// `runtime`, so a round trip neither loses data nor stores the graph twice.
pub(crate) fn extensions(
    root: &Map<String, Value>,
    layout: Option<GraphLayout>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in root.iter().filter(|(k, _)| !CONSUMED.contains(&k.as_str())) {
        let lifted: &[&str] = match (key.as_str(), layout) {
            ("agents", Some(GraphLayout::Agents)) | ("flow", Some(GraphLayout::Flow)) => {
                &["nodes", "edges", "entrypoints"]
            }
            ("runtime", _) if !root.contains_key("initial_inputs") => &["initial_inputs"],
            _ => &[],
        };
        match value {
            Value::Object(map) if !lifted.is_empty() => {
                let rest: Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| !lifted.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !rest.is_empty() {
                    out.insert(key.clone(), Value::Object(rest));
                }
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}
