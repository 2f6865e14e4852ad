//! One case per validation rule: the manifest after a mutation of [`base`] and the exact
//! errors (`path: message`) it must produce. Top-level, graph, policy and edge rules here;
//! per-node rules in `validation_node`.

use serde_json::json;

use super::{add_edge, add_node, base, check, errors, remove, set};

#[test]
fn base_manifest_is_valid() {
    assert_eq!(errors(&base()), Vec::<String>::new());
}

#[test]
fn top_level_rules() {
    check(&[
        (
            "not an object",
            |d| *d = json!([1]),
            &["manifest: manifest must be a JSON object, got a list"],
        ),
        (
            "manifest_version missing",
            |d| remove(d, "/manifest_version"),
            &["manifest_version: manifest_version is required"],
        ),
        (
            "manifest_version wrong type",
            |d| set(d, "/manifest_version", json!(true)),
            &["manifest_version: manifest_version must be a string, got a boolean"],
        ),
        (
            "graph_id missing",
            |d| remove(d, "/graph_id"),
            &["graph_id: graph_id is required"],
        ),
        (
            "graph_id blank",
            |d| set(d, "/graph_id", json!(" ")),
            &["graph_id: graph_id is required"],
        ),
        (
            "job_name wrong type",
            |d| set(d, "/job_name", json!(3)),
            &["job_name: must be a string, got a number"],
        ),
        (
            "type unknown",
            |d| set(d, "/type", json!("cron")),
            &["type: unsupported job type \"cron\"; expected batch, service, system or sysbatch"],
        ),
        (
            "type conflicts with policies.job_type",
            |d| {
                set(d, "/type", json!("service"));
                set(d, "/policies", json!({"job_type": "batch"}));
            },
            &["policies.job_type: job type \"batch\" conflicts with type \"service\""],
        ),
        (
            "daemon not boolean",
            |d| set(d, "/daemon", json!("yes")),
            &["daemon: daemon must be a boolean, got a string"],
        ),
        (
            "requiredContextEngine not boolean",
            |d| set(d, "/requiredContextEngine", json!(1)),
            &["requiredContextEngine: requiredContextEngine must be a boolean, got a number"],
        ),
        (
            "requirements not object",
            |d| set(d, "/requirements", json!([])),
            &["requirements: requirements must be an object, got a list"],
        ),
        (
            "metadata not object",
            |d| set(d, "/metadata", json!("x")),
            &["metadata: metadata must be an object, got a string"],
        ),
        (
            "input_validation rules not list",
            |d| set(d, "/input_validation", json!({"rules": {}})),
            &["input_validation.rules: rules must be a list, got an object"],
        ),
        (
            "deployment key blank",
            |d| set(d, "/deployment", json!({"key": ""})),
            &["deployment.key: deployment.key must be a non-blank string"],
        ),
    ]);
}

#[test]
fn graph_and_entrypoint_rules() {
    check(&[
        (
            "nodes empty",
            |d| {
                set(d, "/nodes", json!([]));
                set(d, "/edges", json!([]));
            },
            &["nodes: nodes must not be empty"],
        ),
        (
            "nodes not a list",
            |d| {
                set(d, "/nodes", json!({}));
                set(d, "/edges", json!([]));
            },
            &["nodes: nodes must be a list, got an object"],
        ),
        (
            "no graph at all",
            |d| {
                remove(d, "/nodes");
                remove(d, "/edges");
            },
            &[
                "nodes: nodes must not be empty: no node graph found (expected nodes, agents.nodes or flow.nodes)",
            ],
        ),
        (
            "workflow source",
            |d| {
                remove(d, "/nodes");
                set(d, "/kind", json!("WorkflowSource"));
            },
            &[
                "nodes: nodes must not be empty: no node graph found (expected nodes, agents.nodes or flow.nodes); \
              this is a WorkflowSource, which must be compiled into a manifest with nodes and edges first",
            ],
        ),
        (
            "graph in two places",
            |d| set(d, "/agents", json!({"nodes": []})),
            &["agents.nodes: the node graph is defined in nodes and agents.nodes; keep one"],
        ),
        (
            "edges not a list",
            |d| set(d, "/edges", json!("a->b")),
            &["edges: edges must be a list, got a string"],
        ),
        (
            "entrypoint unknown",
            |d| set(d, "/entrypoints", json!(["a", "zz"])),
            &["entrypoints[1]: entrypoint zz does not reference a known node"],
        ),
        (
            "entrypoint as unknown string",
            |d| set(d, "/entrypoints", json!("zz")),
            &["entrypoints: entrypoint zz does not reference a known node"],
        ),
        (
            "entrypoint not a string",
            |d| set(d, "/entrypoints", json!([1])),
            &["entrypoints[0]: entrypoint must be a node id string, got a number"],
        ),
        (
            "entrypoints wrong type",
            |d| set(d, "/entrypoints", json!({"a": 1})),
            &["entrypoints: entrypoints must be a list of node ids, got an object"],
        ),
        (
            "no entrypoint and no root role",
            |d| remove(d, "/nodes/0/role"),
            &[
                "entrypoints: manifest must define at least one entrypoint or one node with role root/root_coordinator",
            ],
        ),
        (
            "initial input for unknown node",
            |d| set(d, "/initial_inputs", json!({"zz": {}})),
            &["initial_inputs.zz: initial input targets unknown node zz"],
        ),
        (
            "initial inputs wrong type",
            |d| set(d, "/initial_inputs", json!("go")),
            &[
                "initial_inputs: initial_inputs must be an object of node id to payloads, or a list, got a string",
            ],
        ),
        (
            "terminal sink with outgoing edge",
            |d| set(d, "/nodes/0/config", json!({"terminal_sink": true})),
            &["nodes[0].config.terminal_sink: terminal_sink node a must not have outgoing edges"],
        ),
    ]);
}

#[test]
fn policy_rules() {
    check(&[
        (
            "policies not object",
            |d| set(d, "/policies", json!([])),
            &["policies: must be an object, got a list"],
        ),
        (
            "recovery_mode",
            |d| set(d, "/policies", json!({"recovery_mode": "atuo"})),
            &[
                "policies.recovery_mode: recovery_mode has unsupported value \"atuo\"; expected one of auto, local_restart, cluster_recover, manual_recover",
            ],
        ),
        (
            "job_type",
            |d| set(d, "/policies", json!({"job_type": "cron"})),
            &[
                "policies.job_type: unsupported job_type \"cron\"; expected batch, service, system or sysbatch",
            ],
        ),
        (
            "scheduler.job_type",
            |d| set(d, "/policies", json!({"scheduler": {"job_type": "x"}})),
            &[
                "policies.scheduler.job_type: unsupported job_type \"x\"; expected batch, service, system or sysbatch",
            ],
        ),
        (
            "scheduler_strategy",
            |d| set(d, "/policies", json!({"scheduler_strategy": "random"})),
            &[
                "policies.scheduler_strategy: scheduler_strategy has unsupported value \"random\"; expected one of binpack, spread",
            ],
        ),
        (
            "scheduler.strategy",
            |d| set(d, "/policies", json!({"scheduler": {"strategy": 3}})),
            &["policies.scheduler.strategy: must be a string, got a number"],
        ),
        (
            "scheduler not object",
            |d| set(d, "/policies", json!({"scheduler": "spread"})),
            &["policies.scheduler: must be an object, got a string"],
        ),
        (
            "restart not object",
            |d| set(d, "/policies", json!({"restart": 3})),
            &["policies.restart: must be an object, got a number"],
        ),
        (
            "restart attempts negative",
            |d| set(d, "/policies", json!({"restart": {"attempts": -1}})),
            &["policies.restart.attempts: attempts must be a non-negative integer, got -1"],
        ),
        (
            "restart delay fractional",
            |d| set(d, "/policies", json!({"restart": {"delay_ms": 1.5}})),
            &["policies.restart.delay_ms: delay_ms must be a non-negative integer, got 1.5"],
        ),
        (
            "restart delay_function",
            |d| {
                set(
                    d,
                    "/policies",
                    json!({"restart": {"delay_function": "linear"}}),
                )
            },
            &[
                "policies.restart.delay_function: delay_function has unsupported value \"linear\"; expected one of constant, exponential, fibonacci",
            ],
        ),
        (
            "restart mode",
            |d| set(d, "/policies", json!({"restart": {"mode": "retry"}})),
            &[
                "policies.restart.mode: mode has unsupported value \"retry\"; expected one of fail, delay",
            ],
        ),
        (
            "reschedule unlimited",
            |d| set(d, "/policies", json!({"reschedule": {"unlimited": "yes"}})),
            &["policies.reschedule.unlimited: unlimited must be a boolean, got a string"],
        ),
        (
            "max_agent_restart_attempts",
            |d| {
                set(
                    d,
                    "/policies",
                    json!({"max_agent_restart_attempts": "three"}),
                )
            },
            &[
                "policies.max_agent_restart_attempts: max_agent_restart_attempts must be a non-negative integer",
            ],
        ),
        (
            "constraints",
            |d| set(d, "/policies", json!({"constraints": "gpu"})),
            &["policies.constraints: constraints must be a list, got a string"],
        ),
        (
            "node restart",
            |d| {
                set(
                    d,
                    "/nodes/1/policies",
                    json!({"restart": {"max_delay_ms": "1s"}}),
                )
            },
            &[
                "nodes[1].policies.restart.max_delay_ms: max_delay_ms must be a non-negative integer, got \"1s\"",
            ],
        ),
        (
            "node preferred_node",
            |d| {
                set(
                    d,
                    "/nodes/1/policies",
                    json!({"scheduler": {"preferred_node": 1}}),
                )
            },
            &["nodes[1].policies.scheduler.preferred_node: must be a string, got a number"],
        ),
    ]);
    let mut doc = base();
    set(
        &mut doc,
        "/policies",
        json!({
            "recovery_mode": "cluster_recover", "job_type": "service", "scheduler_strategy": "spread",
            "max_agent_restart_attempts": "3", "constraints": [{"attribute": "gpu", "value": "true"}],
            "restart": {"attempts": 2, "delay_ms": 100, "delay_function": "constant", "mode": "fail", "enabled": true},
            "reschedule": {"attempts": 0, "unlimited": true, "interval_ms": 600000}
        }),
    );
    assert_eq!(errors(&doc), Vec::<String>::new());
}

#[test]
fn edge_rules() {
    check(&[
        (
            "edge not an object",
            |d| add_edge(d, json!(1)),
            &["edges[1]: edge must be an object, got a number"],
        ),
        (
            "from_node missing",
            |d| {
                add_edge(
                    d,
                    json!({"edge_id": "e2", "to_node": "b", "message_type": "m"}),
                )
            },
            &["edges[1].from_node: edge e2 must define from_node"],
        ),
        (
            "from_node unknown",
            |d| {
                add_edge(
                    d,
                    json!({"edge_id": "e2", "from_node": "x", "to_node": "b", "message_type": "m"}),
                )
            },
            &["edges[1].from_node: edge e2 references missing from_node x"],
        ),
        (
            "to alias unknown",
            |d| add_edge(d, json!({"id": "e2", "from": "a", "to": "y", "event": "m"})),
            &["edges[1].to: edge e2 references missing to_node y"],
        ),
        (
            "to_node wrong type",
            |d| {
                add_edge(
                    d,
                    json!({"from_node": "a", "to_node": 2, "message_type": "m"}),
                )
            },
            &["edges[1].to_node: to_node must be a string, got a number"],
        ),
        (
            "message_type missing",
            |d| add_edge(d, json!({"from_node": "a", "to_node": "b"})),
            &["edges[1].message_type: edge unknown must define message_type"],
        ),
        (
            "event blank",
            |d| add_edge(d, json!({"from_node": "a", "to_node": "b", "event": " "})),
            &["edges[1].event: edge unknown must define message_type"],
        ),
        (
            "routing_mode unknown",
            |d| set(d, "/edges/0/routing_mode", json!("round_robin")),
            &[
                "edges[0].routing_mode: edge e1 has unsupported routing_mode \"round_robin\"; expected broadcast, first_match or all_match",
            ],
        ),
        (
            "routing_mode wrong type",
            |d| set(d, "/edges/0/routing_mode", json!(1)),
            &["edges[0].routing_mode: must be a string, got a number"],
        ),
        (
            "conditions invalid",
            |d| {
                set(
                    d,
                    "/edges/0/conditions",
                    json!({"expr": "${payload.x} ~= 1"}),
                )
            },
            &[
                "edges[0].conditions: edge e1 has invalid conditions: unsupported op \"~=\"; expected ==, !=, >, >=, <, <=, contains, in or exists",
            ],
        ),
        (
            "edge_id wrong type",
            |d| set(d, "/edges/0/edge_id", json!(5)),
            &["edges[0].edge_id: must be a string, got a number"],
        ),
        (
            "duplicate edge_id",
            |d| {
                add_edge(
                    d,
                    json!({"edge_id": "e1", "from_node": "b", "to_node": "a", "message_type": "m"}),
                )
            },
            &["edges[1].edge_id: duplicate edge_id e1"],
        ),
        (
            "edge to a node that is invalid for another reason",
            |d| {
                add_node(d, json!({"agent_type": "foo"}));
                add_edge(
                    d,
                    json!({"from_node": "a", "to_node": "n3", "message_type": "m"}),
                );
            },
            &["nodes[2].agent_type: unsupported agent_type \"foo\" for node n3"],
        ),
    ]);
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let mut doc = base();
    remove(&mut doc, "/manifest_version");
    add_node(
        &mut doc,
        json!({"agent_type": "foo", "config": {"upload_path": "/x"}}),
    );
    add_edge(
        &mut doc,
        json!({"from_node": "a", "to_node": "zz", "message_type": "m"}),
    );
    set(&mut doc, "/policies", json!({"recovery_mode": "never"}));
    let got = errors(&doc);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert_eq!(got[0], "manifest_version: manifest_version is required");
    assert!(got[1].starts_with("policies.recovery_mode: "), "{got:#?}");
    assert_eq!(
        got[2],
        "nodes[2].agent_type: unsupported agent_type \"foo\" for node n3"
    );
    assert!(
        got[3].starts_with("nodes[2].config.upload_path: payload path must be relative"),
        "{got:#?}"
    );
    assert_eq!(
        got[4],
        "edges[1].to_node: edge unknown references missing to_node zz"
    );
}

#[test]
fn nested_layout_paths_point_into_the_authors_file() {
    let doc = json!({
        "manifest_version": "1.0", "id": "g",
        "agents": {"entrypoints": ["zz"], "nodes": [{"node_id": "a", "agent_type": "nope"}], "edges": [
            {"from_node": "a", "to_node": "b", "message_type": "m"}
        ]}
    });
    assert_eq!(
        errors(&doc),
        vec![
            "agents.nodes[0].agent_type: unsupported agent_type \"nope\" for node a",
            "agents.edges[0].to_node: edge unknown references missing to_node b",
            "agents.entrypoints[0]: entrypoint zz does not reference a known node",
            "agents.entrypoints: manifest must define at least one entrypoint or one node with role root/root_coordinator",
        ]
    );
}

#[test]
fn hostile_inputs_never_panic() {
    let docs = [
        json!(null),
        json!("x"),
        json!(1),
        json!({}),
        json!({"nodes": null}),
        json!({"nodes": [null, [], {}]}),
        json!({"nodes": [{"node_id": "", "agent_type": null, "type": {}, "config": [], "resources": {"devices": [null]}}]}),
        json!({"agents": {"nodes": "x", "edges": 1}, "runtime": {"initial_inputs": 1}}),
        json!({"flow": {"nodes": [{"id": "a", "agentType": "relay"}], "edges": [{"from": {}, "to": [], "event": null,
            "conditions": {"all": [{"not": {"any": "x"}}]}, "routing_mode": null}]}}),
        json!({"nodes": [{"node_id": "a", "agent_type": "module", "config": {"module": {"x": 1}, "command": {}}}],
            "policies": {"restart": {"attempts": u64::MAX}, "scheduler": {"job_type": []}}}),
    ];
    for doc in docs {
        assert!(super::parse_manifest(&doc).is_err(), "{doc}");
    }
}
