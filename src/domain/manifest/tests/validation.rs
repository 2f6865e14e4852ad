//! One case per validation rule: the manifest after a mutation of [`base`] and the exact
//! errors (`path: message`) it must produce.

use serde_json::{Value, json};

use super::{base, errors, remove, set};
use crate::domain::manifest::PROCESS_MODULE_HOWTO;

type Mutation = fn(&mut Value);

/// Adds node `n3` (index 2) with the given body merged over `{"node_id": "n3"}`.
fn add_node(doc: &mut Value, body: Value) {
    let mut node = json!({"node_id": "n3"});
    if let (Some(n), Value::Object(extra)) = (node.as_object_mut(), body) {
        n.extend(extra);
    }
    set(doc, "/nodes/-", node);
}

fn add_edge(doc: &mut Value, edge: Value) {
    set(doc, "/edges/-", edge);
}

fn check(cases: &[(&str, Mutation, &[&str])]) {
    for (name, mutate, expected) in cases {
        let mut doc = base();
        mutate(&mut doc);
        let got = errors(&doc);
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, expected, "case {name}");
    }
}

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
fn node_rules() {
    check(&[
        (
            "node not an object",
            |d| set(d, "/nodes/-", json!("n3")),
            &["nodes[2]: node must be an object, got a string"],
        ),
        (
            "node_id missing",
            |d| set(d, "/nodes/-", json!({"agent_type": "router"})),
            &["nodes[2].node_id: node_id is required for every node"],
        ),
        (
            "node_id wrong type",
            |d| set(d, "/nodes/-", json!({"node_id": 7, "agent_type": "router"})),
            &["nodes[2].node_id: node_id must be a string, got a number"],
        ),
        (
            "duplicate node_id",
            |d| {
                set(
                    d,
                    "/nodes/-",
                    json!({"node_id": "a", "agent_type": "router"}),
                )
            },
            &["nodes[2].node_id: duplicate node_id a"],
        ),
        (
            "agent_type unsupported",
            |d| add_node(d, json!({"agent_type": "foo"})),
            &["nodes[2].agent_type: unsupported agent_type \"foo\" for node n3"],
        ),
        (
            "agent_type missing",
            |d| add_node(d, json!({})),
            &["nodes[2].agent_type: agent_type is required for node n3"],
        ),
        (
            "agent_type missing with uses",
            |d| add_node(d, json!({"uses": "mn-agents.x@1"})),
            &[
                "nodes[2].agent_type: agent_type is required for node n3 (it only references template \"mn-agents.x@1\" \
             via uses/with; expand it into agent_type and config first)",
            ],
        ),
        (
            "agent_type wrong type",
            |d| add_node(d, json!({"agentType": ["router"]})),
            &["nodes[2].agentType: agent_type must be a string, got a list"],
        ),
        (
            "template unsupported",
            |d| add_node(d, json!({"agent_type": "executor", "type": "fancy"})),
            &[
                "nodes[2].type: unsupported template type \"fancy\" for node n3; expected generic, stream, map, reduce or batch",
            ],
        ),
        (
            "template not allowed for agent type",
            |d| add_node(d, json!({"agent_type": "router", "type": "reduce"})),
            &[
                "nodes[2].type: template type \"reduce\" is not supported for agent_type \"router\" on node n3",
            ],
        ),
        (
            "template alias kind",
            |d| add_node(d, json!({"agent_type": "sensor", "kind": "map"})),
            &[
                "nodes[2].kind: template type \"map\" is not supported for agent_type \"sensor\" on node n3",
            ],
        ),
        (
            "role wrong type",
            |d| add_node(d, json!({"agent_type": "router", "role": 1})),
            &["nodes[2].role: must be a string, got a number"],
        ),
        (
            "config not object",
            |d| add_node(d, json!({"agent_type": "router", "config": "x"})),
            &["nodes[2].config: config for node n3 must be an object, got a string"],
        ),
        (
            "command empty list",
            |d| {
                add_node(
                    d,
                    json!({"agent_type": "executor", "config": {"command": []}}),
                )
            },
            &[
                "nodes[2].config.command: command for node n3 must be a non-empty string or a non-empty list of strings",
            ],
        ),
        (
            "command list of non-strings",
            |d| {
                add_node(
                    d,
                    json!({"agent_type": "executor", "config": {"command": ["a", 1]}}),
                )
            },
            &[
                "nodes[2].config.command: command for node n3 must be a non-empty string or a non-empty list of strings",
            ],
        ),
    ]);
}

#[test]
fn module_rules() {
    let how = PROCESS_MODULE_HOWTO;
    let cases: [(Value, String); 3] = [
        (
            json!({"module": "Foo.Bar", "module_source": "beam/foo.ex"}),
            format!(
                "nodes[2].config.module: node n3 names Elixir module \"Foo.Bar\", which this runtime cannot load; {how}"
            ),
        ),
        (
            json!({"module_source": "beam/foo.ex"}),
            format!(
                "nodes[2].config.module_source: node n3 points at Elixir source \"beam/foo.ex\", which this runtime cannot load; {how}"
            ),
        ),
        (
            json!({}),
            format!("nodes[2].config.command: module node n3 needs config.command; {how}"),
        ),
    ];
    for (config, expected) in cases {
        let mut doc = base();
        add_node(&mut doc, json!({"agent_type": "module", "config": config}));
        assert_eq!(errors(&doc), vec![expected], "config {config}");
    }
    assert!(how.contains("reads one JSON message per line on stdin"));
    assert!(how.contains("{\"actions\": [...], \"state\": ...}"));

    for command in [json!("python3 agent.py"), json!(["python3", "agent.py"])] {
        let mut doc = base();
        add_node(
            &mut doc,
            json!({"agent_type": "module", "type": "stream", "config": {"command": command}}),
        );
        assert_eq!(errors(&doc), Vec::<String>::new(), "command {command}");
    }
}

#[test]
fn payload_path_rules() {
    let escape = "payload path must be relative and stay inside payloads/";
    let cases: [(Value, String); 6] = [
        (json!({"upload_path": "/etc"}), format!("nodes[2].config.upload_path: {escape}: \"/etc\"")),
        (json!({"upload_path": "../x"}), format!("nodes[2].config.upload_path: {escape}: \"../x\"")),
        (json!({"upload_path": "a/../../x"}), format!("nodes[2].config.upload_path: {escape}: \"a/../../x\"")),
        (json!({"upload_paths": [{"source": "ok"}, {"source": "/abs"}]}), format!("nodes[2].config.upload_paths[1].source: {escape}: \"/abs\"")),
        (json!({"policy": ""}), format!("nodes[2].config.policy: {escape}: \"\"")),
        (json!({"upload_paths": [{"target": "x"}]}), "nodes[2].config.upload_paths[0].source: every upload_paths entry needs a source string".to_string()),
    ];
    for (config, expected) in cases {
        let mut doc = base();
        add_node(
            &mut doc,
            json!({"agent_type": "executor", "config": config}),
        );
        assert_eq!(errors(&doc), vec![expected], "config {config}");
    }
    let mut doc = base();
    add_node(
        &mut doc,
        json!({"agent_type": "executor", "config": {"upload_path": 5, "upload_paths": "x"}}),
    );
    assert_eq!(
        errors(&doc),
        vec![
            "nodes[2].config.upload_path: upload_path must be a string, got a number",
            "nodes[2].config.upload_paths: upload_paths must be a list, got a string",
        ]
    );
    let mut doc = base();
    add_node(
        &mut doc,
        json!({"agent_type": "executor", "config": {"upload_path": "./w/x", "upload_paths": [{"source": "a/b"}]}}),
    );
    assert_eq!(errors(&doc), Vec::<String>::new());
}

#[test]
fn resource_rules() {
    let cases: [(Value, &str); 19] = [
        (
            json!("big"),
            "nodes[2].resources: resources for node n3 must be an object, got a string",
        ),
        (
            json!({"cpu_cores": -1}),
            "nodes[2].resources.cpu_cores: cpu_cores must be zero or greater",
        ),
        (
            json!({"memory_mb": "lots"}),
            "nodes[2].resources.memory_mb: memory_mb must be a number, got \"lots\"",
        ),
        (
            json!({"devices": {}}),
            "nodes[2].resources.devices: resources.devices for node n3 must be a list",
        ),
        (
            json!({"devices": [1]}),
            "nodes[2].resources.devices[0]: must be an object, got a number",
        ),
        (
            json!({"devices": [{"count": 0}]}),
            "nodes[2].resources.devices[0].count: count must be greater than zero",
        ),
        (
            json!({"devices": [{"min_memory_mb": -5}]}),
            "nodes[2].resources.devices[0].min_memory_mb: min_memory_mb must be zero or greater",
        ),
        (
            json!({"devices": [{"memory_operator": "<"}]}),
            "nodes[2].resources.devices[0].memory_operator: memory_operator must be >, >=, or == (got \"<\")",
        ),
        (
            json!({"devices": [{"api_version_operator": "~"}]}),
            "nodes[2].resources.devices[0].api_version_operator: api_version_operator must be >, >=, or == (got \"~\")",
        ),
        (
            json!({"devices": [{"ids": "0"}]}),
            "nodes[2].resources.devices[0].ids: ids must be a list",
        ),
        (
            json!({"ports": [{"port": 80}]}),
            "nodes[2].resources.ports[0].label: label is required",
        ),
        (
            json!({"ports": [{"label": "h", "port": 70000}]}),
            "nodes[2].resources.ports[0].port: port must be between 1 and 65535",
        ),
        (
            json!({"ports": [{"label": "h", "port": 80, "protocol": "ftp"}]}),
            "nodes[2].resources.ports[0].protocol: protocol must be one of tcp, udp, http, grpc (got \"ftp\")",
        ),
        (
            json!({"ports": [{"label": "h", "port": 80}, {"label": "h", "port": 81}]}),
            "nodes[2].resources.ports[1].label: duplicate port label \"h\" for node n3",
        ),
        (
            json!({"volumes": [{"source": "/a", "target": "/b"}]}),
            "nodes[2].resources.volumes[0].name: name is required",
        ),
        (
            json!({"volumes": [{"name": "v", "source": "a", "target": "/b", "mode": "ro"}]}),
            "nodes[2].resources.volumes[0].source: source must be an absolute host path",
        ),
        (
            json!({"volumes": [{"name": "v", "source": "/a", "target": "/b", "mode": "x"}]}),
            "nodes[2].resources.volumes[0].mode: mode must be ro or rw",
        ),
        (
            json!({"runtime_driver": " "}),
            "nodes[2].resources.runtime_driver: runtime_driver for node n3 must not be empty",
        ),
        (
            json!({"runtime_driver": 1}),
            "nodes[2].resources.runtime_driver: runtime_driver for node n3 must be a string",
        ),
    ];
    for (resources, expected) in cases {
        let mut doc = base();
        add_node(
            &mut doc,
            json!({"agent_type": "executor", "resources": resources}),
        );
        assert_eq!(errors(&doc), vec![expected], "resources {resources}");
    }
    let volume_errors = {
        let mut doc = base();
        add_node(
            &mut doc,
            json!({"agent_type": "executor", "resources": {"volumes": [
                {"name": "v", "source": "/a", "target": "b", "type": "nfs"},
                {"name": "v", "source": "/a", "target": "/b"}
            ]}}),
        );
        errors(&doc)
    };
    assert_eq!(
        volume_errors,
        vec![
            "nodes[2].resources.volumes[0].target: target must be an absolute target path",
            "nodes[2].resources.volumes[0].type: type must be host",
            "nodes[2].resources.volumes[1].name: duplicate volume name \"v\" for node n3",
        ]
    );
    // Resources under config are checked where they are.
    let mut doc = base();
    add_node(
        &mut doc,
        json!({"agent_type": "executor", "config": {"resources": {"gpu_count": -2}}}),
    );
    assert_eq!(
        errors(&doc),
        vec!["nodes[2].config.resources.gpu_count: gpu_count must be zero or greater"]
    );
    // A realistic valid block, including numeric strings.
    let mut doc = base();
    add_node(
        &mut doc,
        json!({"agent_type": "executor", "resources": {
            "cpu_cores": 0.5, "memory_mb": "512Mi", "gpu_count": 1, "runtime_driver": "host_local",
            "devices": [{"kind": "gpu", "type": "nvidia/gpu", "count": 1, "min_memory_mb": 8000, "memory_operator": "="}],
            "ports": [{"label": "http", "port": 8080, "protocol": "TCP"}],
            "volumes": [{"name": "data", "source": "/srv/data", "target": "/data", "mode": "rw", "type": "host"}]
        }}),
    );
    assert_eq!(errors(&doc), Vec::<String>::new());
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
