//! `parse_manifest`: the one entry point from raw JSON to a [`Manifest`]. It runs every check
//! and returns every error, in the order the fields appear in core-spec 1.2.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::{Errors, ValidationError, join, kind};
use super::fields::{aliased, expect_bool, expect_object, opt_str};
use super::layout::{self, Graph};
use super::model::{EdgeSpec, JobType, Manifest, NodeSpec};
use super::{edge, node, policies, schedules, services};

/// Parses and validates a manifest in any accepted layout.
pub fn parse_manifest(value: &Value) -> Result<Manifest, Vec<ValidationError>> {
    let Value::Object(root) = value else {
        return Err(vec![ValidationError::new(
            "manifest",
            format!("manifest must be a JSON object, got {}", kind(value)),
        )]);
    };
    let mut errs = Errors::default();
    let manifest_version = manifest_version(root, &mut errs);
    let graph_id = graph_id(root, &mut errs);
    let job_name = opt_str(root.get("job_name"), "job_name", &mut errs).map(str::to_string);
    let policy_job_type = policies::check_job_policies(root.get("policies"), &mut errs);
    let job_type = job_type(root, policy_job_type, &mut errs);
    check_top_level(root, &mut errs);
    let (job_services, required_services) = services::job_services(root, &mut errs);
    schedules::check_schedule(root, &mut errs);
    schedules::check_triggers(root, &mut errs);
    let update_policy = policies::update_policy(root.get("policies"), &mut errs);
    let graph = layout::locate(root, &mut errs);
    let parsed = graph.as_ref().map(|g| parse_graph(root, g, &mut errs));
    if !errs.is_empty() {
        return Err(errs.into_vec());
    }
    let (Some(manifest_version), Some(graph_id), Some(graph), Some(parsed)) =
        (manifest_version, graph_id, graph, parsed)
    else {
        // Every `None` above was reported; this is unreachable while that holds.
        return Err(vec![ValidationError::new(
            "manifest",
            "manifest is incomplete",
        )]);
    };
    Ok(Manifest {
        manifest_version,
        job_name: job_name.unwrap_or_else(|| graph_id.clone()),
        graph_id,
        job_type,
        layout: graph.layout,
        nodes: parsed.nodes,
        edges: parsed.edges,
        entrypoints: parsed.entrypoints,
        initial_inputs: parsed.initial_inputs,
        policies: root
            .get("policies")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
        update_policy,
        services: job_services,
        required_services,
        metadata: root
            .get("metadata")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
        extensions: layout::extensions(root, Some(graph.layout)),
    })
}

struct ParsedGraph {
    nodes: Vec<NodeSpec>,
    edges: Vec<EdgeSpec>,
    entrypoints: Vec<String>,
    initial_inputs: std::collections::BTreeMap<String, Vec<Value>>,
}

fn parse_graph(root: &Map<String, Value>, graph: &Graph<'_>, errs: &mut Errors) -> ParsedGraph {
    let nodes_path = graph.layout.nodes_path();
    let raw_nodes: &[Value] = match graph.container.get("nodes") {
        Some(Value::Array(items)) if items.is_empty() => {
            errs.push(nodes_path, "nodes must not be empty");
            &[]
        }
        Some(Value::Array(items)) => items,
        other => {
            errs.push(
                nodes_path,
                format!(
                    "nodes must be a list, got {}",
                    other.map_or("nothing", kind)
                ),
            );
            &[]
        }
    };
    let node_ids = node_ids(raw_nodes, nodes_path, errs);
    let nodes: Vec<NodeSpec> = raw_nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| node::parse(n, &format!("{nodes_path}[{i}]"), errs))
        .collect();
    let edges = parse_edges(graph, &node_ids, errs);
    check_terminal_sinks(raw_nodes, &edges, nodes_path, errs);
    let roots = raw_nodes
        .iter()
        .filter(|n| {
            matches!(
                n.get("role").and_then(Value::as_str),
                Some("root" | "root_coordinator")
            )
        })
        .filter_map(|n| node::raw_id(n).map(str::to_string))
        .collect();
    let entrypoints = layout::entrypoints(root, graph, &node_ids, roots, errs);
    let initial_inputs = layout::initial_inputs(root, &node_ids, errs);
    ParsedGraph {
        nodes,
        edges,
        entrypoints,
        initial_inputs,
    }
}

/// Every declared node id, reporting duplicates. Nodes with other problems still count, so a
/// bad `agent_type` does not also make every edge to that node "missing".
fn node_ids<'a>(raw_nodes: &'a [Value], nodes_path: &str, errs: &mut Errors) -> HashSet<&'a str> {
    let mut ids = HashSet::new();
    for (i, id) in raw_nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| node::raw_id(n).map(|id| (i, id)))
    {
        if !ids.insert(id) {
            errs.push(
                format!("{nodes_path}[{i}].node_id"),
                format!("duplicate node_id {id}"),
            );
        }
    }
    ids
}

fn parse_edges(graph: &Graph<'_>, node_ids: &HashSet<&str>, errs: &mut Errors) -> Vec<EdgeSpec> {
    let edges_path = graph.layout.edges_path();
    let raw: &[Value] = match graph.container.get("edges") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            errs.push(
                edges_path,
                format!("edges must be a list, got {}", kind(other)),
            );
            &[]
        }
    };
    let mut seen = HashSet::new();
    for (i, id) in raw.iter().enumerate().filter_map(|(i, e)| {
        let map = e.as_object()?;
        aliased(map, &["edge_id", "id"])?
            .1
            .as_str()
            .map(|id| (i, id))
    }) {
        if !seen.insert(id) {
            errs.push(
                format!("{edges_path}[{i}].edge_id"),
                format!("duplicate edge_id {id}"),
            );
        }
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, e)| edge::parse(e, &format!("{edges_path}[{i}]"), node_ids, errs))
        .collect()
}

/// A `terminal_sink` ends the run, so anything it emitted would go nowhere.
fn check_terminal_sinks(
    raw_nodes: &[Value],
    edges: &[EdgeSpec],
    nodes_path: &str,
    errs: &mut Errors,
) {
    for (i, n) in raw_nodes.iter().enumerate() {
        let is_sink = n
            .get("config")
            .and_then(|c| c.get("terminal_sink"))
            .and_then(Value::as_bool)
            == Some(true);
        if let Some(id) =
            node::raw_id(n).filter(|id| is_sink && edges.iter().any(|e| e.from_node == *id))
        {
            errs.push(
                format!("{nodes_path}[{i}].config.terminal_sink"),
                format!("terminal_sink node {id} must not have outgoing edges"),
            );
        }
    }
}

fn manifest_version(root: &Map<String, Value>, errs: &mut Errors) -> Option<String> {
    match root.get("manifest_version") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            errs.push("manifest_version", "manifest_version is required");
            None
        }
        Some(other) => {
            errs.push(
                "manifest_version",
                format!("manifest_version must be a string, got {}", kind(other)),
            );
            None
        }
    }
}

/// `graph_id`, else `workflow_id`, else `id`: blueprint layouts name the graph by `id`.
fn graph_id(root: &Map<String, Value>, errs: &mut Errors) -> Option<String> {
    match aliased(root, &["graph_id", "workflow_id", "id"]) {
        Some((_, Value::String(s))) if !s.trim().is_empty() => Some(s.clone()),
        Some((key, Value::String(_))) | Some((key, Value::Null)) => {
            errs.push(key, "graph_id is required");
            None
        }
        Some((key, other)) => {
            errs.push(key, format!("{key} must be a string, got {}", kind(other)));
            None
        }
        None => {
            errs.push("graph_id", "graph_id is required");
            None
        }
    }
}

/// The job type from `type`, `policies.job_type`/`policies.scheduler.job_type`, or
/// `daemon: true` (the v1 spelling of a service); batch when none is given. Accepting all four
/// types in both places fixes the drift between runtime generations (core-spec 13.18); naming
/// two different types is an error.
fn job_type(
    root: &Map<String, Value>,
    from_policies: Option<(JobType, String)>,
    errs: &mut Errors,
) -> JobType {
    let top = opt_str(root.get("type"), "type", errs).and_then(|s| {
        let parsed = JobType::parse(s);
        if parsed.is_none() {
            errs.push(
                "type",
                format!("unsupported job type {s:?}; expected batch, service, system or sysbatch"),
            );
        }
        parsed
    });
    if let (Some(top), Some((policy, path))) = (top, &from_policies)
        && top != *policy
    {
        errs.push(
            path,
            format!(
                "job type {:?} conflicts with type {:?}",
                policy.as_str(),
                top.as_str()
            ),
        );
    }
    let daemon = root.get("daemon").and_then(Value::as_bool) == Some(true);
    top.or(from_policies.map(|(t, _)| t)).unwrap_or(if daemon {
        JobType::Service
    } else {
        JobType::Batch
    })
}

/// Type checks on the remaining documented top-level fields (core-spec 1.2).
fn check_top_level(root: &Map<String, Value>, errs: &mut Errors) {
    expect_bool(root, "daemon", "", errs);
    expect_bool(root, "requiredContextEngine", "", errs);
    expect_bool(root, "required_context_engine", "", errs);
    expect_object(root, "requirements", "", errs);
    expect_object(root, "metadata", "", errs);
    expect_object(root, "deployment", "", errs);
    if let Some((key, v)) = aliased(root, &["input_validation", "inputValidation"])
        && let Some(rules) = v.as_object().and_then(|m| m.get("rules"))
        && !rules.is_array()
    {
        errs.push(
            join(key, "rules"),
            format!("rules must be a list, got {}", kind(rules)),
        );
    }
    if let Some(key) = root.get("deployment").and_then(|d| d.get("key"))
        && key.as_str().is_none_or(|k| k.trim().is_empty())
    {
        errs.push(
            "deployment.key",
            "deployment.key must be a non-blank string",
        );
    }
}
