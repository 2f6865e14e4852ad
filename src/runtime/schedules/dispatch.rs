//! The sweep: dispatch every due schedule, then submit the jobs its dispatches recorded.

use std::path::PathBuf;

use serde_json::Value;

use super::{ScheduleRunError, execute};
use crate::domain::job::DomainError;
use crate::domain::schedule::{
    Dispatch, ScheduleCommand, ScheduleEvent, ScheduleState, attach, dispatch_fields,
};
use crate::runtime::bundle::load_bundle;
use crate::runtime::clock::now_ms;
use crate::runtime::commands::CommandError;
use crate::runtime::local::submit_as;
use crate::store::{Store, StoreError};

/// Most schedules handled in one sweep; the rest wait for the next (they stay due).
pub const MAX_PER_SWEEP: usize = 200;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DispatchReport {
    /// Schedules that were due.
    pub checked: usize,
    /// Runs recorded by this sweep.
    pub dispatched: usize,
    /// Occurrences skipped (missed or overlapping).
    pub skipped: u64,
    /// Jobs this sweep submitted (or found already submitted), by job id.
    pub started: Vec<String>,
    /// Dispatches whose job cannot be submitted: `(job id, why)`.
    pub failed: Vec<(String, String)>,
    /// Schedules that could not be handled this time (retried next sweep): `(id, why)`.
    pub errors: Vec<(String, String)>,
}

/// Dispatches every schedule due at `now_ms` and submits the recorded jobs. Safe to call
/// from several processes at once: each dispatch starts exactly one job.
pub async fn dispatch_due(store: &Store, now_ms: i64) -> Result<DispatchReport, StoreError> {
    let ids = store.due_schedules(now_ms, MAX_PER_SWEEP).await?;
    let mut report = DispatchReport {
        checked: ids.len(),
        ..DispatchReport::default()
    };
    for id in ids {
        let ticked = execute(store, &id, true, |_, previous_active| {
            ScheduleCommand::Tick {
                now_ms,
                previous_active,
            }
        })
        .await;
        match ticked {
            Ok((state, events)) => {
                count(&mut report, &events);
                start_pending(store, &state, &mut report).await;
            }
            Err(ScheduleRunError::Store(e)) if !e.is_retryable() => {
                report.errors.push((id, e.to_string()))
            }
            Err(ScheduleRunError::Store(e)) => return Err(e),
            Err(e) => report.errors.push((id, e.to_string())),
        }
    }
    Ok(report)
}

fn count(report: &mut DispatchReport, events: &[ScheduleEvent]) {
    for e in events {
        match e {
            ScheduleEvent::Dispatched(_) => report.dispatched += 1,
            ScheduleEvent::Skipped { count, .. } => report.skipped += count,
            _ => {}
        }
    }
}

/// Runs a schedule once now (`run-now`) and submits the job; returns the job id.
pub async fn run_now(
    store: &Store,
    schedule_id: &str,
    payload: Option<Value>,
) -> Result<(ScheduleState, String, DispatchReport), ScheduleRunError> {
    let now = now_ms();
    let (state, events) = execute(store, schedule_id, false, |_, _| ScheduleCommand::RunNow {
        payload: payload.clone(),
        now_ms: now,
    })
    .await?;
    let job_id = events
        .iter()
        .find_map(|e| match e {
            ScheduleEvent::Dispatched(d) => Some(d.job_id.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let mut report = DispatchReport::default();
    count(&mut report, &events);
    start_pending(store, &state, &mut report).await;
    let state = store.load_schedule(schedule_id).await?;
    Ok((state, job_id, report))
}

/// Submits the job of every dispatch the state records as pending, then confirms it. A job
/// that already exists (another sweeper got there first) counts as submitted.
pub async fn start_pending(store: &Store, state: &ScheduleState, report: &mut DispatchReport) {
    let pending: Vec<Dispatch> = state.pending().cloned().collect();
    for d in pending {
        let outcome = submit(store, state, &d).await;
        let command = match outcome {
            Ok(()) => ScheduleCommand::ConfirmStart {
                dispatch_id: d.dispatch_id.clone(),
                now_ms: now_ms(),
            },
            Err(Start::Permanent(error)) => {
                tracing::warn!(schedule_id = %state.schedule_id, job_id = %d.job_id, %error, "scheduled run cannot start");
                report.failed.push((d.job_id.clone(), error.clone()));
                ScheduleCommand::FailStart {
                    dispatch_id: d.dispatch_id.clone(),
                    error,
                    now_ms: now_ms(),
                }
            }
            Err(Start::Retry(error)) => {
                report.errors.push((state.schedule_id.clone(), error));
                continue;
            }
        };
        match execute(store, &state.schedule_id, false, |_, _| command.clone()).await {
            Ok(_) if matches!(command, ScheduleCommand::ConfirmStart { .. }) => {
                report.started.push(d.job_id.clone())
            }
            Ok(_) => {}
            Err(e) => report
                .errors
                .push((state.schedule_id.clone(), e.to_string())),
        }
    }
}

enum Start {
    /// Will not work however often it is tried (the bundle is gone or invalid).
    Permanent(String),
    /// Redis trouble: the dispatch stays pending and the next sweep tries again.
    Retry(String),
}

/// Loads the schedule's bundle, gives its entrypoints the dispatch (and event) as input, and
/// submits it under the dispatch's job id.
async fn submit(store: &Store, state: &ScheduleState, d: &Dispatch) -> Result<(), Start> {
    let root = PathBuf::from(&state.bundle_path);
    let mut bundle = tokio::task::spawn_blocking(move || load_bundle(&root))
        .await
        .map_err(|e| Start::Retry(format!("bundle load task failed: {e}")))?
        .map_err(|e| Start::Permanent(format!("cannot load bundle {}: {e}", state.bundle_path)))?;
    let name = state
        .spec
        .as_ref()
        .map_or(state.job_name.as_str(), |s| s.name.as_str());
    let fields = dispatch_fields(&state.schedule_id, name, d);
    let manifest = &mut bundle.manifest;
    attach(&mut manifest.initial_inputs, &manifest.entrypoints, &fields);
    match submit_as(store, &bundle, &d.job_id).await {
        Ok(()) | Err(CommandError::Domain(DomainError::AlreadyExists)) => Ok(()),
        Err(CommandError::Store(e)) => Err(Start::Retry(e.to_string())),
        Err(CommandError::Append(crate::store::AppendError::Store(e))) => {
            Err(Start::Retry(e.to_string()))
        }
        Err(CommandError::Contended { .. }) => Err(Start::Retry("job id contended".into())),
        Err(e) => Err(Start::Permanent(e.to_string())),
    }
}
