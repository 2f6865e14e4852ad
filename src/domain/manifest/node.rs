//! One node: aliases resolved, agent type and template checked against each other.

use serde_json::{Map, Value};

use super::error::{Errors, join, kind};
use super::fields::{aliased, opt_str};
use super::model::{AgentType, NodeSpec, Template};
use super::{executor, module_node, pass_env, payload_paths, policies, resources, services};

/// Keys read into [`NodeSpec`]; every other key is kept in `extensions`.
const KNOWN_KEYS: [&str; 10] = [
    "node_id",
    "id",
    "agent_type",
    "agentType",
    "type",
    "kind",
    "role",
    "config",
    "resources",
    "policies",
];

/// The node's id as written, if it is a non-empty string (used to build the id set early).
pub(crate) fn raw_id(value: &Value) -> Option<&str> {
    let map = value.as_object()?;
    aliased(map, &["node_id", "id"])?
        .1
        .as_str()
        .filter(|s| !s.trim().is_empty())
}

/// Parses the node at `path`; reports every problem and returns `None` if there was one.
pub(crate) fn parse(value: &Value, path: &str, errs: &mut Errors) -> Option<NodeSpec> {
    let Value::Object(map) = value else {
        errs.push(path, format!("node must be an object, got {}", kind(value)));
        return None;
    };
    let before = errs.len();
    let node_id = node_id(map, path, errs);
    let label = node_id.clone().unwrap_or_else(|| path.to_string());
    let agent_type = agent_type(map, path, &label, errs);
    let template = template(map, path, &label, agent_type, errs);
    let role = opt_str(map.get("role"), &join(path, "role"), errs).map(str::to_string);
    let config = config(map, path, &label, errs);
    let config_path = join(path, "config");
    let resources = match map.get("resources").filter(|v| !v.is_null()) {
        Some(r) => (r.clone(), join(path, "resources")),
        None => (
            config
                .get("resources")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new())),
            join(&config_path, "resources"),
        ),
    };
    resources::check(&resources.0, &resources.1, &label, errs);
    policies::check_node_policies(map.get("policies"), &join(path, "policies"), errs);
    let (services, requires_services) = services::node_services(map, path, errs);
    payload_paths::check(&config, &config_path, errs);
    module_node::check_command(&config, &config_path, &label, errs);
    pass_env::check(&config, &config_path, errs);
    let mut concurrency = executor::Concurrency::default();
    match agent_type {
        Some(AgentType::Module) => module_node::check(&config, &config_path, &label, errs),
        Some(AgentType::Executor) => {
            // The runner's own parse: whatever it would refuse at run time is refused here.
            let mut executor_errs = Errors::default();
            if let Some(spec) = executor::parse_at(
                &config,
                (&resources.0, &resources.1),
                &config_path,
                &mut executor_errs,
            ) {
                concurrency = spec.concurrency;
            }
            errs.merge_new(executor_errs);
        }
        Some(AgentType::Router | AgentType::Aggregator | AgentType::Sensor) | None => {}
    }
    if errs.len() > before {
        return None;
    }
    Some(NodeSpec {
        node_id: node_id?,
        agent_type: agent_type?,
        template: template.unwrap_or_default(),
        role,
        config,
        resources: resources.0,
        policies: map
            .get("policies")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
        services,
        requires_services,
        concurrency,
        extensions: map
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

fn node_id(map: &Map<String, Value>, path: &str, errs: &mut Errors) -> Option<String> {
    match aliased(map, &["node_id", "id"]) {
        Some((_, Value::String(s))) if !s.trim().is_empty() => Some(s.clone()),
        Some((key, Value::String(_))) | Some((key, Value::Null)) => {
            errs.push(join(path, key), "node_id is required for every node");
            None
        }
        Some((key, other)) => {
            errs.push(
                join(path, key),
                format!("node_id must be a string, got {}", kind(other)),
            );
            None
        }
        None => {
            errs.push(join(path, "node_id"), "node_id is required for every node");
            None
        }
    }
}

fn agent_type(
    map: &Map<String, Value>,
    path: &str,
    label: &str,
    errs: &mut Errors,
) -> Option<AgentType> {
    let (key, value) =
        aliased(map, &["agent_type", "agentType"]).unwrap_or(("agent_type", &Value::Null));
    let field = join(path, key);
    match value {
        Value::String(s) => {
            let parsed = AgentType::parse(s);
            if parsed.is_none() {
                errs.push(
                    field,
                    format!("unsupported agent_type {s:?} for node {label}"),
                );
            }
            parsed
        }
        Value::Null => {
            let hint = match map.get("uses").and_then(Value::as_str) {
                Some(uses) => format!(
                    " (it only references template {uses:?} via uses/with; expand it into agent_type and config first)"
                ),
                None => String::new(),
            };
            errs.push(
                field,
                format!("agent_type is required for node {label}{hint}"),
            );
            None
        }
        other => {
            errs.push(
                field,
                format!("agent_type must be a string, got {}", kind(other)),
            );
            None
        }
    }
}

/// The template (`type`, alias `kind`); a missing or empty one is `generic`.
fn template(
    map: &Map<String, Value>,
    path: &str,
    label: &str,
    agent_type: Option<AgentType>,
    errs: &mut Errors,
) -> Option<Template> {
    let (key, value) = aliased(map, &["type", "kind"])?;
    let field = join(path, key);
    let name = match value {
        Value::Null => return Some(Template::Generic),
        Value::String(s) if s.is_empty() => return Some(Template::Generic),
        Value::String(s) => s,
        other => {
            errs.push(
                field,
                format!("template type must be a string, got {}", kind(other)),
            );
            return None;
        }
    };
    let Some(template) = Template::parse(name) else {
        errs.push(
            field,
            format!("unsupported template type {name:?} for node {label}; expected generic, stream, map, reduce or batch"),
        );
        return None;
    };
    if let Some(agent) = agent_type.filter(|a| !a.allows(template)) {
        errs.push(
            field,
            format!(
                "template type {name:?} is not supported for agent_type {:?} on node {label}",
                agent.as_str()
            ),
        );
        return None;
    }
    Some(template)
}

fn config(
    map: &Map<String, Value>,
    path: &str,
    label: &str,
    errs: &mut Errors,
) -> Map<String, Value> {
    match map.get("config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(other) => {
            errs.push(
                join(path, "config"),
                format!(
                    "config for node {label} must be an object, got {}",
                    kind(other)
                ),
            );
            Map::new()
        }
    }
}
