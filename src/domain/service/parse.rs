//! Raw JSON to typed [`ServiceSpec`]s, once, at manifest validation. Every problem is reported
//! with its path and the texts of core-spec 9.1 (`name must be a service name`, ...).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::spec::{
    CheckSpec, DEFAULT_INTERVAL_MS, DEFAULT_TIMEOUT_MS, HttpProbe, Origin, Port, Probe,
    ScriptProbe, ServiceSpec,
};
use crate::domain::manifest::ValidationError;

/// Characters that would make a command string mean something to a shell.
const UNSAFE: [&str; 9] = [";", "&", "|", "`", "<", ">", "$(", "\n", "\r"];
const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "PUT", "PATCH"];

type Errs = Vec<ValidationError>;

/// A service list at `path`: a list, one entry (an object or a bare name), or an object keyed
/// by name. `null` is an empty list.
pub fn parse_list(value: &Value, path: &str, errs: &mut Errs) -> Vec<ServiceSpec> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| parse_entry(v, &format!("{path}[{i}]"), errs))
            .collect(),
        Value::Object(map) if !map.contains_key("name") && map.values().all(Value::is_object) => {
            map.iter()
                .filter_map(|(name, spec)| {
                    let mut obj = spec.as_object().cloned().unwrap_or_default();
                    obj.insert("name".into(), Value::String(name.clone()));
                    parse_entry(&Value::Object(obj), &format!("{path}.{name}"), errs)
                })
                .collect()
        }
        one => parse_entry(one, path, errs).into_iter().collect(),
    }
}

/// One declaration or requirement; `None` when it has an error (reported).
pub fn parse_entry(entry: &Value, path: &str, errs: &mut Errs) -> Option<ServiceSpec> {
    let before = errs.len();
    let map = match entry {
        Value::String(name) => {
            let mut obj = Map::new();
            obj.insert("name".into(), Value::String(name.trim().to_string()));
            obj
        }
        Value::Object(map) => map.clone(),
        _ => {
            push(errs, path, "must be a service name or an object");
            return None;
        }
    };
    let at = |k: &str| format!("{path}.{k}");
    let name = map
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| valid_name(n));
    if name.is_none() {
        push(errs, &at("name"), "name must be a service name");
    }
    if map
        .get("provider")
        .is_some_and(|p| !p.is_null() && p != "mirror_neuron")
    {
        push(errs, &at("provider"), "provider must be mirror_neuron");
    }
    let origin = match map.get("origin").and_then(Value::as_str) {
        None if map.get("origin").is_none_or(Value::is_null) => None,
        Some("internal") => Some(Origin::Internal),
        Some("external") => Some(Origin::External),
        _ => {
            push(errs, &at("origin"), "origin must be internal or external");
            None
        }
    };
    let port = port(map.get("port"), &at("port"), errs);
    let tags = strings(map.get("tags"), &at("tags"), "tags must be a list", errs);
    let meta = match map.get("meta") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            push(errs, &at("meta"), "meta must be an object");
            Map::new()
        }
    };
    let required = required(&map, &at("required"), errs);
    let checks = match map.get("checks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .filter_map(|(j, c)| parse_check(c, &format!("{path}.checks[{j}]"), errs))
            .collect(),
        Some(_) => {
            push(errs, &at("checks"), "checks must be a list");
            Vec::new()
        }
    };
    if errs.len() > before {
        return None;
    }
    Some(ServiceSpec {
        name: name?.to_string(),
        id: opt_string(map.get("id")),
        address: opt_string(map.get("address")),
        port,
        tags,
        meta,
        provider: "mirror_neuron".into(),
        origin,
        checks,
        url: opt_string(map.get("url")),
        required,
    })
}

/// `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`
pub(crate) fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    n.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn parse_check(check: &Value, path: &str, errs: &mut Errs) -> Option<CheckSpec> {
    let Some(map) = check.as_object() else {
        push(errs, path, "a check must be an object");
        return None;
    };
    let before = errs.len();
    let at = |k: &str| format!("{path}.{k}");
    let kind = match map.get("type") {
        None | Some(Value::Null) => Some("tcp"),
        Some(t) => t
            .as_str()
            .filter(|t| ["http", "tcp", "script", "grpc"].contains(t)),
    };
    if kind.is_none() {
        push(errs, &at("type"), "type must be http, tcp, script, or grpc");
    }
    let timeout_ms = positive(map, "timeout_ms", DEFAULT_TIMEOUT_MS, path, errs);
    let interval_ms = positive(map, "interval_ms", DEFAULT_INTERVAL_MS, path, errs);
    let failures = positive(map, "failures_before_critical", 1, path, errs);
    let required = required(map, &at("required"), errs);
    let port = port(map.get("port"), &at("port"), errs);
    let probe = match kind {
        Some("http") => Probe::Http(http(map, path, errs)),
        Some("grpc") => Probe::Grpc {
            service: opt_string(map.get("service")).unwrap_or_default(),
        },
        Some("script") => Probe::Script(script(map, path, errs)),
        _ => Probe::Tcp,
    };
    if errs.len() > before {
        return None;
    }
    Some(CheckSpec {
        name: opt_string(map.get("name")).unwrap_or_else(|| probe.type_name().to_string()),
        timeout_ms,
        interval_ms,
        required,
        failures_before_critical: u32::try_from(failures).unwrap_or(u32::MAX),
        address: opt_string(map.get("address")),
        port,
        probe,
    })
}

fn http(map: &Map<String, Value>, path: &str, errs: &mut Errs) -> HttpProbe {
    let at = |k: &str| format!("{path}.{k}");
    let method = opt_string(map.get("method")).map_or_else(|| "GET".into(), |m| m.to_uppercase());
    if !METHODS.contains(&method.as_str()) {
        push(
            errs,
            &at("method"),
            "method must be GET, HEAD, POST, PUT, or PATCH",
        );
    }
    let mut headers = BTreeMap::new();
    match map.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                headers.insert(
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                );
            }
        }
        Some(_) => push(errs, &at("headers"), "headers must be an object"),
    }
    let body = match map.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let expected_status = match expected_status(map.get("expected_status")) {
        Some(r) => r,
        None => {
            push(
                errs,
                &at("expected_status"),
                "expected_status must be a status, a list of statuses, or a range like 200..299",
            );
            Vec::new()
        }
    };
    HttpProbe {
        url: opt_string(map.get("url")),
        scheme: opt_string(map.get("scheme")).unwrap_or_else(|| "http".into()),
        path: opt_string(map.get("path")).unwrap_or_else(|| "/".into()),
        method,
        headers,
        body,
        content_type: opt_string(map.get("content_type"))
            .unwrap_or_else(|| "application/json".into()),
        expected_status,
        contains: opt_string(map.get("contains")),
    }
}

/// An int, a list (of ints or ranges), or `"a..b"` / `"a-b"`; absent means 200..399.
pub(crate) fn expected_status(value: Option<&Value>) -> Option<Vec<(u16, u16)>> {
    match value {
        None | Some(Value::Null) => Some(vec![(200, 399)]),
        Some(Value::Number(n)) => {
            let s = u16::try_from(n.as_u64()?).ok()?;
            Some(vec![(s, s)])
        }
        Some(Value::String(s)) => {
            let s = s.trim();
            let (lo, hi) = s
                .split_once("..")
                .or_else(|| s.split_once('-'))
                .unwrap_or((s, s));
            let (lo, hi) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
            (lo <= hi).then_some(vec![(lo, hi)])
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut out = Vec::new();
            for item in items {
                out.extend(expected_status(Some(item))?);
            }
            Some(out)
        }
        Some(_) => None,
    }
}

fn script(map: &Map<String, Value>, path: &str, errs: &mut Errs) -> ScriptProbe {
    let command = match map.get("command") {
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        }
        Some(Value::String(s)) if !s.trim().is_empty() && !UNSAFE.iter().any(|u| s.contains(u)) => {
            s.split_whitespace().map(str::to_string).collect()
        }
        _ => {
            push(
                errs,
                &format!("{path}.command"),
                "command must be a safe command string or list",
            );
            Vec::new()
        }
    };
    let env = map
        .get("env")
        .and_then(Value::as_object)
        .map(|e| {
            e.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ScriptProbe {
        command,
        env,
        root_path: opt_string(map.get("root_path")),
    }
}

fn port(value: Option<&Value>, path: &str, errs: &mut Errs) -> Option<Port> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(p) if p > 0 => Some(Port::Number(p)),
            _ => {
                push(errs, path, "port must be 1..65535 or a template");
                None
            }
        },
        Some(Value::String(s)) if s.contains("${") => Some(Port::Template(s.clone())),
        Some(Value::String(s)) => match s.trim().parse::<u16>() {
            Ok(p) if p > 0 => Some(Port::Number(p)),
            _ => {
                push(errs, path, "port must be 1..65535 or a template");
                None
            }
        },
        Some(_) => {
            push(errs, path, "port must be 1..65535 or a template");
            None
        }
    }
}

fn positive(map: &Map<String, Value>, key: &str, default: u64, path: &str, errs: &mut Errs) -> u64 {
    match map.get(key) {
        None | Some(Value::Null) => default,
        Some(v) => match v.as_u64().filter(|n| *n > 0) {
            Some(n) => n,
            None => {
                push(
                    errs,
                    &format!("{path}.{key}"),
                    format!("{key} must be positive"),
                );
                default
            }
        },
    }
}

fn strings(value: Option<&Value>, path: &str, message: &str, errs: &mut Errs) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_string))
            .collect(),
        Some(_) => {
            push(errs, path, message);
            Vec::new()
        }
    }
}

fn opt_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `required`: a boolean, true when absent (a bad value is reported and counts as true).
fn required(map: &Map<String, Value>, path: &str, errs: &mut Errs) -> bool {
    match map.get("required") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            push(errs, path, "required must be a boolean");
            true
        }
    }
}

fn push(errs: &mut Errs, path: &str, message: impl Into<String>) {
    errs.push(ValidationError::new(path, message));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> (Vec<ServiceSpec>, Vec<String>) {
        let mut errs = Vec::new();
        let specs = parse_list(&v, "services", &mut errs);
        (specs, errs.into_iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn a_bare_name_is_a_service_with_defaults() {
        let (specs, errs) = parse(json!(["api"]));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(specs, vec![ServiceSpec::named("api")]);
    }

    #[test]
    fn check_defaults_follow_the_spec() {
        let (specs, errs) = parse(json!([{"name": "web", "port": "${config.port}",
            "checks": [{}, {"type": "http", "path": "/health", "expected_status": "200-204"}]}]));
        assert!(errs.is_empty(), "{errs:?}");
        let [tcp, http] = &specs[0].checks[..] else {
            panic!("two checks expected")
        };
        assert_eq!(
            (tcp.name.as_str(), tcp.timeout_ms, tcp.interval_ms),
            ("tcp", 2000, 10000)
        );
        assert!(tcp.required);
        assert_eq!(tcp.failures_before_critical, 1);
        let Probe::Http(h) = &http.probe else {
            panic!("http probe expected")
        };
        assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/health"));
        assert_eq!(h.expected_status, vec![(200, 204)]);
        assert_eq!(specs[0].port, Some(Port::Template("${config.port}".into())));
    }

    #[test]
    fn expected_status_forms() {
        assert_eq!(expected_status(None), Some(vec![(200, 399)]));
        assert_eq!(expected_status(Some(&json!(204))), Some(vec![(204, 204)]));
        assert_eq!(
            expected_status(Some(&json!("200..299"))),
            Some(vec![(200, 299)])
        );
        assert_eq!(
            expected_status(Some(&json!([200, "300-302"]))),
            Some(vec![(200, 200), (300, 302)])
        );
        assert_eq!(expected_status(Some(&json!("299..200"))), None);
        assert_eq!(expected_status(Some(&json!(true))), None);
    }

    #[test]
    fn every_error_is_named_with_the_spec_text() {
        let (_, errs) = parse(json!([{"name": "-bad", "provider": "consul", "origin": "x",
            "port": 70000, "tags": "a", "meta": [], "required": "yes",
            "checks": [{"type": "smtp", "timeout_ms": 0, "interval_ms": -1,
                        "failures_before_critical": 0},
                       {"type": "script", "command": "curl x | sh"}]}]));
        assert_eq!(
            errs,
            [
                "services[0].name: name must be a service name",
                "services[0].provider: provider must be mirror_neuron",
                "services[0].origin: origin must be internal or external",
                "services[0].port: port must be 1..65535 or a template",
                "services[0].tags: tags must be a list",
                "services[0].meta: meta must be an object",
                "services[0].required: required must be a boolean",
                "services[0].checks[0].type: type must be http, tcp, script, or grpc",
                "services[0].checks[0].timeout_ms: timeout_ms must be positive",
                "services[0].checks[0].interval_ms: interval_ms must be positive",
                "services[0].checks[0].failures_before_critical: failures_before_critical must be positive",
                "services[0].checks[1].command: command must be a safe command string or list",
            ]
        );
    }

    #[test]
    fn script_strings_split_without_a_shell_and_maps_are_keyed_by_name() {
        let (specs, errs) = parse(json!({"llm": {"checks": [{"type": "script",
            "command": "test -f /tmp/ready"}]}}));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(specs[0].name, "llm");
        let Probe::Script(s) = &specs[0].checks[0].probe else {
            panic!("script probe expected")
        };
        assert_eq!(s.command, ["test", "-f", "/tmp/ready"]);
    }
}
