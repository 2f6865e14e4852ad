//! `evolve(state, event) -> state`: folds the facts. Total: an accepted history always folds.

use super::event::DeploymentEvent as E;
use super::state::{ActiveBatch, DeploymentState, Rollout};
use super::status::DeploymentStatus as S;
use super::version::Version;

/// Applies one event.
pub fn evolve(mut state: DeploymentState, event: &E) -> DeploymentState {
    state.seq += 1;
    match event {
        E::DeploymentCreated {
            deployment_id,
            key,
            record,
            policy,
            plan,
            source_job_id,
            description,
            at_ms,
            ..
        } => {
            if state.status.is_none() {
                state.key = key.clone();
                state.created_at_ms = *at_ms;
            }
            state.versions.insert(record.version, record.clone());
            state.rollout = Some(Rollout {
                deployment_id: deployment_id.clone(),
                version: record.version,
                job_id: record.job_id.clone(),
                source_job_id: source_job_id.clone(),
                policy: policy.clone(),
                plan: plan.clone(),
                next_batch: 0,
                active: None,
                touched: Vec::new(),
                last_progress_ms: *at_ms,
                created_at_ms: *at_ms,
                reverting: false,
                description: description.clone(),
            });
            state.failure = None;
            state.retired_job_id = None;
            state.description = description.clone();
            // Running until a following event of the same decision says otherwise.
            state.status = Some(S::Running);
        }
        E::DeploymentStarted { at_ms } => {
            state.status = Some(S::Running);
            with_rollout(&mut state, |r| r.last_progress_ms = *at_ms);
        }
        E::DeploymentBatchStarted {
            index,
            agents,
            at_ms,
            ..
        } => with_rollout(&mut state, |r| {
            r.active = Some(ActiveBatch {
                index: *index,
                started_at_ms: *at_ms,
                healthy_since_ms: None,
            });
            r.next_batch = index + 1;
            r.touched.extend(agents.iter().cloned());
            r.last_progress_ms = *at_ms;
        }),
        E::DeploymentBatchHealthy { since_ms, .. } => with_rollout(&mut state, |r| {
            if let Some(a) = r.active.as_mut() {
                a.healthy_since_ms = Some(*since_ms);
            }
            r.last_progress_ms = r.last_progress_ms.max(*since_ms);
        }),
        E::DeploymentBatchUnhealthy { .. } => with_rollout(&mut state, |r| {
            if let Some(a) = r.active.as_mut() {
                a.healthy_since_ms = None;
            }
        }),
        E::DeploymentBatchCompleted { at_ms, .. } => with_rollout(&mut state, |r| {
            r.active = None;
            r.last_progress_ms = *at_ms;
        }),
        E::DeploymentCanaryReady {
            auto_promote,
            at_ms,
            ..
        } => {
            if !auto_promote {
                state.status = Some(S::AwaitingPromotion);
                state.description = "canaries are healthy; awaiting promotion".into();
            }
            with_rollout(&mut state, |r| r.last_progress_ms = *at_ms);
        }
        E::DeploymentPromoted { at_ms } => {
            state.status = Some(S::Running);
            state.description = "promoted; rolling out the remaining batches".into();
            with_rollout(&mut state, |r| r.last_progress_ms = *at_ms);
        }
        E::DeploymentSuccessful {
            version,
            job_id,
            cancel_job_id,
            description,
            at_ms,
        } => {
            make_stable(&mut state, *version, job_id, *at_ms);
            state.retired_job_id.clone_from(cancel_job_id);
            state.status = Some(S::Successful);
            state.description = description.clone();
        }
        E::DeploymentNoop { version, at_ms } => {
            let job = state.versions.get(version).map(|r| r.job_id.clone());
            make_stable(&mut state, *version, &job.unwrap_or_default(), *at_ms);
            state.status = Some(S::Successful);
            state.description = "deployment contained no runtime changes".into();
        }
        E::DeploymentVersionRecorded {
            version, job_id, ..
        } => {
            state.current_version = Some(*version);
            state.current_job_id = Some(job_id.clone());
            state.status = Some(S::VersionRecorded);
            state.description = "version recorded".into();
        }
        E::DeploymentPaused { reason, at_ms } => {
            state.paused_from = state.status;
            state.paused_at_ms = Some(*at_ms);
            state.status = Some(S::Paused);
            state.description = reason.clone().unwrap_or_else(|| "paused".into());
        }
        E::DeploymentRunning { at_ms } => resume(&mut state, *at_ms),
        E::DeploymentFailed { reason, .. } => {
            state.status = Some(S::Failed);
            state.failure = Some(reason.clone());
            state.description = reason.clone();
            with_rollout(&mut state, |r| r.active = None);
        }
        E::DeploymentReverting {
            record,
            to,
            plan,
            at_ms,
        } => {
            state.versions.insert(record.version, record.clone());
            let description = format!("reverting to version {to}");
            with_rollout(&mut state, |r| {
                r.version = record.version;
                r.source_job_id = Some(r.job_id.clone());
                r.job_id = record.job_id.clone();
                r.plan = plan.clone();
                r.next_batch = 0;
                r.active = None;
                r.touched.clear();
                r.last_progress_ms = *at_ms;
                r.reverting = true;
                r.description = description.clone();
            });
            state.status = Some(S::Reverting);
            state.description = description;
        }
        E::DeploymentReverted {
            version,
            job_id,
            cancel_job_id,
            at_ms,
        } => {
            make_stable(&mut state, *version, job_id, *at_ms);
            state.retired_job_id.clone_from(cancel_job_id);
            state.status = Some(S::Reverted);
            let why = state.failure.as_deref().unwrap_or("a failure");
            state.description = format!("reverted to version {version} after {why}");
        }
    }
    state.updated_at_ms = at_ms(event).max(state.updated_at_ms);
    state
}

fn with_rollout(state: &mut DeploymentState, f: impl FnOnce(&mut Rollout)) {
    if let Some(r) = state.rollout.as_mut() {
        f(r);
    }
}

fn make_stable(state: &mut DeploymentState, version: Version, job_id: &str, at_ms: i64) {
    if let Some(record) = state.versions.get_mut(&version) {
        record.stable = true;
        record.updated_at_ms = at_ms;
    }
    state.current_version = Some(version);
    state.stable_version = Some(version);
    state.current_job_id = Some(job_id.to_string());
    state.stable_job_id = Some(job_id.to_string());
}

/// Back to where the pause found it; the deadline clocks skip the paused time so a pause is
/// never what fails a rollout.
fn resume(state: &mut DeploymentState, at_ms: i64) {
    let paused = state.paused_at_ms.map_or(0, |p| (at_ms - p).max(0));
    state.status = state.paused_from.take().or(Some(S::Running));
    state.paused_at_ms = None;
    state.description = "resumed".into();
    with_rollout(state, |r| {
        r.last_progress_ms += paused;
        if let Some(a) = r.active.as_mut() {
            a.started_at_ms += paused;
        }
    });
}

fn at_ms(event: &E) -> i64 {
    match event {
        E::DeploymentCreated { at_ms, .. }
        | E::DeploymentStarted { at_ms }
        | E::DeploymentBatchStarted { at_ms, .. }
        | E::DeploymentBatchUnhealthy { at_ms, .. }
        | E::DeploymentBatchCompleted { at_ms, .. }
        | E::DeploymentCanaryReady { at_ms, .. }
        | E::DeploymentPromoted { at_ms }
        | E::DeploymentSuccessful { at_ms, .. }
        | E::DeploymentNoop { at_ms, .. }
        | E::DeploymentVersionRecorded { at_ms, .. }
        | E::DeploymentPaused { at_ms, .. }
        | E::DeploymentRunning { at_ms }
        | E::DeploymentFailed { at_ms, .. }
        | E::DeploymentReverting { at_ms, .. }
        | E::DeploymentReverted { at_ms, .. } => *at_ms,
        E::DeploymentBatchHealthy { since_ms, .. } => *since_ms,
    }
}

/// Folds a whole history.
pub fn fold<'a>(key: &str, events: impl IntoIterator<Item = &'a E>) -> DeploymentState {
    events.into_iter().fold(DeploymentState::new(key), evolve)
}
