use serde_json::{Value, json};

use crate::domain::manifest::{Manifest, parse_manifest};
use crate::domain::routing::{RouteDecision, RouteTarget, route, route_context};

/// A manifest whose only interesting node is `src`, with the given outbound edges.
fn manifest(edges: Value) -> Manifest {
    let doc = json!({
        "manifest_version": "1.0", "graph_id": "g", "entrypoints": ["src"],
        "nodes": [
            {"node_id": "src", "agent_type": "router"},
            {"node_id": "a", "agent_type": "router"},
            {"node_id": "b", "agent_type": "router"},
            {"node_id": "c", "agent_type": "router"}
        ],
        "edges": edges
    });
    parse_manifest(&doc).unwrap_or_else(|e| panic!("test manifest is valid: {e:?}"))
}

fn edge(id: &str, to: &str, ty: &str, mode: &str, conditions: Value) -> Value {
    json!({"edge_id": id, "from_node": "src", "to_node": to, "message_type": ty, "routing_mode": mode, "conditions": conditions})
}

fn level_is(level: &str) -> Value {
    json!({"expr": format!("${{payload.level}} == \"{level}\"")})
}

fn ctx(level: &str) -> Value {
    route_context(
        &json!({"type": "in", "body": {}}),
        &json!({"level": level}),
        &json!({}),
    )
}

fn targets(d: &RouteDecision) -> Vec<&str> {
    d.targets.iter().map(|t| t.edge_id.as_str()).collect()
}

#[test]
fn broadcast_delivers_to_every_matching_edge_including_wildcards() {
    let m = manifest(json!([
        edge("e_a", "a", "alert", "broadcast", json!({})),
        edge("e_b", "b", "*", "broadcast", json!({})),
        edge("e_c", "c", "alert", "broadcast", level_is("low")),
        edge("e_other", "c", "other", "broadcast", json!({}))
    ]));
    let d = route(&m, "src", "alert", &ctx("high"));
    assert_eq!(
        d.targets,
        vec![
            RouteTarget {
                edge_id: "e_a".into(),
                to_node: "a".into()
            },
            RouteTarget {
                edge_id: "e_b".into(),
                to_node: "b".into()
            },
        ]
    );
    let evaluated: Vec<(&str, bool)> = d
        .evaluations
        .iter()
        .map(|e| (e.edge_id.as_str(), e.matched))
        .collect();
    assert_eq!(
        evaluated,
        vec![("e_a", true), ("e_b", true), ("e_c", false)],
        "non-candidates are not evaluated"
    );
    assert_eq!(d.no_match_reason(), None);
}

#[test]
fn first_match_takes_the_first_matching_edge_in_manifest_order() {
    let m = manifest(json!([
        edge("low", "a", "route_done", "first_match", level_is("low")),
        edge("high", "b", "route_done", "first_match", level_is("high")),
        edge("fallback", "c", "route_done", "first_match", json!({}))
    ]));
    assert_eq!(
        targets(&route(&m, "src", "route_done", &ctx("high"))),
        vec!["high"]
    );
    assert_eq!(
        targets(&route(&m, "src", "route_done", &ctx("low"))),
        vec!["low"]
    );
    assert_eq!(
        targets(&route(&m, "src", "route_done", &ctx("other"))),
        vec!["fallback"]
    );
}

#[test]
fn a_first_match_edge_does_not_swallow_broadcast_edges() {
    // The original runtime switched the whole emission to first-match here (core-spec 13.7).
    let m = manifest(json!([
        edge("audit", "a", "x", "broadcast", json!({})),
        edge("high", "b", "x", "first_match", level_is("high")),
        edge("any", "c", "x", "first_match", json!({}))
    ]));
    assert_eq!(
        targets(&route(&m, "src", "x", &ctx("high"))),
        vec!["audit", "high"]
    );
    assert_eq!(
        targets(&route(&m, "src", "x", &ctx("low"))),
        vec!["audit", "any"]
    );
}

#[test]
fn all_match_delivers_along_all_or_none() {
    let m = manifest(json!([
        edge("needs_high", "a", "x", "all_match", level_is("high")),
        edge("always", "b", "x", "all_match", json!({})),
        edge("plain", "c", "x", "broadcast", json!({}))
    ]));
    assert_eq!(
        targets(&route(&m, "src", "x", &ctx("high"))),
        vec!["needs_high", "always", "plain"]
    );
    assert_eq!(targets(&route(&m, "src", "x", &ctx("low"))), vec!["plain"]);
}

#[test]
fn no_target_explains_why() {
    let m = manifest(json!([
        edge("e1", "a", "x", "broadcast", level_is("high")),
        edge("e2", "b", "x", "all_match", json!({})),
        edge("e3", "c", "x", "all_match", level_is("high"))
    ]));
    let none = route(&m, "src", "unrouted", &ctx("high"));
    assert!(none.targets.is_empty() && none.evaluations.is_empty());
    assert_eq!(
        none.no_match_reason().as_deref(),
        Some("no outbound edge from \"src\" carries message type \"unrouted\"")
    );

    let unmatched = route(&m, "src", "x", &ctx("low"));
    assert!(unmatched.targets.is_empty());
    assert_eq!(
        unmatched.no_match_reason().as_deref(),
        Some(
            "edges [\"e1\", \"e2\", \"e3\"] from \"src\" carry message type \"x\" but no condition matched, \
             and all_match edges deliver only when every one of them matches"
        )
    );

    let leaf = route(&m, "a", "x", &ctx("high"));
    assert_eq!(
        leaf.no_match_reason().as_deref(),
        Some("no outbound edge from \"a\" carries message type \"x\"")
    );
}

#[test]
fn plain_no_match_reason_and_unknown_agents() {
    let m = manifest(json!([edge(
        "e1",
        "a",
        "x",
        "first_match",
        level_is("high")
    )]));
    let d = route(&m, "src", "x", &ctx("low"));
    assert_eq!(
        d.no_match_reason().as_deref(),
        Some("edges [\"e1\"] from \"src\" carry message type \"x\" but no condition matched")
    );
    assert!(route(&m, "nobody", "x", &ctx("low")).targets.is_empty());
}

#[test]
fn conditions_see_message_payload_and_state() {
    let m = manifest(json!([
        edge(
            "by_header",
            "a",
            "x",
            "broadcast",
            json!({"path": "message.headers.tenant", "value": "acme"})
        ),
        edge(
            "by_state",
            "b",
            "x",
            "broadcast",
            json!({"expr": "${state.count} >= 3"})
        ),
        edge(
            "by_type",
            "c",
            "x",
            "broadcast",
            json!({"expr": "${message.type} == in"})
        )
    ]));
    let c = route_context(
        &json!({"type": "in", "headers": {"tenant": "acme"}}),
        &json!({}),
        &json!({"count": 3}),
    );
    assert_eq!(
        targets(&route(&m, "src", "x", &c)),
        vec!["by_header", "by_state", "by_type"]
    );
    let c = route_context(
        &json!({"type": "other", "headers": {}}),
        &json!({}),
        &json!({"count": 1}),
    );
    assert!(route(&m, "src", "x", &c).targets.is_empty());
}
