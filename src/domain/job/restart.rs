//! What a step failure means under the job's lifecycle policies (core-spec 8): restart the
//! agent after a delay, wait for the restart window, move it to another node (reschedule), or
//! give up: a batch job fails with the error envelope, a long-running one is paused for review.
//! Pure: the clock, the manifest and the histories come from the state and the command.

use serde_json::{Value, json};

use super::state::{AgentRuntime, JobState};
use crate::domain::cluster::RecoveryPolicy;
use crate::domain::event::JobEvent;
use crate::domain::manifest::JobType;
use crate::domain::policy::{
    Attempt, PolicyKind, RecoveryMode, RescheduleDecision, RestartDecision, decide_reschedule,
    decide_restart, resolve_for_agent,
};

/// The recovery mode recorded for the job (`local_restart` until one is resolved).
fn recovery(state: &JobState) -> RecoveryMode {
    let effective = state
        .reliability
        .as_ref()
        .and_then(|r| r.get("effective_recovery_policy"))
        .and_then(Value::as_str);
    match RecoveryPolicy::parse(effective) {
        RecoveryPolicy::ClusterRecover => RecoveryMode::ClusterRecover,
        RecoveryPolicy::ManualRecover => RecoveryMode::ManualRecover,
        RecoveryPolicy::Auto | RecoveryPolicy::LocalRestart => RecoveryMode::LocalRestart,
    }
}

/// The events after the agent's step failed for good (its in-step retries are spent).
pub fn after_failure(
    state: &JobState,
    agent: &AgentRuntime,
    agent_id: &str,
    message_id: &str,
    error: &Value,
    now_ms: i64,
) -> Vec<JobEvent> {
    let now = now_ms.max(0) as u64;
    let reason = error
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("agent step failed")
        .to_string();
    let Some(manifest) = state.graph.as_ref() else {
        return vec![fail_job(
            agent_id,
            error,
            &reason,
            "no manifest to read policies from",
        )];
    };
    let mode = recovery(state);
    let policy = match resolve_for_agent(manifest, agent_id, PolicyKind::Restart, mode) {
        Ok(p) => p,
        Err(e) => return vec![fail_job(agent_id, error, &reason, &e.to_string())],
    };
    let policy_json = serde_json::to_value(&policy).unwrap_or(Value::Null);
    let scheduled = |attempt: u32, delay_ms: u64, eligible_at_ms: u64, deferred: bool| {
        JobEvent::AgentRestartScheduled {
            agent_id: agent_id.into(),
            message_id: message_id.into(),
            attempt,
            delay_ms,
            eligible_at_ms: eligible_at_ms as i64,
            reason: reason.clone(),
            deferred,
            policy: policy_json.clone(),
        }
    };
    let exhausted = match decide_restart(&policy, &agent.restarts, now) {
        RestartDecision::Restart {
            attempt,
            delay_ms,
            eligible_at_ms,
            ..
        } => return vec![scheduled(attempt, delay_ms, eligible_at_ms, false)],
        RestartDecision::Wait { until_ms, .. } => {
            let attempt = agent.restarts.len() as u32 + 1;
            return vec![scheduled(
                attempt,
                until_ms.saturating_sub(now),
                until_ms,
                true,
            )];
        }
        RestartDecision::Exhausted { reason: why, .. } => why,
    };
    if mode == RecoveryMode::ClusterRecover
        && let Ok(resched) = resolve_for_agent(manifest, agent_id, PolicyKind::Reschedule, mode)
    {
        match decide_reschedule(&resched, &agent.reschedules, now) {
            RescheduleDecision::Reschedule {
                attempt,
                delay_ms,
                eligible_at_ms,
                ..
            } => {
                return vec![JobEvent::AgentRescheduleScheduled {
                    agent_id: agent_id.into(),
                    message_id: message_id.into(),
                    attempt,
                    delay_ms,
                    eligible_at_ms: eligible_at_ms as i64,
                    avoid_node: agent.in_flight(message_id).and_then(|f| f.node.clone()),
                    reason: format!("{exhausted}: {reason}"),
                }];
            }
            RescheduleDecision::Exhausted { reason: why, .. } => {
                let detail = format!("restart exhausted and reschedule unavailable: {why}");
                return vec![give_up(
                    manifest.job_type,
                    agent_id,
                    error,
                    &reason,
                    &detail,
                )];
            }
        }
    }
    let detail = exhausted;
    vec![give_up(
        manifest.job_type,
        agent_id,
        error,
        &reason,
        &detail,
    )]
}

/// Long-running jobs wait for an operator; batch jobs fail.
fn give_up(
    job_type: JobType,
    agent_id: &str,
    error: &Value,
    reason: &str,
    detail: &str,
) -> JobEvent {
    match job_type {
        JobType::Service | JobType::System => JobEvent::JobPaused {
            reason: Some(format!(
                "paused for review: agent {agent_id} {detail}: {reason}"
            )),
        },
        JobType::Batch | JobType::Sysbatch => fail_job(agent_id, error, reason, detail),
    }
}

/// The error envelope a failed job carries; `attempts` are the executor's own (in-step).
pub fn fail_job(agent_id: &str, error: &Value, reason: &str, detail: &str) -> JobEvent {
    let attempts = error.get("attempts").and_then(Value::as_u64).unwrap_or(1);
    JobEvent::JobFailed {
        result: json!({
            "agent_id": agent_id,
            "error": error,
            "reason": reason,
            "status_reason": format!("agent {agent_id} failed after {attempts} attempt(s); {detail}"),
        }),
    }
}

/// Records a scheduled attempt in a history, keeping it bounded.
pub fn remember(history: &mut Vec<Attempt>, at_ms: i64, reason: &str) {
    history.push(Attempt {
        at_ms: at_ms.max(0) as u64,
        reason: Some(reason.to_string()),
    });
    let drop = history.len().saturating_sub(50);
    history.drain(..drop);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{JobCommand, JobState, decide, evolve, seed_messages};
    use crate::domain::event::{EventEnvelope, JobEvent, SCHEMA_VERSION};
    use crate::domain::manifest::parse_manifest;

    /// A job whose one executor `work` has its first message in flight; `policies` are the
    /// job-level policies.
    fn running(policies: serde_json::Value, job_type: &str) -> JobState {
        let manifest = parse_manifest(&json!({
            "manifest_version": "1.0", "graph_id": "g", "type": job_type, "entrypoints": ["work"],
            "initial_inputs": {"work": [{"n": 1}]},
            "nodes": [{"node_id": "work", "agent_type": "executor", "config": {"command": "false"}}],
            "edges": [], "policies": policies,
        }))
        .expect("valid manifest");
        let mut state = JobState::new("job");
        let seeds = seed_messages("job", &manifest, 0);
        let message_id = seeds[0].message_id.clone();
        for cmd in [
            JobCommand::Submit {
                graph_id: "g".into(),
                job_name: "g".into(),
                manifest: manifest.to_value(),
                bundle_path: None,
                bundle_digest: None,
                deployment: None,
                now_ms: 0,
            },
            JobCommand::Start,
            JobCommand::BeginStep {
                agent_id: "work".into(),
                message_id,
                attempt: 1,
                node: None,
            },
        ] {
            let events = decide(&state, &cmd).expect("decided");
            state = apply(state, events, 0);
        }
        state
    }

    fn apply(mut state: JobState, events: Vec<JobEvent>, at_ms: i64) -> JobState {
        for payload in events {
            let env = EventEnvelope {
                event_id: format!("e{}", state.seq + 1),
                job_id: "job".into(),
                seq: state.seq + 1,
                event_type: payload.type_name().into(),
                schema_version: SCHEMA_VERSION,
                timestamp_ms: at_ms,
                epoch: 0,
                causation_id: None,
                correlation_id: None,
                payload,
            };
            state = evolve(state, &env);
        }
        state
    }

    fn fail(state: &JobState, now_ms: i64) -> Vec<JobEvent> {
        let message_id = state.agents["work"]
            .inflight
            .first()
            .expect("in flight")
            .message
            .message_id
            .clone();
        decide(
            state,
            &JobCommand::FailStep {
                agent_id: "work".into(),
                message_id,
                attempt: 1,
                error: json!({"error": "exit code 1"}),
                will_retry: false,
                now_ms,
            },
        )
        .expect("decided")
    }

    fn restart_delays(events: &[JobEvent]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                JobEvent::AgentRestartScheduled { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn failures_restart_with_growing_delays_then_fail_the_batch_job() {
        let policies =
            json!({"restart": {"attempts": 3, "delay_ms": 100, "delay_function": "exponential"}});
        let mut state = running(policies, "batch");
        let mut delays = vec![];
        let mut now = 1_000;
        for _ in 0..3 {
            let events = fail(&state, now);
            assert!(matches!(
                events[0],
                JobEvent::AgentStepFailed {
                    will_retry: true,
                    ..
                }
            ));
            delays.extend(restart_delays(&events));
            state = apply(state, events, now);
            let eligible = state.agents["work"].eligible_at_ms.expect("waits");
            assert!(eligible > now);
            now = eligible + 1;
        }
        assert_eq!(delays, vec![100, 200, 400]);
        let events = fail(&state, now);
        assert!(matches!(
            events[0],
            JobEvent::AgentStepFailed {
                will_retry: false,
                ..
            }
        ));
        match &events[1] {
            JobEvent::JobFailed { result } => {
                assert_eq!(result["agent_id"], "work");
                assert_eq!(result["reason"], "exit code 1");
                assert!(
                    result["status_reason"]
                        .as_str()
                        .unwrap_or("")
                        .contains("restart attempts exhausted"),
                    "{result}"
                );
            }
            other => panic!("expected the job to fail, got {other:?}"),
        }
    }

    #[test]
    fn a_service_out_of_restarts_waits_for_the_window_or_with_mode_fail_pauses_for_review() {
        // Default mode for a local service: `delay`, the restart waits for the window.
        let mut state = running(
            json!({"restart": {"attempts": 1, "delay_ms": 10}}),
            "service",
        );
        let events = fail(&state, 1_000);
        state = apply(state, events, 1_000);
        let events = fail(&state, 2_000);
        assert!(
            matches!(
                &events[1],
                JobEvent::AgentRestartScheduled {
                    deferred: true,
                    eligible_at_ms: 601_000,
                    ..
                }
            ),
            "{events:?}"
        );
        let policies = json!({"restart": {"attempts": 1, "delay_ms": 10, "mode": "fail"}});
        let mut state = running(policies, "service");
        let events = fail(&state, 1_000);
        state = apply(state, events, 1_000);
        let events = fail(&state, 2_000);
        assert!(
            matches!(&events[1], JobEvent::JobPaused { reason: Some(r) } if r.contains("paused for review")),
            "{events:?}"
        );
    }

    #[test]
    fn a_disabled_restart_policy_fails_at_once_and_a_cluster_job_is_rescheduled() {
        let state = running(json!({"restart": {"enabled": false}}), "batch");
        let events = fail(&state, 1_000);
        assert!(
            matches!(events[1], JobEvent::JobFailed { .. }),
            "{events:?}"
        );

        let mut state = running(json!({"restart": {"attempts": 0}}), "batch");
        state.reliability = Some(json!({"effective_recovery_policy": "cluster_recover"}));
        if let Some(f) = state
            .agents
            .get_mut("work")
            .and_then(|a| a.inflight.first_mut())
        {
            f.node = Some("n1".into());
        }
        let events = fail(&state, 1_000);
        assert!(
            matches!(&events[1], JobEvent::AgentRescheduleScheduled { avoid_node: Some(n), delay_ms: 5_000, .. } if n == "n1"),
            "{events:?}"
        );
    }
}
