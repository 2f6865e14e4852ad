//! Manifest tests: table-driven validation cases (one per rule, exact path and message) and
//! normalisation of the accepted layouts and aliases.

mod normalise;
mod validation;
mod validation_node;

use serde_json::{Value, json};

use super::{Manifest, parse_manifest};

pub(super) type Mutation = fn(&mut Value);

/// Adds node `n3` (index 2) with the given body merged over `{"node_id": "n3"}`. An executor
/// gets a command unless its body has one, so each case sees only the error it is about.
pub(super) fn add_node(doc: &mut Value, body: Value) {
    let mut node = json!({"node_id": "n3"});
    if let (Some(n), Value::Object(extra)) = (node.as_object_mut(), body) {
        n.extend(extra);
    }
    with_command(&mut node);
    set(doc, "/nodes/-", node);
}

/// Gives an executor node `config.command` when it has none.
pub(super) fn with_command(node: &mut Value) {
    if node["agent_type"] != "executor" {
        return;
    }
    let Some(n) = node.as_object_mut() else {
        return;
    };
    let config = n.entry("config").or_insert_with(|| json!({}));
    if let Some(c) = config.as_object_mut() {
        c.entry("command").or_insert_with(|| json!("true"));
    }
}

pub(super) fn add_edge(doc: &mut Value, edge: Value) {
    set(doc, "/edges/-", edge);
}

pub(super) fn check(cases: &[(&str, Mutation, &[&str])]) {
    for (name, mutate, expected) in cases {
        let mut doc = base();
        mutate(&mut doc);
        let got = errors(&doc);
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, expected, "case {name}");
    }
}

/// A small valid flat manifest: router `a` (root) -> aggregator `b`.
fn base() -> Value {
    json!({
        "manifest_version": "1.0",
        "graph_id": "g",
        "nodes": [
            {"node_id": "a", "agent_type": "router", "role": "root"},
            {"node_id": "b", "agent_type": "aggregator", "type": "reduce"}
        ],
        "edges": [{"edge_id": "e1", "from_node": "a", "to_node": "b", "message_type": "m"}]
    })
}

/// Sets the value at a JSON pointer, creating the last key (or appending with `-`).
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer
        .rsplit_once('/')
        .expect("test pointers start with /");
    match doc.pointer_mut(parent).expect("test pointer parent exists") {
        Value::Object(map) => {
            map.insert(last.to_string(), value);
        }
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => items[last.parse::<usize>().expect("array index")] = value,
        other => panic!("cannot set {pointer} in {other}"),
    }
}

/// Removes the key at a JSON pointer.
fn remove(doc: &mut Value, pointer: &str) {
    let (parent, last) = pointer
        .rsplit_once('/')
        .expect("test pointers start with /");
    if let Some(Value::Object(map)) = doc.pointer_mut(parent) {
        map.remove(last);
    }
}

fn ok(doc: &Value) -> Manifest {
    match parse_manifest(doc) {
        Ok(m) => m,
        Err(errs) => panic!("expected a valid manifest, got {errs:#?}"),
    }
}

fn errors(doc: &Value) -> Vec<String> {
    match parse_manifest(doc) {
        Ok(_) => Vec::new(),
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}
