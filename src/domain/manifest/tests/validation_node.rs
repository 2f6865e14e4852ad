//! Per-node validation rules (identity, agent type x template, module nodes, payload paths,
//! resources), one case per rule with the exact `path: message`.

use serde_json::{Value, json};

use super::{add_node, base, check, errors, set};
use crate::domain::manifest::PROCESS_MODULE_HOWTO;

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
    let cases: [(Value, String); 7] = [
        (json!({"upload_path": "/etc"}), format!("nodes[2].config.upload_path: {escape}: \"/etc\"")),
        (json!({"upload_path": "../x"}), format!("nodes[2].config.upload_path: {escape}: \"../x\"")),
        (json!({"upload_path": "a/../../x"}), format!("nodes[2].config.upload_path: {escape}: \"a/../../x\"")),
        (json!({"upload_paths": [{"source": "ok"}, {"source": "/abs"}]}), format!("nodes[2].config.upload_paths[1].source: {escape}: \"/abs\"")),
        (json!({"policy": ""}), format!("nodes[2].config.policy: {escape}: \"\"")),
        (json!({"upload_paths": [{"target": "x"}]}), "nodes[2].config.upload_paths[0].source: every upload_paths entry needs a source string (a path, or {\"source\": path})".to_string()),
        // A bare path is an entry too (the executor reads it so), and is checked the same way.
        (json!({"upload_paths": ["ok.py", "../x"]}), format!("nodes[2].config.upload_paths[1]: {escape}: \"../x\"")),
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
