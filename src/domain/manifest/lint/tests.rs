use serde_json::{Value, json};

use super::manifest_warnings;

fn warnings(manifest: Value) -> Vec<String> {
    manifest_warnings(&manifest)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn near_misses_get_a_suggestion_with_their_path() {
    let m = json!({
        "manifest_version": "1", "graph_id": "g", "job_nme": "x",
        "nodes": [
            {"node_id": "a", "agent_type": "router", "role": "root"},
            {"node_id": "b", "agent_type": "executor",
             "config": {"comand": "x", "output_mesage_type": "t", "my_setting": 1}},
        ],
        "edges": [{"from_node": "a", "to_node": "b", "mesage_type": "t"}],
    });
    assert_eq!(
        warnings(m),
        [
            "job_nme: unknown key \"job_nme\"; did you mean \"job_name\"?",
            "nodes[1].config.comand: unknown key \"comand\"; did you mean \"command\"?",
            "nodes[1].config.output_mesage_type: unknown key \"output_mesage_type\"; did you mean \"output_message_type\"?",
            "edges[0].mesage_type: unknown key \"mesage_type\"; did you mean \"message_type\"?",
        ]
    );
}

#[test]
fn closed_objects_report_every_unknown_key() {
    let m = json!({
        "manifest_version": "1", "graph_id": "g",
        "agents": {"nodes": [{"node_id": "a", "agent_type": "router",
            "policies": {"restart": {"atempts": 2}}}]},
        "policies": {"update": {"strategy": "canary", "canarys": 1, "colour": "blue"}},
        "schedule": {"crons": ["@hourly"], "timezon": "UTC"},
        "triggers": [{"event_type": "e", "filter": {}}],
    });
    assert_eq!(
        warnings(m),
        [
            "agents.nodes[0].policies.restart.atempts: unknown key \"atempts\"; did you mean \"attempts\"?",
            "policies.update.canarys: unknown key \"canarys\"; did you mean \"canary\"?",
            "policies.update.colour: unknown key \"colour\" is ignored",
            "schedule.timezon: unknown key \"timezon\"; did you mean \"timezone\"?",
            "triggers[0].filter: unknown key \"filter\"; did you mean \"filters\"?",
        ]
    );
}

#[test]
fn free_form_keys_in_open_objects_are_not_reported() {
    let m = json!({
        "manifest_version": "1", "graph_id": "g", "license": "MIT", "my_extension": {},
        "nodes": [{"node_id": "a", "agent_type": "module", "display_name": "A",
            "config": {"command": "x", "seed": 7, "region_count": 3}}],
    });
    assert_eq!(warnings(m), Vec::<String>::new());
}

#[test]
fn keys_read_elsewhere_say_where_they_belong() {
    let m = json!({
        "manifest_version": "1", "graph_id": "g", "job_type": "service",
        "nodes": [{"node_id": "a", "agent_type": "router", "role": "root"}],
        "edges": [],
    });
    assert_eq!(
        warnings(m),
        [
            "job_type: \"job_type\" is not read at the top level; it belongs in type (or policies.job_type)"
        ]
    );
}
