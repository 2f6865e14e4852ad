//! Per-node `resources` checks (core-spec 1.6). The values stay JSON (the scheduler normalises
//! units); here we only refuse what the scheduler could not make sense of.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::{Errors, join, kind};
use super::fields::opt_str;

/// Scalar keys that must be numbers (or strings starting with one, like `"512Mi"`).
const SCALARS: [&str; 14] = [
    "cpu_cores",
    "cores",
    "cpu",
    "cpu_millis",
    "cpu_mcores",
    "memory_mb",
    "memory",
    "memory_gb",
    "disk_mb",
    "disk",
    "disk_gb",
    "gpu_count",
    "gpus",
    "gpu",
];
const OPERATORS: [&str; 4] = [">", ">=", "==", "="];
const PROTOCOLS: [&str; 4] = ["tcp", "udp", "http", "grpc"];

/// Validates the node's resources; `path` is where they sit (`nodes[0].resources`).
pub(crate) fn check(resources: &Value, path: &str, node_id: &str, errs: &mut Errors) {
    let Value::Object(map) = resources else {
        errs.push(
            path,
            format!(
                "resources for node {node_id} must be an object, got {}",
                kind(resources)
            ),
        );
        return;
    };
    for key in SCALARS {
        if let Some(v) = map.get(key).filter(|v| !v.is_null()) {
            match leading_number(v) {
                Some(n) if n < 0.0 => {
                    errs.push(join(path, key), format!("{key} must be zero or greater"))
                }
                Some(_) => {}
                None => errs.push(join(path, key), format!("{key} must be a number, got {v}")),
            }
        }
    }
    for_each_item(map, "devices", path, node_id, errs, check_device);
    let mut labels = HashSet::new();
    for_each_item(map, "ports", path, node_id, errs, |d, p, n, e| {
        check_port(d, p, n, &mut labels, e)
    });
    let mut names = HashSet::new();
    for_each_item(map, "volumes", path, node_id, errs, |d, p, n, e| {
        check_volume(d, p, n, &mut names, e)
    });
    match map.get("runtime_driver") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim().is_empty() => errs.push(
            join(path, "runtime_driver"),
            format!("runtime_driver for node {node_id} must not be empty"),
        ),
        Some(Value::String(_)) => {}
        Some(_) => errs.push(
            join(path, "runtime_driver"),
            format!("runtime_driver for node {node_id} must be a string"),
        ),
    }
}

/// A number, or the numeric prefix of a string (`"2.5GB"` is 2.5).
fn leading_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            let end = s
                .char_indices()
                .find(|(i, c)| {
                    !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+')))
                })
                .map_or(s.len(), |(i, _)| i);
            s[..end].parse().ok()
        }
        _ => None,
    }
}

/// Runs `check` on every object of the list `key`, reporting a non-list or non-object entry.
fn for_each_item(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    node_id: &str,
    errs: &mut Errors,
    mut check: impl FnMut(&Map<String, Value>, &str, &str, &mut Errors),
) {
    let list_path = join(path, key);
    let items = match map.get(key) {
        None | Some(Value::Null) => return,
        Some(Value::Array(items)) => items,
        Some(_) => {
            return errs.push(
                list_path,
                format!("resources.{key} for node {node_id} must be a list"),
            );
        }
    };
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{list_path}[{i}]");
        match item {
            Value::Object(obj) => check(obj, &item_path, node_id, errs),
            other => errs.push(item_path, format!("must be an object, got {}", kind(other))),
        }
    }
}

fn check_device(device: &Map<String, Value>, path: &str, _node_id: &str, errs: &mut Errors) {
    if let Some(count) = device.get("count").filter(|v| !v.is_null())
        && count.as_f64().is_none_or(|n| n <= 0.0)
    {
        errs.push(join(path, "count"), "count must be greater than zero");
    }
    if let Some(min) = device.get("min_memory_mb").filter(|v| !v.is_null())
        && min.as_f64().is_none_or(|n| n < 0.0)
    {
        errs.push(
            join(path, "min_memory_mb"),
            "min_memory_mb must be zero or greater",
        );
    }
    for key in ["memory_operator", "api_version_operator"] {
        let field = join(path, key);
        if let Some(op) =
            opt_str(device.get(key), &field, errs).filter(|op| !OPERATORS.contains(op))
        {
            errs.push(field, format!("{key} must be >, >=, or == (got {op:?})"));
        }
    }
    for key in ["ids", "capabilities"] {
        if device
            .get(key)
            .is_some_and(|v| !v.is_null() && !v.is_array())
        {
            errs.push(join(path, key), format!("{key} must be a list"));
        }
    }
    for key in ["kind", "type", "vendor", "driver"] {
        opt_str(device.get(key), &join(path, key), errs);
    }
}

fn check_port(
    port: &Map<String, Value>,
    path: &str,
    node_id: &str,
    labels: &mut HashSet<String>,
    errs: &mut Errors,
) {
    match opt_str(port.get("label"), &join(path, "label"), errs) {
        Some(label) if !label.trim().is_empty() => {
            if !labels.insert(label.to_string()) {
                errs.push(
                    join(path, "label"),
                    format!("duplicate port label {label:?} for node {node_id}"),
                );
            }
        }
        _ => errs.push(join(path, "label"), "label is required"),
    }
    if !port
        .get("port")
        .and_then(Value::as_u64)
        .is_some_and(|p| (1..=65535).contains(&p))
    {
        errs.push(join(path, "port"), "port must be between 1 and 65535");
    }
    let field = join(path, "protocol");
    if let Some(p) = opt_str(port.get("protocol"), &field, errs)
        .filter(|p| !PROTOCOLS.contains(&p.to_lowercase().as_str()))
    {
        errs.push(
            field,
            format!("protocol must be one of tcp, udp, http, grpc (got {p:?})"),
        );
    }
}

fn check_volume(
    volume: &Map<String, Value>,
    path: &str,
    node_id: &str,
    names: &mut HashSet<String>,
    errs: &mut Errors,
) {
    match opt_str(volume.get("name"), &join(path, "name"), errs) {
        Some(name) if !name.trim().is_empty() => {
            if !names.insert(name.to_string()) {
                errs.push(
                    join(path, "name"),
                    format!("duplicate volume name {name:?} for node {node_id}"),
                );
            }
        }
        _ => errs.push(join(path, "name"), "name is required"),
    }
    let absolute = |key: &str| {
        volume
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with('/'))
    };
    if !absolute("source") {
        errs.push(join(path, "source"), "source must be an absolute host path");
    }
    if !absolute("target") {
        errs.push(
            join(path, "target"),
            "target must be an absolute target path",
        );
    }
    let mode = join(path, "mode");
    if opt_str(volume.get("mode"), &mode, errs).is_some_and(|m| m != "ro" && m != "rw") {
        errs.push(mode, "mode must be ro or rw");
    }
    let ty = join(path, "type");
    if opt_str(volume.get("type"), &ty, errs).is_some_and(|t| t != "host") {
        errs.push(ty, "type must be host");
    }
}
