//! The successful flows: initial deploy, rolling, canary, blue-green, no-op, rerun, rollback.

use serde_json::json;

use super::*;
use DeploymentCommand as C;
use DeploymentStatus as S;

const MIN: i64 = 500;

fn update() -> Value {
    json!({"max_parallel": 1, "min_healthy_ms": MIN})
}

#[test]
fn an_initial_deploy_becomes_stable_once_the_job_stays_healthy() {
    let mut g = given(vec![]);
    let events = g.run(deploy(target(1, T0), service([1, 1, 1], update())));
    assert_eq!(types(&events), ["deployment_created", "deployment_started"]);
    let rollout = g.state.rollout.as_ref().expect("rollout");
    assert_eq!(rollout.deployment_id, "dep_shop_1");
    assert_eq!(
        (rollout.version, rollout.job_id.as_str()),
        (Version(1), "job-1")
    );
    assert_eq!(rollout.plan.phase(), Some(Phase::Initial));
    g.run(C::BatchStarted {
        index: 0,
        now_ms: T0 + 5,
    });
    g.run(C::BatchHealthy {
        index: 0,
        at_ms: T0 + 10,
    });
    assert!(
        g.run(C::Tick {
            now_ms: T0 + 10 + MIN - 1
        })
        .is_empty(),
        "not healthy long enough"
    );
    let events = g.run(C::Tick {
        now_ms: T0 + 10 + MIN,
    });
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_successful"]
    );
    assert_eq!(g.status(), Some(S::Successful));
    assert_eq!(g.state.description, "initial deployment completed");
    assert_eq!(g.state.stable_version, Some(Version(1)));
    assert_eq!(g.state.stable_job_id.as_deref(), Some("job-1"));
    assert!(g.state.versions[&Version(1)].stable);
    g.assert_replays();
}

#[test]
fn a_rolling_update_replaces_one_agent_at_a_time_each_after_min_healthy() {
    let mut g = deployed([1, 1, 1], update());
    let events = g.run(deploy(target(2, T0 + 1000), service([2, 2, 2], update())));
    assert_eq!(types(&events), ["deployment_created", "deployment_started"]);
    let rollout = g.state.rollout.as_ref().expect("rollout");
    assert_eq!(rollout.job_id, "job-1", "in place: the running job is kept");
    assert_eq!(rollout.plan.changed_agent_ids, ["a", "b", "c"]);
    assert_eq!(rollout.plan.batches.len(), 3);
    let mut at = T0 + 2000;
    for agent in ["a", "b"] {
        let (index, batch) = g
            .state
            .rollout
            .as_ref()
            .and_then(|r| r.next())
            .expect("next");
        assert_eq!(batch.agents, [agent]);
        g.run(C::BatchStarted { index, now_ms: at });
        g.run(C::BatchHealthy {
            index,
            at_ms: at + 10,
        });
        assert!(
            g.state.rollout.as_ref().and_then(|r| r.next()).is_none(),
            "waits for min_healthy"
        );
        let events = g.run(C::Tick {
            now_ms: at + 10 + MIN,
        });
        assert_eq!(types(&events), ["deployment_batch_completed"]);
        assert_eq!(g.status(), Some(S::Running));
        at += 1000;
    }
    let events = g.roll_batch(at);
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_successful"]
    );
    assert_eq!(g.state.current_version, Some(Version(2)));
    assert_eq!(g.state.stable_job_id.as_deref(), Some("job-1"));
    g.assert_replays();
}

#[test]
fn an_unhealthy_report_restarts_the_min_healthy_wait() {
    let mut g = deployed([1, 1, 1], update());
    g.run(deploy(target(2, T0 + 1000), service([2, 1, 1], update())));
    g.run(C::BatchStarted {
        index: 0,
        now_ms: T0 + 2000,
    });
    g.run(C::BatchHealthy {
        index: 0,
        at_ms: T0 + 2000,
    });
    let events = g.run(C::BatchUnhealthy {
        index: 0,
        reason: "probe failed".into(),
        at_ms: T0 + 2400,
    });
    assert_eq!(types(&events), ["deployment_batch_unhealthy"]);
    assert!(
        g.run(C::Tick {
            now_ms: T0 + 2000 + MIN
        })
        .is_empty()
    );
    g.run(C::BatchHealthy {
        index: 0,
        at_ms: T0 + 2600,
    });
    assert!(
        g.run(C::Tick {
            now_ms: T0 + 2600 + MIN - 1
        })
        .is_empty()
    );
    let events = g.run(C::Tick {
        now_ms: T0 + 2600 + MIN,
    });
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_successful"]
    );
}

#[test]
fn zero_min_healthy_completes_on_the_healthy_report() {
    let mut g = deployed([1, 1, 1], json!({"min_healthy_ms": 0}));
    g.run(deploy(
        target(2, T0 + 1000),
        service([2, 1, 1], json!({"min_healthy_ms": 0})),
    ));
    g.run(C::BatchStarted {
        index: 0,
        now_ms: T0 + 2000,
    });
    let events = g.run(C::BatchHealthy {
        index: 0,
        at_ms: T0 + 2000,
    });
    assert_eq!(
        types(&events),
        [
            "deployment_batch_healthy",
            "deployment_batch_completed",
            "deployment_successful"
        ]
    );
}

#[test]
fn a_canary_waits_for_promotion_then_the_rest_rolls() {
    let policy = json!({"canary": 1, "max_parallel": 2, "min_healthy_ms": MIN});
    let mut g = deployed([1, 1, 1], policy.clone());
    g.run(deploy(target(2, T0 + 1000), service([2, 2, 2], policy)));
    assert_eq!(
        g.state.rollout.as_ref().map(|r| r.plan.phase()),
        Some(Some(Phase::Canary))
    );
    let events = g.roll_batch(T0 + 2000);
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_canary_ready"]
    );
    assert_eq!(g.status(), Some(S::AwaitingPromotion));
    assert!(
        g.run(C::Tick {
            now_ms: T0 + 999_999_999
        })
        .is_empty(),
        "no deadline while awaiting an operator"
    );
    let events = g.run(C::Promote { now_ms: T0 + 3000 });
    assert_eq!(types(&events), ["deployment_promoted"]);
    assert_eq!(g.status(), Some(S::Running));
    let (_, batch) = g
        .state
        .rollout
        .as_ref()
        .and_then(|r| r.next())
        .expect("next");
    assert_eq!(
        (batch.agents.clone(), batch.role),
        (vec!["b".to_string(), "c".to_string()], Role::Primary)
    );
    let events = g.roll_batch(T0 + 4000);
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_successful"]
    );
    g.assert_replays();
}

#[test]
fn auto_promote_rolls_on_after_healthy_canaries() {
    let policy =
        json!({"strategy": "canary", "canary": 1, "auto_promote": true, "min_healthy_ms": MIN});
    let mut g = deployed([1, 1, 1], policy.clone());
    g.run(deploy(target(2, T0 + 1000), service([2, 2, 1], policy)));
    let events = g.roll_batch(T0 + 2000);
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_canary_ready"]
    );
    assert_eq!(g.status(), Some(S::Running));
    let events = g.roll_batch(T0 + 3000);
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_successful"]
    );
    g.assert_replays();
}

/// The shop with a fourth node `d` after `c`: a different topology.
fn wider(v: u64, update: Value) -> Manifest {
    let mut m = service([v, v, v], update);
    let mut d = m.nodes[2].clone();
    d.node_id = "d".into();
    let mut e = m.edges[1].clone();
    (e.from_node, e.to_node) = ("c".into(), "d".into());
    m.nodes.push(d);
    m.edges.push(e);
    m
}

#[test]
fn a_topology_change_starts_a_candidate_job_and_promotion_cancels_the_old() {
    let policy = json!({"canary": 1, "min_healthy_ms": MIN});
    let mut g = deployed([1, 1, 1], policy.clone());
    g.run(deploy(target(2, T0 + 1000), wider(1, policy)));
    let rollout = g.state.rollout.as_ref().expect("rollout");
    assert_eq!(rollout.plan.mode(), Mode::BlueGreen);
    assert_eq!(
        (rollout.job_id.as_str(), rollout.source_job_id.as_deref()),
        ("job-2", Some("job-1"))
    );
    assert_eq!(rollout.plan.batches[0].role, Role::Candidate);
    let events = g.roll_batch(T0 + 2000);
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_canary_ready"]
    );
    assert_eq!(
        g.state.current_job_id.as_deref(),
        Some("job-1"),
        "old job serves until promotion"
    );
    let events = g.run(C::Promote { now_ms: T0 + 3000 });
    assert_eq!(
        types(&events),
        ["deployment_promoted", "deployment_successful"]
    );
    let DeploymentEvent::DeploymentSuccessful {
        cancel_job_id,
        job_id,
        ..
    } = &events[1]
    else {
        panic!("successful");
    };
    assert_eq!(
        (job_id.as_str(), cancel_job_id.as_deref()),
        ("job-2", Some("job-1"))
    );
    assert_eq!(g.state.stable_job_id.as_deref(), Some("job-2"));
    g.assert_replays();
}

#[test]
fn blue_green_without_canary_switches_once_healthy() {
    let mut g = deployed([1, 1, 1], update());
    g.run(deploy(target(2, T0 + 1000), wider(1, update())));
    let events = g.roll_batch(T0 + 2000);
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_successful"]
    );
    assert_eq!(g.state.stable_job_id.as_deref(), Some("job-2"));
}

#[test]
fn an_unchanged_manifest_is_a_stable_no_op_version() {
    let mut g = deployed([1, 1, 1], update());
    let events = g.run(deploy(target(2, T0 + 1000), service([1, 1, 1], update())));
    assert_eq!(types(&events), ["deployment_created", "deployment_noop"]);
    assert_eq!(g.status(), Some(S::Successful));
    assert_eq!(
        g.state.description,
        "deployment contained no runtime changes"
    );
    assert_eq!(g.state.stable_version, Some(Version(2)));
    assert_eq!(g.state.stable_job_id.as_deref(), Some("job-1"));
    g.assert_replays();
}

#[test]
fn a_batch_job_update_records_a_version_without_making_it_stable() {
    let mut g = given(vec![]);
    g.run(deploy(target(1, T0), graph("batch", [1, 1, 1], update())));
    g.roll_batch(T0 + 10);
    let events = g.run(deploy(
        target(2, T0 + 1000),
        graph("batch", [2, 1, 1], update()),
    ));
    assert_eq!(
        types(&events),
        ["deployment_created", "deployment_version_recorded"]
    );
    assert_eq!(g.status(), Some(S::VersionRecorded));
    assert_eq!(g.state.current_job_id.as_deref(), Some("job-2"));
    assert_eq!(
        (g.state.current_version, g.state.stable_version),
        (Some(Version(2)), Some(Version(1)))
    );
    assert!(!g.state.versions[&Version(2)].stable);
    g.assert_replays();
}

#[test]
fn rollback_to_a_version_or_a_tag_rolls_out_a_new_version() {
    let mut g = deployed([1, 1, 1], update());
    let tagged = Target {
        tag: Some("good".into()),
        ..target(2, T0 + 1000)
    };
    g.run(deploy(tagged, service([2, 1, 1], update())));
    g.roll_batch(T0 + 2000);
    g.run(deploy(target(3, T0 + 3000), service([3, 1, 1], update())));
    g.roll_batch(T0 + 4000);
    let back = C::Rollback {
        to: RollbackTarget::Version(Version(1)),
        target: target(4, T0 + 5000),
        reason: Some("bad".into()),
    };
    let events = g.run(back);
    let DeploymentEvent::DeploymentCreated {
        record,
        rollback_of,
        description,
        plan,
        ..
    } = &events[0]
    else {
        panic!("created");
    };
    assert_eq!(
        (record.version, *rollback_of),
        (Version(4), Some(Version(1)))
    );
    assert_eq!(description, "rollback to version 1: bad");
    assert_eq!(plan.changed_agent_ids, ["a"]);
    g.roll_batch(T0 + 6000);
    assert_eq!(g.state.stable_version, Some(Version(4)));
    let back = C::Rollback {
        to: RollbackTarget::Tag("good".into()),
        target: target(5, T0 + 7000),
        reason: None,
    };
    let events = g.run(back);
    let DeploymentEvent::DeploymentCreated {
        record,
        rollback_of,
        ..
    } = &events[0]
    else {
        panic!("created");
    };
    assert_eq!(
        (record.version, *rollback_of),
        (Version(5), Some(Version(2)))
    );
    assert_eq!(record.manifest, g.state.versions[&Version(2)].manifest);
    g.roll_batch(T0 + 8000);
    let events = g.run(C::Rollback {
        to: RollbackTarget::LastStable,
        target: target(6, T0 + 9000),
        reason: None,
    });
    let DeploymentEvent::DeploymentCreated { rollback_of, .. } = &events[0] else {
        panic!("created");
    };
    assert_eq!(
        *rollback_of,
        Some(Version(4)),
        "newest stable version other than the current"
    );
    g.assert_replays();
}

#[test]
fn the_view_shows_the_rollout_and_every_version() {
    let policy = json!({"canary": 1, "max_parallel": 1, "min_healthy_ms": MIN});
    let mut g = deployed([1, 1, 1], policy.clone());
    g.run(deploy(target(2, T0 + 1000), service([2, 2, 2], policy)));
    g.roll_batch(T0 + 2000);
    let v = view(&g.state);
    assert_eq!(v["deployment_id"], "dep_shop_2");
    assert_eq!(v["status"], "awaiting_promotion");
    assert_eq!(
        (v["mode"].clone(), v["phase"].clone()),
        (json!("agent_level"), json!("canary"))
    );
    assert_eq!(
        (v["stable_version"].clone(), v["target_version"].clone()),
        (json!("1"), json!("2"))
    );
    assert_eq!(v["canary_agent_ids"], json!(["a"]));
    assert_eq!(v["remaining_agent_ids"], json!(["b", "c"]));
    assert_eq!(v["versions"][1]["stable"], false);
}

#[test]
fn promoting_canaries_that_covered_every_change_finishes_at_once() {
    let policy = json!({"canary": 5, "min_healthy_ms": MIN});
    let mut g = deployed([1, 1, 1], policy.clone());
    g.run(deploy(target(2, T0 + 1000), service([2, 2, 1], policy)));
    g.roll_batch(T0 + 2000);
    let events = g.run(C::Promote { now_ms: T0 + 3000 });
    assert_eq!(
        types(&events),
        ["deployment_promoted", "deployment_successful"]
    );
    assert_eq!(g.state.stable_version, Some(Version(2)));
}

#[test]
fn events_are_tagged_in_snake_case() {
    let event = DeploymentEvent::DeploymentRunning { at_ms: 5 };
    assert_eq!(
        event.to_json(),
        r#"{"type":"deployment_running","data":{"at_ms":5}}"#
    );
}
