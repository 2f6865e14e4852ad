//! Every accepted layout and alias lands in the same typed shape, and that shape survives a
//! JSON round trip (it is what a job's first event stores).

use serde_json::{Value, json};

use super::{base, ok, set};
use crate::domain::manifest::{
    AgentType, ENTRYPOINTS_KEY, GraphLayout, JobType, Manifest, Template,
};
use crate::domain::routing::{Condition, Op, RoutingMode};

#[test]
fn flat_layout_defaults() {
    let m = ok(&base());
    assert_eq!(m.manifest_version, "1.0");
    assert_eq!(
        (m.graph_id.as_str(), m.job_name.as_str()),
        ("g", "g"),
        "job_name falls back to graph_id"
    );
    assert_eq!(m.job_type, JobType::Batch);
    assert_eq!(m.layout, GraphLayout::Flat);
    assert_eq!(
        m.entrypoints,
        vec!["a"],
        "role root makes an implicit entrypoint"
    );
    assert_eq!(m.nodes[0].template, Template::Generic);
    assert_eq!(m.nodes[0].config, serde_json::Map::new());
    assert_eq!(m.nodes[0].resources, json!({}));
    assert_eq!(m.nodes[1].template, Template::Reduce);
    assert_eq!(m.edges[0].routing_mode, RoutingMode::Broadcast);
    assert_eq!(m.edges[0].conditions, Condition::Always);
    assert_eq!(m.policies, json!({}));
    assert_eq!(m.metadata, json!({}));
    assert!(m.initial_inputs.is_empty());
    assert!(m.extensions.is_empty());
}

#[test]
fn aliases_are_normalised() {
    let doc = json!({
        "manifest_version": 1.0, "graph_id": "g", "job_name": "Nice name",
        "nodes": [
            {"id": "a", "agentType": "relay", "role": "root_coordinator"},
            {"node_id": "w", "agent_type": "sandbox_worker", "kind": "accumulator", "config": {"command": "true"}},
            {"node_id": "c", "agent_type": "collector", "type": ""},
            {"node_id": "s", "agent_type": "sensor", "type": null}
        ],
        "edges": [
            {"id": "e1", "from": "a", "to": "w", "event": "go", "routing_mode": "first_match",
             "conditions": {"expr": "${payload.n} > 2"}, "required": true},
            {"from_node": "w", "to_node": "c", "message_type": "*"}
        ]
    });
    let m = ok(&doc);
    assert_eq!(m.manifest_version, "1.0");
    assert_eq!(m.job_name, "Nice name");
    let types: Vec<(AgentType, Template)> =
        m.nodes.iter().map(|n| (n.agent_type, n.template)).collect();
    assert_eq!(
        types,
        vec![
            (AgentType::Router, Template::Generic),
            (AgentType::Executor, Template::Reduce),
            (AgentType::Aggregator, Template::Generic),
            (AgentType::Sensor, Template::Generic),
        ]
    );
    let e = &m.edges[0];
    assert_eq!(
        (
            e.edge_id.as_deref(),
            e.from_node.as_str(),
            e.to_node.as_str()
        ),
        (Some("e1"), "a", "w")
    );
    assert_eq!(
        (e.message_type.as_str(), e.routing_mode),
        ("go", RoutingMode::FirstMatch)
    );
    assert_eq!(
        e.conditions,
        Condition::Compare {
            path: "payload.n".into(),
            op: Op::Gt,
            value: json!(2)
        }
    );
    assert_eq!(
        e.extensions.get("required"),
        Some(&json!(true)),
        "unknown edge keys are kept"
    );
    assert_eq!(
        m.edges[1].label(),
        "w->c",
        "edges without an id get a stable label"
    );
    assert_eq!(m.entrypoints, vec!["a"]);
}

#[test]
fn agents_layout_with_runtime_inputs() {
    let doc = json!({
        "apiVersion": "mn.workflow/v2", "kind": "Workflow", "id": "demo", "manifest_version": "1.0",
        "agents": {"schema": "mn.agents.communication_graph/v1", "entrypoints": ["parse"],
            "nodes": [
                {"node_id": "parse", "agent_type": "executor", "display_name": "Parse",
                 "config": {"command": ["python3", "worker.py"], "upload_path": "worker"}},
                {"node_id": "sink", "agent_type": "aggregator", "type": "reduce", "config": {"terminal_sink": true}}
            ],
            "edges": [{"edge_id": "p2s", "from_node": "parse", "to_node": "sink", "message_type": "parsed"}]},
        "runtime": {"initial_inputs": {"parse": {"records": [1, 2]}}, "store": {"type": "local_run_store"}},
        "workflow": {"steps": []}
    });
    let m = ok(&doc);
    assert_eq!(m.layout, GraphLayout::Agents);
    assert_eq!(
        (m.graph_id.as_str(), m.job_name.as_str()),
        ("demo", "demo"),
        "graph_id falls back to id"
    );
    assert_eq!(m.entrypoints, vec!["parse"]);
    assert_eq!(
        m.initial_inputs["parse"],
        vec![json!({"records": [1, 2]})],
        "a single payload is wrapped in a list"
    );
    assert_eq!(
        m.nodes[0].extensions.get("display_name"),
        Some(&json!("Parse"))
    );
    assert_eq!(m.node_path(1), "agents.nodes[1]");
    // Lifted parts are not stored twice; the rest of each container is kept.
    assert_eq!(
        m.extensions.get("agents"),
        Some(&json!({"schema": "mn.agents.communication_graph/v1"}))
    );
    assert_eq!(
        m.extensions.get("runtime"),
        Some(&json!({"store": {"type": "local_run_store"}}))
    );
    assert_eq!(m.extensions.get("kind"), Some(&json!("Workflow")));
    assert_eq!(m.extensions.get("workflow"), Some(&json!({"steps": []})));
}

#[test]
fn flow_layout_and_bare_list_inputs() {
    let doc = json!({
        "manifest_version": "1.0", "workflow_id": "wf", "type": "Service",
        "entrypoints": "in",
        "initial_inputs": [{"x": 1}, {"x": 2}],
        "flow": {"entrypoint": "in", "nodes": [{"node_id": "in", "agent_type": "router"}], "edges": []}
    });
    let m = ok(&doc);
    assert_eq!(m.layout, GraphLayout::Flow);
    assert_eq!(m.graph_id, "wf", "graph_id falls back to workflow_id");
    assert_eq!(m.job_type, JobType::Service, "type is case-insensitive");
    assert_eq!(
        m.entrypoints,
        vec!["in"],
        "a single entrypoint string is accepted"
    );
    assert_eq!(
        m.initial_inputs[ENTRYPOINTS_KEY],
        vec![json!({"x": 1}), json!({"x": 2})]
    );
    assert_eq!(m.extensions.get("flow"), Some(&json!({"entrypoint": "in"})));
}

#[test]
fn job_type_sources() {
    let cases: [(&str, Value, JobType); 5] = [
        ("/type", json!("sysbatch"), JobType::Sysbatch),
        ("/policies", json!({"job_type": "system"}), JobType::System),
        (
            "/policies",
            json!({"scheduler": {"job_type": "service"}}),
            JobType::Service,
        ),
        ("/daemon", json!(true), JobType::Service),
        ("/daemon", json!(false), JobType::Batch),
    ];
    for (pointer, value, expected) in cases {
        let mut doc = base();
        set(&mut doc, pointer, value.clone());
        assert_eq!(ok(&doc).job_type, expected, "{pointer} = {value}");
    }
}

#[test]
fn initial_inputs_lists_are_kept_and_entrypoints_deduplicated() {
    let mut doc = base();
    set(
        &mut doc,
        "/initial_inputs",
        json!({"a": [{"n": 1}, {"n": 2}], ENTRYPOINTS_KEY: {"n": 3}}),
    );
    set(&mut doc, "/entrypoints", json!(["a", "b", "a"]));
    let m = ok(&doc);
    assert_eq!(m.initial_inputs["a"].len(), 2);
    assert_eq!(m.initial_inputs[ENTRYPOINTS_KEY], vec![json!({"n": 3})]);
    assert_eq!(m.entrypoints, vec!["a", "b"]);
}

#[test]
fn normalised_form_round_trips() {
    let mut doc = base();
    set(
        &mut doc,
        "/edges/0/conditions",
        json!({"all": [
            {"expr": "${payload.kind} == 'alert'"},
            {"not": {"path": "state.muted", "op": "exists"}},
            {"any": [{"path": "message.headers.level", "op": "in", "value": ["high", "critical"]}]}
        ]}),
    );
    set(&mut doc, "/edges/0/routing_mode", json!("all_match"));
    set(&mut doc, "/nodes/1/resources", json!({"cpu_cores": 1}));
    set(&mut doc, "/policies", json!({"recovery_mode": "auto"}));
    set(
        &mut doc,
        "/initial_inputs",
        json!({"a": {"hello": "world"}}),
    );
    set(&mut doc, "/x_custom", json!({"kept": true}));
    let m = ok(&doc);

    let stored = m.to_value();
    let text = serde_json::to_string(&stored).expect("plain JSON serialises");
    let reread: Value = serde_json::from_str(&text).expect("and parses back");
    let back = Manifest::from_normalised(&reread).expect("normalised form reads back");
    assert_eq!(back, m);
    assert_eq!(
        stored["edges"][0]["conditions"]["all"][0],
        json!({"path": "payload.kind", "op": "==", "value": "alert"})
    );
    assert_eq!(stored["extensions"]["x_custom"], json!({"kept": true}));
    assert!(Manifest::from_normalised(&json!({"graph_id": 1})).is_err());
}

#[test]
fn every_agent_type_accepts_exactly_its_templates() {
    use AgentType::*;
    use Template::*;
    let allowed = [
        (Router, vec![Generic, Map]),
        (Executor, vec![Generic, Stream, Map, Reduce, Batch]),
        (Aggregator, vec![Generic, Reduce]),
        (Sensor, vec![Generic]),
        (Module, vec![Generic, Stream, Map, Reduce, Batch]),
    ];
    for (agent, templates) in allowed {
        for t in [Generic, Stream, Map, Reduce, Batch] {
            assert_eq!(agent.allows(t), templates.contains(&t), "{agent:?} x {t:?}");
        }
    }
}
