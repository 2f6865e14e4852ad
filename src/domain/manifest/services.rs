//! The shape of service declarations and requirements (core-spec 9.1): `services`,
//! `required_services` and a node's `services`/`requires_services`. This runtime does not
//! register services yet; checking the shape now means a manifest written for it today does
//! not start failing when it does.

use serde_json::{Map, Value};

use super::error::{Errors, join, kind};
use super::fields::aliased;

const CHECK_TYPES: [&str; 4] = ["http", "tcp", "script", "grpc"];

/// The service lists at the top level of the manifest.
pub(crate) fn check_job_services(root: &Map<String, Value>, errs: &mut Errors) {
    check_list(root, &["services"], "", errs);
    check_list(root, &["required_services", "requiredServices"], "", errs);
}

/// The service lists of one node at `path`.
pub(crate) fn check_node_services(node: &Map<String, Value>, path: &str, errs: &mut Errors) {
    check_list(node, &["services"], path, errs);
    check_list(node, &["requires_services", "requiresServices"], path, errs);
}

/// A list of declarations, or one (an object or a bare name).
fn check_list(map: &Map<String, Value>, keys: &[&'static str], parent: &str, errs: &mut Errors) {
    let Some((key, value)) = aliased(map, keys) else {
        return;
    };
    let path = join(parent, key);
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_entry(item, &format!("{path}[{i}]"), errs);
            }
        }
        one => check_entry(one, &path, errs),
    }
}

fn check_entry(entry: &Value, path: &str, errs: &mut Errors) {
    let map = match entry {
        Value::String(name) => return check_name(Some(&Value::String(name.clone())), path, errs),
        Value::Object(map) => map,
        other => {
            return errs.push(
                path,
                format!("must be a service name or an object, got {}", kind(other)),
            );
        }
    };
    check_name(map.get("name"), &join(path, "name"), errs);
    let field = |k: &str| join(path, k);
    if map.get("provider").is_some_and(|p| p != "mirror_neuron") {
        errs.push(field("provider"), "provider must be mirror_neuron");
    }
    if map
        .get("origin")
        .is_some_and(|o| o != "internal" && o != "external")
    {
        errs.push(field("origin"), "origin must be internal or external");
    }
    if map.get("port").is_some_and(|p| !valid_port(p)) {
        errs.push(field("port"), "port must be 1..65535 or a template");
    }
    expect(map, "tags", Value::is_array, "a list", path, errs);
    expect(map, "meta", Value::is_object, "an object", path, errs);
    expect(map, "required", Value::is_boolean, "a boolean", path, errs);
    match map.get("checks") {
        None | Some(Value::Null) => {}
        Some(Value::Array(checks)) => {
            for (j, c) in checks.iter().enumerate() {
                check_health_check(c, &format!("{path}.checks[{j}]"), errs);
            }
        }
        Some(_) => errs.push(field("checks"), "checks must be a list"),
    }
}

fn check_name(name: Option<&Value>, path: &str, errs: &mut Errors) {
    let ok = name.and_then(Value::as_str).is_some_and(|n| {
        let mut chars = n.chars();
        n.len() <= 128
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    });
    if !ok {
        errs.push(
            path,
            "name must be a service name (letters, digits, _ . -; at most 128)",
        );
    }
}

/// A port number, or a `${...}` template resolved when the service is registered.
fn valid_port(port: &Value) -> bool {
    match port {
        Value::Number(n) => n.as_u64().is_some_and(|p| (1..=65535).contains(&p)),
        Value::String(s) => s.contains("${") || s.parse::<u16>().is_ok_and(|p| p > 0),
        _ => false,
    }
}

fn check_health_check(check: &Value, path: &str, errs: &mut Errors) {
    let Some(map) = check.as_object() else {
        return errs.push(
            path,
            format!("a check must be an object, got {}", kind(check)),
        );
    };
    if let Some(t) = map.get("type").filter(|t| !t.is_null())
        && !t.as_str().is_some_and(|t| CHECK_TYPES.contains(&t))
    {
        errs.push(
            join(path, "type"),
            "type must be http, tcp, script, or grpc",
        );
    }
    for key in ["timeout_ms", "interval_ms", "failures_before_critical"] {
        if map
            .get(key)
            .is_some_and(|v| !v.is_null() && v.as_u64().is_none_or(|n| n == 0))
        {
            errs.push(join(path, key), format!("{key} must be a positive integer"));
        }
    }
}

fn expect(
    map: &Map<String, Value>,
    key: &str,
    is: fn(&Value) -> bool,
    what: &str,
    path: &str,
    errs: &mut Errors,
) {
    if let Some(v) = map.get(key).filter(|v| !v.is_null() && !is(v)) {
        errs.push(
            join(path, key),
            format!("{key} must be {what}, got {}", kind(v)),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(root: Value) -> Vec<String> {
        let mut errs = Errors::default();
        check_job_services(root.as_object().expect("object"), &mut errs);
        errs.into_vec().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn declared_shapes_pass() {
        let root = json!({
            "services": [{"name": "demo-health", "port": "${config.service.port}", "origin": "internal",
                "provider": "mirror_neuron", "tags": ["a"], "meta": {},
                "checks": [{"type": "http", "timeout_ms": 500, "path": "/health"}]}, "plain-name"],
            "required_services": [{"name": "nvidia-asr", "tags": ["x"], "required": true}],
        });
        assert_eq!(errors(root), Vec::<String>::new());
    }

    #[test]
    fn bad_fields_are_named() {
        let root = json!({
            "services": [{"name": "-bad", "port": 70000, "origin": "elsewhere", "tags": "a",
                "checks": [{"type": "smtp", "interval_ms": 0}]}],
            "requiredServices": {"required": "yes"},
        });
        assert_eq!(
            errors(root),
            [
                "services[0].name",
                "services[0].origin",
                "services[0].port",
                "services[0].tags",
                "services[0].checks[0].type",
                "services[0].checks[0].interval_ms",
                "requiredServices.name",
                "requiredServices.required",
            ]
        );
    }
}
