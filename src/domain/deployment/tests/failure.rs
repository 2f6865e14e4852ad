//! Deadlines, automatic revert, operator controls and refused commands.

use serde_json::json;

use super::*;
use DeploymentCommand as C;
use DeploymentStatus as S;

const MIN: i64 = 100;
const HEALTHY: i64 = 5_000;
const PROGRESS: i64 = 20_000;

fn update(auto_revert: bool) -> Value {
    json!({"max_parallel": 1, "min_healthy_ms": MIN, "healthy_deadline_ms": HEALTHY,
           "progress_deadline_ms": PROGRESS, "auto_revert": auto_revert})
}

/// Version 1 stable, version 2 (all three agents changed) rolling out since `T0 + 1000`.
fn rolling(auto_revert: bool) -> Given {
    let mut g = deployed([1, 1, 1], update(auto_revert));
    g.run(deploy(
        target(2, T0 + 1000),
        service([2, 2, 2], update(auto_revert)),
    ));
    g
}

fn failure(events: &[DeploymentEvent]) -> String {
    events
        .iter()
        .find_map(|e| match e {
            DeploymentEvent::DeploymentFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("a failure")
}

#[test]
fn a_batch_not_healthy_within_the_healthy_deadline_fails_the_rollout() {
    let mut g = rolling(false);
    g.roll_batch(T0 + 2000);
    g.run(C::BatchStarted {
        index: 1,
        now_ms: T0 + 3000,
    });
    assert!(
        g.run(C::Tick {
            now_ms: T0 + 3000 + HEALTHY - 1
        })
        .is_empty()
    );
    let events = g.run(C::Tick {
        now_ms: T0 + 3000 + HEALTHY,
    });
    assert_eq!(types(&events), ["deployment_failed"]);
    assert_eq!(
        failure(&events),
        "batch 2 (b) was not healthy within healthy_deadline_ms 5000"
    );
    assert_eq!(g.status(), Some(S::Failed));
    assert_eq!(
        g.state.stable_version,
        Some(Version(1)),
        "the failed version never became stable"
    );
    assert!(
        g.run(C::Tick {
            now_ms: T0 + 99_000
        })
        .is_empty(),
        "a failed rollout stays failed"
    );
    g.assert_replays();
}

#[test]
fn an_unhealthy_report_past_the_deadline_fails_with_its_reason() {
    let mut g = rolling(false);
    g.run(C::BatchStarted {
        index: 0,
        now_ms: T0 + 2000,
    });
    let unhealthy = |at| C::BatchUnhealthy {
        index: 0,
        reason: "service web is critical".into(),
        at_ms: at,
    };
    assert!(
        g.run(unhealthy(T0 + 2000 + HEALTHY - 1)).is_empty(),
        "never healthy: nothing recorded before the deadline"
    );
    let events = g.run(unhealthy(T0 + 2000 + HEALTHY));
    assert_eq!(
        failure(&events),
        "batch 1 (a) was not healthy within healthy_deadline_ms 5000: service web is critical"
    );
    g.assert_replays();
}

#[test]
fn no_batch_progress_within_the_progress_deadline_fails_the_rollout() {
    let mut g = rolling(false);
    g.roll_batch(T0 + 2000);
    // Batch 1 completed at T0 + 2000 + MIN; the runtime never starts batch 2.
    let last = T0 + 2000 + MIN;
    assert!(
        g.run(C::Tick {
            now_ms: last + PROGRESS - 1
        })
        .is_empty()
    );
    let events = g.run(C::Tick {
        now_ms: last + PROGRESS,
    });
    assert_eq!(
        failure(&events),
        "no progress within progress_deadline_ms 20000 (batch 2 of 3: b)"
    );
}

#[test]
fn auto_revert_puts_back_the_agents_the_failed_rollout_touched_as_a_new_version() {
    let mut g = rolling(true);
    g.roll_batch(T0 + 2000);
    g.run(C::BatchStarted {
        index: 1,
        now_ms: T0 + 3000,
    });
    let events = g.run(C::Tick {
        now_ms: T0 + 3000 + HEALTHY,
    });
    assert_eq!(
        types(&events),
        ["deployment_failed", "deployment_reverting"]
    );
    let DeploymentEvent::DeploymentReverting {
        record, to, plan, ..
    } = &events[1]
    else {
        panic!("reverting");
    };
    assert_eq!(
        (record.version, *to, record.job_id.as_str()),
        (Version(3), Version(1), "job-1")
    );
    assert_eq!(record.manifest, g.state.versions[&Version(1)].manifest);
    assert_eq!(plan.changed_agent_ids, ["a", "b"], "c was never replaced");
    assert_eq!(g.status(), Some(S::Reverting));
    g.roll_batch(T0 + 10_000);
    let events = g.roll_batch(T0 + 11_000);
    assert_eq!(
        types(&events),
        ["deployment_batch_completed", "deployment_reverted"]
    );
    assert_eq!(g.status(), Some(S::Reverted));
    assert_eq!(g.state.stable_version, Some(Version(3)));
    assert_eq!(
        g.state.description,
        "reverted to version 3 after batch 2 (b) was not healthy within healthy_deadline_ms 5000"
    );
    g.assert_replays();
}

#[test]
fn a_failed_revert_fails_without_reverting_again() {
    let mut g = rolling(true);
    g.roll_batch(T0 + 2000);
    g.run(C::Fail {
        reason: "operator".into(),
        now_ms: T0 + 3000,
    });
    assert_eq!(g.status(), Some(S::Reverting));
    g.run(C::BatchStarted {
        index: 0,
        now_ms: T0 + 4000,
    });
    let events = g.run(C::Tick {
        now_ms: T0 + 4000 + HEALTHY,
    });
    assert_eq!(types(&events), ["deployment_failed"]);
    assert_eq!(g.status(), Some(S::Failed));
}

#[test]
fn a_failed_blue_green_reverts_by_dropping_the_target_job() {
    let policy = update(true);
    let mut g = deployed([1, 1, 1], policy.clone());
    let mut narrower = service([1, 1, 1], policy);
    narrower.edges.pop();
    g.run(deploy(target(2, T0 + 1000), narrower));
    g.run(C::BatchStarted {
        index: 0,
        now_ms: T0 + 2000,
    });
    let events = g.run(C::Tick {
        now_ms: T0 + 2000 + HEALTHY,
    });
    assert_eq!(
        types(&events),
        [
            "deployment_failed",
            "deployment_reverting",
            "deployment_reverted"
        ]
    );
    let DeploymentEvent::DeploymentReverted {
        job_id,
        cancel_job_id,
        ..
    } = &events[2]
    else {
        panic!("reverted");
    };
    assert_eq!(
        (job_id.as_str(), cancel_job_id.as_deref()),
        ("job-1", Some("job-2"))
    );
    assert_eq!(g.state.stable_job_id.as_deref(), Some("job-1"));
    g.assert_replays();
}

#[test]
fn a_failed_initial_deploy_has_nothing_to_revert_to() {
    let mut g = given(vec![]);
    g.run(deploy(target(1, T0), service([1, 1, 1], update(true))));
    g.run(C::BatchStarted {
        index: 0,
        now_ms: T0,
    });
    let events = g.run(C::Tick {
        now_ms: T0 + HEALTHY,
    });
    assert_eq!(types(&events), ["deployment_failed"]);
    let err = g.when(C::Rollback {
        to: RollbackTarget::LastStable,
        target: target(2, T0 + HEALTHY),
        reason: None,
    });
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("no rollback target found for deployment shop".into())
    );
}

#[test]
fn rollback_without_a_target_is_refused() {
    let g = deployed([1, 1, 1], update(false));
    for to in [
        RollbackTarget::LastStable,
        RollbackTarget::Version(Version(7)),
        RollbackTarget::Tag("nope".into()),
    ] {
        let err = g.when(C::Rollback {
            to,
            target: target(2, T0 + 1000),
            reason: None,
        });
        assert_eq!(
            err,
            Err(DeploymentError::NoRollbackTarget { key: "shop".into() })
        );
    }
    let err = given(vec![]).when(C::Rollback {
        to: RollbackTarget::LastStable,
        target: target(1, T0),
        reason: None,
    });
    assert_eq!(err, Err(DeploymentError::NotFound { key: "shop".into() }));
}

#[test]
fn pause_stops_time_and_resume_continues_without_losing_the_deadlines() {
    let mut g = rolling(false);
    g.run(C::BatchStarted {
        index: 0,
        now_ms: T0 + 2000,
    });
    g.run(C::Pause {
        reason: Some("investigating".into()),
        now_ms: T0 + 3000,
    });
    assert_eq!(
        (g.status(), g.state.description.as_str()),
        (Some(S::Paused), "investigating")
    );
    assert!(
        g.run(C::Tick {
            now_ms: T0 + 90_000
        })
        .is_empty(),
        "no deadline while paused"
    );
    assert!(
        g.when(C::BatchStarted {
            index: 1,
            now_ms: T0 + 90_000
        })
        .is_err()
    );
    assert!(
        g.run(C::Pause {
            reason: None,
            now_ms: T0 + 90_000
        })
        .is_empty(),
        "already paused"
    );
    let events = g.run(C::Resume {
        now_ms: T0 + 100_000,
    });
    assert_eq!(types(&events), ["deployment_running"]);
    assert_eq!(g.status(), Some(S::Running));
    // 1000 ms of the healthy deadline had passed before the pause; 4000 remain.
    assert!(
        g.run(C::Tick {
            now_ms: T0 + 100_000 + HEALTHY - 1001
        })
        .is_empty()
    );
    let events = g.run(C::Tick {
        now_ms: T0 + 100_000 + HEALTHY - 1000,
    });
    assert_eq!(types(&events), ["deployment_failed"]);
    g.assert_replays();
}

#[test]
fn an_operator_fails_a_rollout_and_finished_ones_refuse_controls() {
    let mut g = rolling(false);
    let events = g.run(C::Fail {
        reason: "bad metrics".into(),
        now_ms: T0 + 2000,
    });
    assert_eq!(types(&events), ["deployment_failed"]);
    assert_eq!(
        (g.status(), g.state.description.as_str()),
        (Some(S::Failed), "bad metrics")
    );
    for cmd in [
        C::Pause {
            reason: None,
            now_ms: T0 + 3000,
        },
        C::Resume { now_ms: T0 + 3000 },
        C::Fail {
            reason: "again".into(),
            now_ms: T0 + 3000,
        },
    ] {
        let err = g.when(cmd).map_err(|e| e.to_string()).expect_err("refused");
        assert!(err.ends_with("deployment shop: it is failed"), "{err}");
    }
    // A failed rollout does not block the next update.
    let events = g.run(deploy(
        target(3, T0 + 4000),
        service([3, 1, 1], update(false)),
    ));
    assert_eq!(types(&events), ["deployment_created", "deployment_started"]);
}

#[test]
fn promote_is_only_for_a_deployment_awaiting_promotion() {
    let g = rolling(false);
    let err = g.when(C::Promote { now_ms: T0 + 2000 });
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("deployment is running, expected awaiting_promotion".into())
    );
    let done = deployed([1, 1, 1], update(false));
    let err = done.when(C::Promote { now_ms: T0 + 2000 });
    assert_eq!(
        err,
        Err(DeploymentError::NotAwaitingPromotion {
            status: S::Successful
        })
    );
}

#[test]
fn an_update_waits_for_the_rollout_in_progress() {
    let g = rolling(false);
    let err = g.when(deploy(
        target(3, T0 + 2000),
        service([3, 3, 3], update(false)),
    ));
    assert_eq!(
        err,
        Err(DeploymentError::Busy {
            key: "shop".into(),
            status: S::Running
        })
    );
}

#[test]
fn batch_reports_out_of_order_are_refused_and_stale_ones_ignored() {
    let mut g = rolling(false);
    assert_eq!(
        g.when(C::BatchStarted {
            index: 1,
            now_ms: T0
        }),
        Err(DeploymentError::UnexpectedBatch { index: 1 })
    );
    assert_eq!(
        g.when(C::BatchHealthy {
            index: 0,
            at_ms: T0
        }),
        Err(DeploymentError::UnexpectedBatch { index: 0 })
    );
    g.roll_batch(T0 + 2000);
    assert_eq!(
        g.when(C::BatchStarted {
            index: 0,
            now_ms: T0 + 3000
        }),
        Ok(vec![])
    );
    assert_eq!(
        g.when(C::BatchHealthy {
            index: 0,
            at_ms: T0 + 3000
        }),
        Ok(vec![])
    );
    g.run(C::BatchStarted {
        index: 1,
        now_ms: T0 + 3000,
    });
    assert_eq!(
        g.when(C::BatchStarted {
            index: 1,
            now_ms: T0 + 3001
        }),
        Ok(vec![]),
        "a retried start"
    );
    assert_eq!(
        g.when(C::BatchUnhealthy {
            index: 1,
            reason: "x".into(),
            at_ms: T0 + 3002
        }),
        Ok(vec![]),
        "never healthy: nothing to reset"
    );
    assert_eq!(given(vec![]).when(C::Tick { now_ms: T0 }), Ok(vec![]));
    assert_eq!(
        given(vec![]).when(C::Pause {
            reason: None,
            now_ms: T0
        }),
        Err(DeploymentError::NotFound { key: "shop".into() })
    );
}
