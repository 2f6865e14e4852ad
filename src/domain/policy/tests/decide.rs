//! Delay sequences and attempt decisions as tables.

use crate::domain::manifest::JobType;
use crate::domain::policy::{
    Attempt, DelayFunction, LifecyclePolicy, PolicyKind, RecoveryMode, RescheduleDecision,
    RestartDecision, RestartMode, decide_reschedule, decide_restart, defaults, delay_for,
    record_attempt,
};

fn policy(f: DelayFunction, delay: u64, max: u64) -> LifecyclePolicy {
    LifecyclePolicy {
        kind: PolicyKind::Restart,
        enabled: true,
        attempts: 3,
        interval_ms: 10_000,
        delay_ms: delay,
        delay_function: f,
        max_delay_ms: max,
        mode: RestartMode::Fail,
        unlimited: false,
    }
}

fn at(times: &[u64]) -> Vec<Attempt> {
    times
        .iter()
        .map(|&at_ms| Attempt {
            at_ms,
            reason: None,
        })
        .collect()
}

#[test]
fn delay_sequences() {
    let cases: &[(&str, LifecyclePolicy, &[u64])] = &[
        (
            "constant",
            policy(DelayFunction::Constant, 500, 10_000),
            &[500, 500, 500, 500],
        ),
        (
            "exponential",
            policy(DelayFunction::Exponential, 1000, 30_000),
            &[1000, 2000, 4000, 8000, 16_000, 30_000, 30_000],
        ),
        (
            "fibonacci",
            policy(DelayFunction::Fibonacci, 1000, 10_000),
            &[1000, 1000, 2000, 3000, 5000, 8000, 10_000],
        ),
        (
            "max below delay is raised to delay",
            policy(DelayFunction::Exponential, 5000, 100),
            &[5000, 5000, 5000],
        ),
        (
            "zero base",
            policy(DelayFunction::Exponential, 0, 0),
            &[0, 0, 0],
        ),
    ];
    for (name, p, want) in cases {
        let got: Vec<u64> = (1..=want.len() as u32).map(|n| delay_for(p, n)).collect();
        assert_eq!(got, *want, "case {name}");
    }
}

#[test]
fn huge_attempt_numbers_saturate_at_the_cap() {
    let p = policy(DelayFunction::Exponential, 1000, 300_000);
    assert_eq!(delay_for(&p, 200), 300_000);
    let p = policy(DelayFunction::Fibonacci, u64::MAX / 2, u64::MAX);
    assert_eq!(delay_for(&p, 500), u64::MAX);
}

#[test]
fn restart_decisions() {
    let base = policy(DelayFunction::Exponential, 1000, 30_000);
    let delay = LifecyclePolicy {
        mode: RestartMode::Delay,
        ..base.clone()
    };
    let disabled = LifecyclePolicy {
        enabled: false,
        ..base.clone()
    };
    let no_window = LifecyclePolicy {
        interval_ms: 0,
        mode: RestartMode::Delay,
        ..base.clone()
    };
    let restart = |attempt, delay_ms, now: u64, left| RestartDecision::Restart {
        attempt,
        delay_ms,
        eligible_at_ms: now + delay_ms,
        attempts_remaining: Some(left),
    };
    let exhausted = |until| RestartDecision::Exhausted {
        reason: "restart attempts exhausted".into(),
        wait_until_ms: until,
    };
    let cases: Vec<(&str, &LifecyclePolicy, Vec<Attempt>, u64, RestartDecision)> = vec![
        (
            "first attempt",
            &base,
            at(&[]),
            50_000,
            restart(1, 1000, 50_000, 2),
        ),
        (
            "second attempt doubles",
            &base,
            at(&[45_000]),
            50_000,
            restart(2, 2000, 50_000, 1),
        ),
        (
            "third is the last",
            &base,
            at(&[41_000, 45_000]),
            50_000,
            restart(3, 4000, 50_000, 0),
        ),
        (
            "fourth in window fails",
            &base,
            at(&[41_000, 43_000, 45_000]),
            50_000,
            exhausted(Some(51_000)),
        ),
        (
            "old attempts leave the window",
            &base,
            at(&[30_000, 41_000, 45_000]),
            50_000,
            restart(3, 4000, 50_000, 0),
        ),
        (
            "an attempt exactly interval ago has expired",
            &base,
            at(&[40_000, 41_000, 42_000]),
            50_000,
            restart(3, 4000, 50_000, 0),
        ),
        (
            "delay mode waits for the window",
            &delay,
            at(&[41_000, 43_000, 45_000]),
            50_000,
            RestartDecision::Wait {
                until_ms: 51_000,
                reason: "restart attempts exhausted".into(),
            },
        ),
        (
            "disabled",
            &disabled,
            at(&[]),
            0,
            RestartDecision::Exhausted {
                reason: "restart policy is disabled".into(),
                wait_until_ms: None,
            },
        ),
        (
            "no window never resets",
            &no_window,
            at(&[1, 2, 3]),
            1_000_000_000,
            exhausted(None),
        ),
    ];
    for (name, p, history, now, want) in cases {
        assert_eq!(decide_restart(p, &history, now), want, "case {name}");
    }
}

#[test]
fn reschedule_decisions_by_default_policy() {
    let service = defaults(
        PolicyKind::Reschedule,
        JobType::Service,
        RecoveryMode::ClusterRecover,
    );
    let many = at(&(0..100).map(|i| 1_000_000 + i).collect::<Vec<_>>());
    assert_eq!(
        decide_reschedule(&service, &many, 1_000_200),
        RescheduleDecision::Reschedule {
            attempt: 101,
            delay_ms: 300_000,
            eligible_at_ms: 1_300_200,
            attempts_remaining: None
        },
        "unlimited: the count only grows the (capped) delay"
    );
    let batch = defaults(
        PolicyKind::Reschedule,
        JobType::Batch,
        RecoveryMode::ClusterRecover,
    );
    assert_eq!(
        decide_reschedule(&batch, &at(&[]), 10),
        RescheduleDecision::Reschedule {
            attempt: 1,
            delay_ms: 5000,
            eligible_at_ms: 5010,
            attempts_remaining: Some(0)
        }
    );
    assert_eq!(
        decide_reschedule(&batch, &at(&[10]), 20),
        RescheduleDecision::Exhausted {
            reason: "reschedule attempts exhausted".into(),
            wait_until_ms: Some(86_400_010)
        }
    );
    let local = defaults(
        PolicyKind::Reschedule,
        JobType::Service,
        RecoveryMode::LocalRestart,
    );
    assert_eq!(
        decide_reschedule(&local, &at(&[]), 0),
        RescheduleDecision::Exhausted {
            reason: "reschedule policy is disabled".into(),
            wait_until_ms: None
        }
    );
}

#[test]
fn recording_keeps_every_attempt_that_still_counts() {
    let mut p = policy(DelayFunction::Constant, 1, 1);
    p.attempts = 80;
    p.interval_ms = 1000;
    let mut history = Vec::new();
    for t in 0..100 {
        record_attempt(
            &mut history,
            Attempt {
                at_ms: 10_000 + t,
                reason: None,
            },
            &p,
        );
    }
    assert_eq!(
        history.len(),
        100,
        "all within the window, beyond the original's cap of 50"
    );
    record_attempt(
        &mut history,
        Attempt {
            at_ms: 11_050,
            reason: Some("crash".into()),
        },
        &p,
    );
    assert_eq!(
        history.first().map(|a| a.at_ms),
        Some(10_051),
        "attempts out of the window are dropped"
    );
    p.interval_ms = 0;
    for t in 0..200 {
        record_attempt(
            &mut history,
            Attempt {
                at_ms: 20_000 + t,
                reason: None,
            },
            &p,
        );
    }
    assert_eq!(
        history.len(),
        80,
        "with no window, max(attempts, 50) are kept"
    );
}
