//! Warnings about keys the runtime will not read. Never errors: unknown keys are kept as
//! extensions (core-spec 1.2) and real manifests carry plenty of their own. What is worth
//! telling the author is a key that is *almost* a known one (`comand`, `output_mesage_type`):
//! the misspelt setting is silently ignored and its default applies instead.
//!
//! Open objects (top level, nodes, edges, agent `config`) hold free-form keys, so only near
//! misses are reported there. Closed objects (`policies` and its parts, `schedule`,
//! `triggers`, services) have a fixed schema, so every unknown key is reported.

mod keys;

use serde_json::{Map, Value};

use super::error::{Errors, ValidationError, join};
use super::layout;
use super::model::AgentType;
use super::suggest::did_you_mean;

/// Whether a key outside the schema is expected in an object.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Free-form keys are normal; only near misses are reported.
    Open,
    /// Every key is known; any other is reported.
    Closed,
}

/// Every warning for the manifest as written, each with the key's path.
pub fn manifest_warnings(raw: &Value) -> Vec<ValidationError> {
    let mut out = Vec::new();
    let Some(root) = raw.as_object() else {
        return out;
    };
    check(root, keys::TOP_LEVEL, "", Schema::Open, &mut out);
    for (key, belongs) in keys::TOP_LEVEL_MISPLACED {
        if root.contains_key(*key) {
            out.push(ValidationError::new(
                *key,
                format!("{key:?} is not read at the top level; it belongs in {belongs}"),
            ));
        }
    }
    if let Some(graph) = layout::locate(root, &mut Errors::default()) {
        each_object(
            graph.container.get("nodes"),
            graph.layout.nodes_path(),
            |n, p| node(n, &p, &mut out),
        );
        each_object(
            graph.container.get("edges"),
            graph.layout.edges_path(),
            |e, p| check(e, keys::EDGE, &p, Schema::Open, &mut out),
        );
    }
    if let Some(p) = object(root.get("policies")) {
        policies(p, "policies", keys::POLICIES, &mut out);
        if let Some(u) = object(p.get("update")) {
            check(u, keys::UPDATE, "policies.update", Schema::Closed, &mut out);
        }
    }
    if let Some(s) = object(root.get("schedule")) {
        schedule(s, "schedule", &mut out);
    }
    match root.get("triggers") {
        Some(Value::Object(t)) => schedule(t, "triggers", &mut out),
        other => each_object(other, "triggers", |t, p| schedule(t, &p, &mut out)),
    }
    for key in ["services", "required_services", "requiredServices"] {
        match root.get(key) {
            Some(Value::Object(s)) => check(s, keys::SERVICE, key, Schema::Closed, &mut out),
            other => each_object(other, key, |s, p| {
                check(s, keys::SERVICE, &p, Schema::Closed, &mut out)
            }),
        }
    }
    out
}

fn node(map: &Map<String, Value>, path: &str, out: &mut Vec<ValidationError>) {
    check(map, keys::NODE, path, Schema::Open, out);
    let agent = ["agent_type", "agentType"]
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
        .and_then(AgentType::parse);
    if let Some(config) = object(map.get("config")) {
        let known = keys::config(agent);
        check(config, &known, &join(path, "config"), Schema::Open, out);
    }
    if let Some(p) = object(map.get("policies")) {
        policies(p, &join(path, "policies"), keys::NODE_POLICIES, out);
    }
}

/// A `policies` object with its `restart`, `reschedule` and `scheduler` parts.
fn policies(map: &Map<String, Value>, path: &str, known: &[&str], out: &mut Vec<ValidationError>) {
    check(map, known, path, Schema::Closed, out);
    for key in ["restart", "reschedule"] {
        if let Some(p) = object(map.get(key)) {
            check(p, keys::LIFECYCLE, &join(path, key), Schema::Closed, out);
        }
    }
    if let Some(s) = object(map.get("scheduler")) {
        check(
            s,
            keys::SCHEDULER,
            &join(path, "scheduler"),
            Schema::Closed,
            out,
        );
    }
}

fn schedule(map: &Map<String, Value>, path: &str, out: &mut Vec<ValidationError>) {
    let known: Vec<&str> = keys::SCHEDULE
        .iter()
        .chain(keys::TRIGGER)
        .copied()
        .collect();
    check(map, &known, path, Schema::Closed, out);
    if let Some(t) = object(map.get("trigger")) {
        check(
            t,
            keys::TRIGGER,
            &join(path, "trigger"),
            Schema::Closed,
            out,
        );
    }
}

/// Reports the keys of `map` that are not in `known`, as the schema says.
fn check(
    map: &Map<String, Value>,
    known: &[&str],
    path: &str,
    schema: Schema,
    out: &mut Vec<ValidationError>,
) {
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        let message = match did_you_mean(key, known) {
            Some(close) => format!("unknown key {key:?}; did you mean {close:?}?"),
            None if schema == Schema::Closed => format!("unknown key {key:?} is ignored"),
            None => continue,
        };
        out.push(ValidationError::new(join(path, key), message));
    }
}

fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

/// Calls `f` with every object in the list at `path`, and its path (`nodes[3]`).
fn each_object(value: Option<&Value>, path: &str, mut f: impl FnMut(&Map<String, Value>, String)) {
    for (i, item) in value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(map) = item.as_object() {
            f(map, format!("{path}[{i}]"));
        }
    }
}

#[cfg(test)]
mod tests;
