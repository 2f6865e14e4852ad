//! Defaults per job type and recovery mode, and the override layers.

use serde_json::{Value, json};

use crate::domain::manifest::{JobType, parse_manifest};
use crate::domain::policy::{
    DelayFunction, LifecyclePolicy, PolicyKind, RecoveryMode, RestartMode, defaults, resolve,
    resolve_for_agent,
};

/// (attempts, interval_ms, delay_ms, function, max_delay_ms, enabled, mode, unlimited)
type Row = (u32, u64, u64, DelayFunction, u64, bool, RestartMode, bool);

fn row(p: &LifecyclePolicy) -> Row {
    (
        p.attempts,
        p.interval_ms,
        p.delay_ms,
        p.delay_function,
        p.max_delay_ms,
        p.enabled,
        p.mode,
        p.unlimited,
    )
}

#[test]
fn defaults_table() {
    use DelayFunction::*;
    use JobType::*;
    use PolicyKind::*;
    use RecoveryMode::*;
    use RestartMode::{Delay, Fail};
    let cases: &[(PolicyKind, JobType, RecoveryMode, Row)] = &[
        (
            Restart,
            Service,
            ManualRecover,
            (0, 86_400_000, 1000, Exponential, 30_000, false, Fail, false),
        ),
        (
            Reschedule,
            Batch,
            ManualRecover,
            (0, 86_400_000, 5000, Constant, 5000, false, Fail, false),
        ),
        (
            Restart,
            Service,
            ClusterRecover,
            (3, 600_000, 1000, Exponential, 30_000, true, Fail, false),
        ),
        (
            Restart,
            System,
            ClusterRecover,
            (3, 600_000, 1000, Exponential, 30_000, true, Fail, false),
        ),
        (
            Reschedule,
            Service,
            ClusterRecover,
            (0, 600_000, 5000, Exponential, 300_000, true, Fail, true),
        ),
        (
            Restart,
            Service,
            LocalRestart,
            (3, 600_000, 1000, Exponential, 30_000, true, Delay, false),
        ),
        (
            Reschedule,
            System,
            LocalRestart,
            (0, 86_400_000, 5000, Constant, 5000, false, Fail, false),
        ),
        (
            Restart,
            Batch,
            ClusterRecover,
            (3, 86_400_000, 1000, Exponential, 30_000, true, Fail, false),
        ),
        (
            Reschedule,
            Sysbatch,
            ClusterRecover,
            (1, 86_400_000, 5000, Constant, 5000, true, Fail, false),
        ),
        (
            Restart,
            Sysbatch,
            LocalRestart,
            (3, 86_400_000, 1000, Exponential, 30_000, true, Fail, false),
        ),
        (
            Reschedule,
            Batch,
            LocalRestart,
            (0, 86_400_000, 5000, Constant, 5000, false, Fail, false),
        ),
    ];
    for (kind, job_type, recovery, want) in cases {
        assert_eq!(
            row(&defaults(*kind, *job_type, *recovery)),
            *want,
            "case {kind:?} {job_type:?} {recovery:?}"
        );
    }
}

#[test]
fn layers_override_only_the_keys_they_set() {
    let job = json!({"restart": {"attempts": 5, "delay_function": "fibonacci", "delay_ms": 200}});
    let agent = json!({"restart": {"attempts": 1, "mode": "delay", "max_delay_ms": 50}});
    let p = resolve(
        PolicyKind::Restart,
        JobType::Batch,
        RecoveryMode::ClusterRecover,
        &job,
        Some(("w", &agent)),
    )
    .expect("valid");
    assert_eq!(
        row(&p),
        (
            1,
            86_400_000,
            200,
            DelayFunction::Fibonacci,
            200,
            true,
            RestartMode::Delay,
            false
        )
    );
}

#[test]
fn legacy_attempts_apply_only_without_restart_attempts() {
    let cases: &[(Value, u32)] = &[
        (json!({"max_agent_restart_attempts": 7}), 7),
        (json!({"max_agent_restart_attempts": "9"}), 9),
        (
            json!({"max_agent_restart_attempts": 7, "restart": {"attempts": 2}}),
            2,
        ),
        (
            json!({"max_agent_restart_attempts": 7, "restart": {"delay_ms": 5}}),
            7,
        ),
    ];
    for (policies, want) in cases {
        let p = resolve(
            PolicyKind::Restart,
            JobType::Batch,
            RecoveryMode::LocalRestart,
            policies,
            None,
        )
        .expect("valid");
        assert_eq!(p.attempts, *want, "case {policies}");
    }
}

#[test]
fn restart_is_never_unlimited_and_unknown_names_fall_back() {
    let job =
        json!({"restart": {"unlimited": true, "delay_function": "cubic", "mode": "sometimes"}});
    let p = resolve(
        PolicyKind::Restart,
        JobType::Service,
        RecoveryMode::LocalRestart,
        &job,
        None,
    )
    .expect("valid");
    assert_eq!(
        (p.unlimited, p.delay_function, p.mode),
        (false, DelayFunction::Constant, RestartMode::Fail)
    );
}

#[test]
fn errors_name_the_field() {
    let cases: &[(Value, Option<Value>, &str)] = &[
        (
            json!({"restart": 3}),
            None,
            "policies.restart must be an object",
        ),
        (
            json!({"restart": {"attempts": -1}}),
            None,
            "policies.restart.attempts must be a non-negative integer",
        ),
        (
            json!({"max_agent_restart_attempts": "x"}),
            None,
            "policies.max_agent_restart_attempts must be a non-negative integer",
        ),
        (
            json!({}),
            Some(json!({"restart": {"enabled": "yes"}})),
            "nodes.w.policies.restart.enabled must be a boolean",
        ),
        (
            json!({}),
            Some(json!({"restart": {"delay_function": 2}})),
            "nodes.w.policies.restart.delay_function must be a string",
        ),
    ];
    for (job, agent, want) in cases {
        let err = resolve(
            PolicyKind::Restart,
            JobType::Batch,
            RecoveryMode::LocalRestart,
            job,
            agent.as_ref().map(|a| ("w", a)),
        )
        .expect_err("invalid");
        assert_eq!(err.to_string(), *want, "case {job} {agent:?}");
    }
}

#[test]
fn system_copies_use_the_source_agent_overrides() {
    let m = parse_manifest(&json!({
        "manifest_version": "1.0",
        "graph_id": "g",
        "type": "service",
        "policies": {"reschedule": {"delay_ms": 100}},
        "nodes": [{"node_id": "w", "agent_type": "executor", "role": "root", "config": {"command": "true"},
            "policies": {"reschedule": {"max_delay_ms": 900}}}],
        "edges": []
    }))
    .expect("valid manifest");
    let p = resolve_for_agent(
        &m,
        "w@node-3",
        PolicyKind::Reschedule,
        RecoveryMode::ClusterRecover,
    )
    .expect("valid");
    assert_eq!((p.delay_ms, p.max_delay_ms, p.unlimited), (100, 900, true));
}
