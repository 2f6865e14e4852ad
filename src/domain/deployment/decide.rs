//! `decide(state, command) -> events`: the deployment's rules. Pure: time, ids and whether
//! the running job is still active are inputs.

use super::command::{DeploymentCommand as C, RollbackTarget, Target};
use super::error::DeploymentError;
use super::event::DeploymentEvent as E;
use super::plan::{PlanKind, Source, plan_update};
use super::progress;
use super::state::DeploymentState;
use super::status::DeploymentStatus as S;
use super::version::{Version, VersionRecord};
use crate::domain::manifest::Manifest;

type Decided = Result<Vec<E>, DeploymentError>;

/// Decides the events a command produces, or refuses it. Empty: nothing to do (already so,
/// or a stale report).
pub fn decide(state: &DeploymentState, command: &C) -> Decided {
    match command {
        C::Deploy { target, manifest } => deploy(state, target, manifest, None),
        C::Rollback { to, target, reason } => rollback(state, to, target, reason.as_deref()),
        C::BatchStarted { index, now_ms } => batch_started(state, *index, *now_ms),
        C::BatchHealthy { index, at_ms } => {
            status(state)?;
            progress::healthy(state, *index, *at_ms)
        }
        C::BatchUnhealthy {
            index,
            reason,
            at_ms,
        } => {
            status(state)?;
            progress::unhealthy(state, *index, reason, *at_ms)
        }
        C::Tick { now_ms } => Ok(progress::tick(state, *now_ms)),
        C::Promote { now_ms } => promote(state, *now_ms),
        C::Pause { reason, now_ms } => pause(state, reason, *now_ms),
        C::Resume { now_ms } => resume(state, *now_ms),
        C::Fail { reason, now_ms } => fail(state, reason, *now_ms),
    }
}

fn status(state: &DeploymentState) -> Result<S, DeploymentError> {
    state.status.ok_or_else(|| DeploymentError::NotFound {
        key: state.key.clone(),
    })
}

fn wrong(state: &DeploymentState, action: &'static str, status: S) -> Decided {
    Err(DeploymentError::WrongStatus {
        key: state.key.clone(),
        action,
        status,
    })
}

/// Plans `manifest` against the key's source version and records the new version.
fn deploy(
    state: &DeploymentState,
    target: &Target,
    manifest: &Manifest,
    rollback_of: Option<Version>,
) -> Decided {
    if let Some(status) = state.status.filter(|s| s.in_progress()) {
        return Err(DeploymentError::Busy {
            key: state.key.clone(),
            status,
        });
    }
    let policy = target
        .policy
        .clone()
        .or_else(|| manifest.update_policy.clone())
        .unwrap_or_default();
    let source = state.source_version();
    let source_manifest = match source {
        Some(r) => Some(
            Manifest::from_normalised(&r.manifest)
                .map_err(|_| DeploymentError::UnreadableManifest { version: r.version })?,
        ),
        None => None,
    };
    let plan = plan_update(
        source_manifest.as_ref().map(|m| Source {
            manifest: m,
            active: target.source_active,
            payloads_changed: source.is_some_and(|r| payloads_differ(&r.bundle, &target.bundle)),
        }),
        manifest,
        &policy,
    );
    let source_job_id = source.map(|r| r.job_id.clone());
    let job_id = match (plan.kind, &source_job_id) {
        (PlanKind::NoOp | PlanKind::AgentLevel, Some(job)) => job.clone(),
        _ => target.job_id.clone(),
    };
    let version = state.next_version();
    let now_ms = target.now_ms;
    let description = match rollback_of {
        Some(v) => format!("rollback to version {v}"),
        None if source.is_none() => "initial deployment".to_string(),
        None => format!("update to version {version}"),
    };
    let kind = plan.kind;
    let batches = plan.batches.len();
    let created = E::DeploymentCreated {
        deployment_id: target.deployment_id.clone(),
        key: state.key.clone(),
        record: VersionRecord {
            version,
            job_id: job_id.clone(),
            manifest: manifest.to_value(),
            manifest_ref: target.manifest_ref.clone(),
            bundle: target.bundle.clone(),
            tag: target.tag.clone(),
            stable: false,
            submitted_at_ms: now_ms,
            updated_at_ms: now_ms,
        },
        policy,
        plan,
        source_job_id,
        rollback_of,
        description,
        at_ms: now_ms,
    };
    let mut events = vec![created];
    match kind {
        PlanKind::Rerun => events.push(E::DeploymentVersionRecorded {
            version,
            job_id,
            at_ms: now_ms,
        }),
        PlanKind::NoOp => events.push(E::DeploymentNoop {
            version,
            at_ms: now_ms,
        }),
        PlanKind::Initial | PlanKind::BlueGreen | PlanKind::AgentLevel => {
            events.push(E::DeploymentStarted { at_ms: now_ms });
            if batches == 0 {
                // A graph with no agents has nothing to wait for.
                let after = events.iter().fold(state.clone(), super::evolve::evolve);
                events.extend(progress::finish(&after, now_ms));
            }
        }
    }
    Ok(events)
}

fn rollback(
    state: &DeploymentState,
    to: &RollbackTarget,
    target: &Target,
    reason: Option<&str>,
) -> Decided {
    status(state)?;
    let none = || DeploymentError::NoRollbackTarget {
        key: state.key.clone(),
    };
    let mut newest_first = state.versions.values().rev();
    let record = match to {
        RollbackTarget::Version(v) => state.versions.get(v),
        RollbackTarget::Tag(tag) => newest_first.find(|r| r.tag.as_deref() == Some(tag.as_str())),
        RollbackTarget::LastStable => {
            newest_first.find(|r| r.stable && Some(r.version) != state.current_version)
        }
    }
    .ok_or_else(none)?;
    let manifest = Manifest::from_normalised(&record.manifest).map_err(|_| {
        DeploymentError::UnreadableManifest {
            version: record.version,
        }
    })?;
    let target = Target {
        manifest_ref: target
            .manifest_ref
            .clone()
            .or_else(|| record.manifest_ref.clone()),
        bundle: record.bundle.clone(),
        ..target.clone()
    };
    let mut events = deploy(state, &target, &manifest, Some(record.version))?;
    if let (Some(reason), Some(E::DeploymentCreated { description, .. })) =
        (reason, events.first_mut())
    {
        description.push_str(&format!(": {reason}"));
    }
    Ok(events)
}

fn batch_started(state: &DeploymentState, index: usize, now_ms: i64) -> Decided {
    let status = status(state)?;
    if !matches!(status, S::Running | S::Reverting) {
        return wrong(state, "start a batch of", status);
    }
    let Some(rollout) = state.rollout.as_ref() else {
        return Err(DeploymentError::UnexpectedBatch { index });
    };
    if rollout.active.as_ref().is_some_and(|a| a.index == index) {
        return Ok(vec![]);
    }
    match rollout.next() {
        Some((next, batch)) if next == index => Ok(vec![E::DeploymentBatchStarted {
            index,
            agents: batch.agents.clone(),
            role: batch.role,
            at_ms: now_ms,
        }]),
        _ if index < rollout.next_batch => Ok(vec![]),
        _ => Err(DeploymentError::UnexpectedBatch { index }),
    }
}

/// Promotion: the remaining batches follow, or (nothing left, as in blue-green) the target
/// becomes stable at once.
fn promote(state: &DeploymentState, now_ms: i64) -> Decided {
    let status = status(state)?;
    if status != S::AwaitingPromotion {
        return Err(DeploymentError::NotAwaitingPromotion { status });
    }
    let promoted = E::DeploymentPromoted { at_ms: now_ms };
    let after = super::evolve::evolve(state.clone(), &promoted);
    let done = after
        .rollout
        .as_ref()
        .is_none_or(|r| r.active.is_none() && r.next_batch >= r.plan.batches.len());
    let mut events = vec![promoted];
    if done {
        events.extend(progress::finish(&after, now_ms));
    }
    Ok(events)
}

fn pause(state: &DeploymentState, reason: &Option<String>, now_ms: i64) -> Decided {
    match status(state)? {
        S::Paused => Ok(vec![]),
        S::Running | S::AwaitingPromotion | S::Reverting => Ok(vec![E::DeploymentPaused {
            reason: reason.clone(),
            at_ms: now_ms,
        }]),
        s @ (S::Successful | S::VersionRecorded | S::Failed | S::Reverted) => {
            wrong(state, "pause", s)
        }
    }
}

fn resume(state: &DeploymentState, now_ms: i64) -> Decided {
    match status(state)? {
        S::Paused => Ok(vec![E::DeploymentRunning { at_ms: now_ms }]),
        S::Running | S::AwaitingPromotion | S::Reverting => Ok(vec![]),
        s @ (S::Successful | S::VersionRecorded | S::Failed | S::Reverted) => {
            wrong(state, "resume", s)
        }
    }
}

/// An operator fails the rollout; like a missed deadline, `auto_revert` then undoes it.
fn fail(state: &DeploymentState, reason: &str, now_ms: i64) -> Decided {
    let status = status(state)?;
    if !status.in_progress() {
        return wrong(state, "fail", status);
    }
    Ok(progress::fail(state, reason.to_string(), now_ms))
}

/// Whether two versions run different payload files (both archived, different digests):
/// scripts can change while every manifest field stays the same.
fn payloads_differ(a: &super::version::BundleRef, b: &super::version::BundleRef) -> bool {
    matches!((&a.digest, &b.digest), (Some(x), Some(y)) if x != y)
}
