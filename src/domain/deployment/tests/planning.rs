//! Keys, ids, versions and update planning.

use serde_json::json;

use super::*;
use crate::domain::policy::{UpdatePolicy, UpdateStrategy};

#[test]
fn the_key_comes_from_the_first_non_blank_source() {
    let mut doc = json!({
        "manifest_version": "1.0", "graph_id": "g", "job_name": "name",
        "nodes": [{"node_id": "a", "agent_type": "router"}], "entrypoints": ["a"],
        "metadata": {"deployment_key": " ", "mn_deployment_key": "mn", "mn_cli": {"deployment_key": "cli"}},
        "deployment": {"key": "dep"}, "policies": {"deployment_key": "pol"},
    });
    assert_eq!(
        resolve_key(Some("explicit"), &parse(doc.clone())),
        "explicit"
    );
    assert_eq!(
        resolve_key(Some(""), &parse(doc.clone())),
        "mn",
        "blank values are skipped"
    );
    let steps = [
        ("/metadata/mn_deployment_key", "cli"),
        ("/metadata/mn_cli/deployment_key", "dep"),
        ("/deployment/key", "pol"),
        ("/policies/deployment_key", "name"),
        ("/job_name", "g"),
    ];
    for (pointer, expected) in steps {
        let (parent, field) = pointer.rsplit_once('/').expect("pointer");
        if let Some(map) = doc.pointer_mut(parent).and_then(Value::as_object_mut) {
            map.remove(field);
        }
        assert_eq!(
            resolve_key(None, &parse(doc.clone())),
            expected,
            "without {pointer}"
        );
    }
}

#[test]
fn ids_are_sanitised_keys_with_the_unique_part() {
    assert_eq!(deployment_id("shop", 7), "dep_shop_7");
    assert_eq!(deployment_id("  my shop/eu:1 ", 3), "dep_my-shop-eu-1_3");
    assert_eq!(deployment_id("a.b_c-d", 1), "dep_a.b_c-d_1");
    assert_eq!(deployment_id("//", 2), "dep_key_2");
}

#[test]
fn versions_count_up_from_one_as_decimal_strings() {
    assert_eq!(Version::next_after([]), Version(1));
    let existing = [Version(2), Version(10), Version(9)];
    assert_eq!(Version::next_after(&existing), Version(11));
    assert_eq!(Version::parse("12"), Some(Version(12)));
    assert_eq!(Version::parse("-1"), None);
    assert_eq!(Version::parse(""), None);
    assert_eq!(serde_json::to_value(Version(3)).expect("json"), json!("3"));
    assert!(serde_json::from_value::<Version>(json!("x")).is_err());
}

fn policy(update: Value) -> UpdatePolicy {
    UpdatePolicy::parse(&update, "policies.update").expect("valid policy")
}

fn active(m: &Manifest) -> Option<Source<'_>> {
    Some(Source {
        manifest: m,
        active: true,
        payloads_changed: false,
    })
}

#[test]
fn a_new_key_starts_the_whole_job() {
    let m = service([1, 1, 1], json!({}));
    let plan = plan_update(None, &m, &UpdatePolicy::default());
    assert_eq!(plan.kind, PlanKind::Initial);
    assert_eq!(plan.phase(), Some(Phase::Initial));
    assert_eq!(plan.batches.len(), 1);
    assert_eq!(plan.batches[0].agents, ["a", "b", "c"]);
}

#[test]
fn batch_jobs_are_rerun() {
    let old = graph("batch", [1, 1, 1], json!({}));
    let new = graph("batch", [2, 1, 1], json!({}));
    let plan = plan_update(active(&old), &new, &UpdatePolicy::default());
    assert_eq!((plan.kind, plan.batches.len()), (PlanKind::Rerun, 0));
}

#[test]
fn a_topology_change_or_a_finished_source_goes_blue_green() {
    let old = service([1, 1, 1], json!({}));
    let mut narrower = old.clone();
    narrower.edges.retain(|e| e.to_node != "c");
    let plan = plan_update(active(&old), &narrower, &UpdatePolicy::default());
    assert_eq!(plan.kind, PlanKind::BlueGreen);
    assert_eq!(plan.batches[0].role, Role::Primary);
    let same = service([1, 1, 1], json!({}));
    let stopped = Source {
        manifest: &old,
        active: false,
        payloads_changed: false,
    };
    let canary = policy(json!({"canary": 1}));
    let plan = plan_update(Some(stopped), &same, &canary);
    assert_eq!(plan.kind, PlanKind::BlueGreen);
    assert_eq!(
        plan.batches[0].role,
        Role::Candidate,
        "canary: a candidate job"
    );
}

#[test]
fn reordered_lists_are_not_a_change() {
    let old = service([1, 1, 1], json!({}));
    let mut new = old.clone();
    new.nodes.reverse();
    new.edges.reverse();
    assert!(same_topology(&old, &new));
    let plan = plan_update(active(&old), &new, &UpdatePolicy::default());
    assert_eq!(plan.kind, PlanKind::NoOp);
}

#[test]
fn changed_agents_roll_in_a_canary_batch_then_max_parallel_chunks() {
    let old = service([1, 1, 1], json!({}));
    let new = service([2, 2, 2], json!({}));
    let cases = [
        (
            json!({"max_parallel": 1}),
            vec![
                (vec!["a"], Role::Primary),
                (vec!["b"], Role::Primary),
                (vec!["c"], Role::Primary),
            ],
        ),
        (
            json!({"max_parallel": 2}),
            vec![(vec!["a", "b"], Role::Primary), (vec!["c"], Role::Primary)],
        ),
        (
            json!({"canary": 1, "max_parallel": 5}),
            vec![(vec!["a"], Role::Canary), (vec!["b", "c"], Role::Primary)],
        ),
        (
            json!({"strategy": "canary", "max_parallel": 1}),
            vec![
                (vec!["a"], Role::Canary),
                (vec!["b"], Role::Primary),
                (vec!["c"], Role::Primary),
            ],
        ),
        (
            json!({"canary": 9}),
            vec![(vec!["a", "b", "c"], Role::Canary)],
        ),
    ];
    for (update, expected) in cases {
        let plan = plan_update(active(&old), &new, &policy(update.clone()));
        let got: Vec<(Vec<&str>, Role)> = plan
            .batches
            .iter()
            .map(|b| (b.agents.iter().map(String::as_str).collect(), b.role))
            .collect();
        assert_eq!(plan.kind, PlanKind::AgentLevel, "{update}");
        assert_eq!(got, expected, "{update}");
    }
}

#[test]
fn only_runtime_fields_count_as_changes() {
    let old = service([1, 1, 1], json!({}));
    let mut new = service([1, 3, 1], json!({}));
    new.nodes[0]
        .extensions
        .insert("display_name".into(), json!("A"));
    new.nodes[2]
        .extensions
        .insert("constraints".into(), json!([{"attribute": "gpu"}]));
    assert_eq!(changed_nodes(&old, &new), ["b", "c"]);
}

#[test]
fn the_blue_green_strategy_switches_jobs_even_for_agent_changes() {
    let old = service([1, 1, 1], json!({}));
    let new = service([2, 1, 1], json!({}));
    let plan = plan_update(
        active(&old),
        &new,
        &policy(json!({"strategy": "blue-green"})),
    );
    assert_eq!(plan.kind, PlanKind::BlueGreen);
    let same = service([1, 1, 1], json!({}));
    let plan = plan_update(
        active(&old),
        &same,
        &policy(json!({"strategy": "blue-green"})),
    );
    assert_eq!(plan.kind, PlanKind::NoOp, "nothing to switch to");
}

#[test]
fn canary_counts() {
    let p = |canary, strategy| UpdatePolicy {
        canary,
        strategy,
        ..UpdatePolicy::default()
    };
    assert_eq!(canary_count(&p(2, UpdateStrategy::Rolling), 5), 2);
    assert_eq!(canary_count(&p(9, UpdateStrategy::Rolling), 3), 3);
    assert_eq!(canary_count(&p(0, UpdateStrategy::Canary), 3), 1);
    assert_eq!(canary_count(&p(0, UpdateStrategy::Rolling), 3), 0);
}

#[test]
fn changed_payloads_replace_the_agents_that_run_them() {
    let routers = service([1, 1, 1], json!({}));
    let new_scripts = |m| Source {
        manifest: m,
        active: true,
        payloads_changed: true,
    };
    // Routers run no scripts: new payloads change nothing at run time.
    let plan = plan_update(
        Some(new_scripts(&routers)),
        &routers,
        &UpdatePolicy::default(),
    );
    assert_eq!(plan.kind, PlanKind::NoOp);
    let mut m = routers.clone();
    m.nodes[1].agent_type = crate::domain::manifest::AgentType::Executor;
    let plan = plan_update(Some(new_scripts(&m)), &m, &UpdatePolicy::default());
    assert_eq!(plan.kind, PlanKind::AgentLevel);
    assert_eq!(plan.changed_agent_ids, ["b"]);
}
