//! How a rollout moves: health reports, time (`min_healthy_ms` and the deadlines), promotion
//! at the end, and the automatic revert when it fails. The original stored these knobs and
//! ignored them; here they decide.

use super::error::DeploymentError;
use super::event::DeploymentEvent as E;
use super::evolve::evolve;
use super::plan::{Plan, PlanKind, chunks};
use super::state::{DeploymentState, Rollout};
use super::status::{DeploymentStatus, Mode};
use super::version::VersionRecord;

type Decided = Result<Vec<E>, DeploymentError>;

/// Whether time moves this rollout: not while paused, awaiting an operator, or finished.
fn moving(state: &DeploymentState) -> Option<&Rollout> {
    match state.status? {
        DeploymentStatus::Running | DeploymentStatus::Reverting => state.rollout.as_ref(),
        DeploymentStatus::AwaitingPromotion
        | DeploymentStatus::Paused
        | DeploymentStatus::Successful
        | DeploymentStatus::VersionRecorded
        | DeploymentStatus::Failed
        | DeploymentStatus::Reverted => None,
    }
}

/// A batch report about anything but the active batch: stale when the batch is done.
fn not_active(rollout: &Rollout, index: usize) -> Decided {
    if index < rollout.next_batch {
        Ok(vec![])
    } else {
        Err(DeploymentError::UnexpectedBatch { index })
    }
}

/// Batch `index` became healthy at `at_ms`; with `min_healthy_ms` 0 it completes at once.
pub(super) fn healthy(state: &DeploymentState, index: usize, at_ms: i64) -> Decided {
    let Some(rollout) = state.rollout.as_ref() else {
        return Err(DeploymentError::UnexpectedBatch { index });
    };
    let Some(active) = rollout.active.as_ref().filter(|a| a.index == index) else {
        return not_active(rollout, index);
    };
    if active.healthy_since_ms.is_some() {
        return Ok(vec![]);
    }
    let event = E::DeploymentBatchHealthy {
        index,
        since_ms: at_ms,
    };
    let after = evolve(state.clone(), &event);
    let mut events = vec![event];
    events.extend(tick(&after, at_ms));
    Ok(events)
}

/// Batch `index` is unhealthy. Recorded only when it was healthy (the wait starts over); a
/// monitor repeating "still unhealthy" adds nothing to the history.
pub(super) fn unhealthy(
    state: &DeploymentState,
    index: usize,
    reason: &str,
    at_ms: i64,
) -> Decided {
    let Some(rollout) = state.rollout.as_ref() else {
        return Err(DeploymentError::UnexpectedBatch { index });
    };
    let Some(active) = rollout.active.as_ref().filter(|a| a.index == index) else {
        return not_active(rollout, index);
    };
    if active.healthy_since_ms.is_some() {
        return Ok(vec![E::DeploymentBatchUnhealthy {
            index,
            reason: reason.to_string(),
            at_ms,
        }]);
    }
    // Past the deadline the rollout fails here rather than on the next tick, so the
    // failure says what was wrong, not only that time ran out.
    let policy = &rollout.policy;
    if moving(state).is_some() && elapsed(active.started_at_ms, at_ms) >= policy.healthy_deadline_ms
    {
        let why = format!(
            "batch {} ({}) was not healthy within healthy_deadline_ms {}: {reason}",
            index + 1,
            agents_of(rollout, index),
            policy.healthy_deadline_ms
        );
        return Ok(fail(state, why, at_ms));
    }
    Ok(vec![])
}

/// Time passed: complete the active batch once healthy for `min_healthy_ms`, else fail the
/// rollout when a deadline passed.
pub(super) fn tick(state: &DeploymentState, now_ms: i64) -> Vec<E> {
    let Some(r) = moving(state) else {
        return vec![];
    };
    let policy = &r.policy;
    if let Some(a) = &r.active {
        if let Some(since) = a.healthy_since_ms
            && elapsed(since, now_ms) >= policy.min_healthy_ms
        {
            return complete(state, r, a.index, now_ms);
        }
        if elapsed(a.started_at_ms, now_ms) >= policy.healthy_deadline_ms {
            let reason = format!(
                "batch {} ({}) was not healthy within healthy_deadline_ms {}",
                a.index + 1,
                agents_of(r, a.index),
                policy.healthy_deadline_ms
            );
            return fail(state, reason, now_ms);
        }
    }
    // 0 disables the progress deadline (as in Nomad): some rollouts wait on people.
    if policy.progress_deadline_ms > 0
        && elapsed(r.last_progress_ms, now_ms) >= policy.progress_deadline_ms
    {
        let batch = r.active.as_ref().map_or(r.next_batch, |a| a.index);
        let reason = format!(
            "no progress within progress_deadline_ms {} (batch {} of {}: {})",
            policy.progress_deadline_ms,
            batch + 1,
            r.plan.batches.len(),
            agents_of(r, batch)
        );
        return fail(state, reason, now_ms);
    }
    vec![]
}

fn elapsed(from_ms: i64, now_ms: i64) -> u64 {
    u64::try_from(now_ms.saturating_sub(from_ms)).unwrap_or(0)
}

fn agents_of(r: &Rollout, index: usize) -> String {
    r.plan
        .batches
        .get(index)
        .map_or_else(String::new, |b| b.agents.join(", "))
}

/// The batch is done; canaries stop for promotion unless `auto_promote`; the last batch
/// finishes the rollout.
fn complete(state: &DeploymentState, r: &Rollout, index: usize, now_ms: i64) -> Vec<E> {
    let mut events = vec![E::DeploymentBatchCompleted {
        index,
        at_ms: now_ms,
    }];
    if index == 0 && r.plan.has_canary() && !r.reverting {
        events.push(E::DeploymentCanaryReady {
            agents: r.plan.canary_agent_ids.clone(),
            auto_promote: r.policy.auto_promote,
            at_ms: now_ms,
        });
        if !r.policy.auto_promote {
            return events;
        }
    }
    if index + 1 >= r.plan.batches.len() {
        events.extend(finish(state, now_ms));
    }
    events
}

/// The rollout's last step: the target becomes stable (or, for a revert, the reverted-to
/// version does).
pub(super) fn finish(state: &DeploymentState, now_ms: i64) -> Vec<E> {
    let Some(r) = state.rollout.as_ref() else {
        return vec![];
    };
    if r.reverting {
        return vec![E::DeploymentReverted {
            version: r.version,
            job_id: r.job_id.clone(),
            cancel_job_id: None,
            at_ms: now_ms,
        }];
    }
    let description = match r.plan.kind {
        PlanKind::Initial => "initial deployment completed".to_string(),
        PlanKind::Rerun | PlanKind::BlueGreen | PlanKind::NoOp | PlanKind::AgentLevel => {
            format!("version {} deployed", r.version)
        }
    };
    let cancel_job_id = match r.plan.mode() {
        Mode::BlueGreen => r.source_job_id.clone(),
        Mode::AgentLevel => None,
    };
    vec![E::DeploymentSuccessful {
        version: r.version,
        job_id: r.job_id.clone(),
        cancel_job_id,
        description,
        at_ms: now_ms,
    }]
}

/// The rollout failed; with `auto_revert` (and not already reverting) it starts undoing
/// itself in the same decision, so no operator or later tick is needed.
pub(super) fn fail(state: &DeploymentState, reason: String, now_ms: i64) -> Vec<E> {
    let mut events = vec![E::DeploymentFailed {
        reason,
        at_ms: now_ms,
    }];
    if let Some(r) = state.rollout.as_ref()
        && r.policy.auto_revert
        && !r.reverting
    {
        events.extend(revert(state, r, now_ms));
    }
    events
}

/// Back to the last stable version, as a new version (core-spec rollback semantics). A
/// blue-green target is simply dropped (the old job never stopped); in place, only the agents
/// the failed rollout touched are replaced back. No stable version (a failed initial
/// deployment): nothing to return to.
fn revert(state: &DeploymentState, r: &Rollout, now_ms: i64) -> Vec<E> {
    let Some(stable) = state.stable_version.and_then(|v| state.versions.get(&v)) else {
        return vec![];
    };
    let mode = r.plan.mode();
    let mut touched: Vec<String> = Vec::new();
    for agent in &r.touched {
        if !touched.contains(agent) {
            touched.push(agent.clone());
        }
    }
    let (job_id, batches) = match mode {
        Mode::BlueGreen => (stable.job_id.clone(), Vec::new()),
        Mode::AgentLevel => (r.job_id.clone(), chunks(&touched, r.policy.max_parallel)),
    };
    let record = VersionRecord {
        version: state.next_version(),
        job_id: job_id.clone(),
        manifest: stable.manifest.clone(),
        manifest_ref: stable.manifest_ref.clone(),
        bundle: stable.bundle.clone(),
        tag: None,
        stable: false,
        submitted_at_ms: now_ms,
        updated_at_ms: now_ms,
    };
    let version = record.version;
    let plan = Plan {
        kind: match mode {
            Mode::BlueGreen => PlanKind::BlueGreen,
            Mode::AgentLevel => PlanKind::AgentLevel,
        },
        changed_agent_ids: touched,
        canary_agent_ids: Vec::new(),
        batches,
    };
    let done = plan.batches.is_empty();
    let mut events = vec![E::DeploymentReverting {
        record,
        to: stable.version,
        plan,
        at_ms: now_ms,
    }];
    if done {
        events.push(E::DeploymentReverted {
            version,
            job_id,
            cancel_job_id: match mode {
                Mode::BlueGreen => Some(r.job_id.clone()),
                Mode::AgentLevel => None,
            },
            at_ms: now_ms,
        });
    }
    events
}
