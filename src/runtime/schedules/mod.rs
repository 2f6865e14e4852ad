//! Schedules at run time: create them from a bundle, run their commands against Redis
//! (load, decide, append with the expected length, retry on a lost race), dispatch what is
//! due, and turn emitted events into trigger runs.
//!
//! Exactly-once starts rest on two facts: a run's job id is decided and recorded
//! (`dispatched`) before the job is submitted, and a job id's history can be created only
//! once. Any number of sweepers (two leaders during a hand-over, a retry after a crash)
//! therefore converge on one job per dispatch.

mod create;
mod dispatch;
mod emit;
mod sweep;

use serde_json::Value;

use crate::domain::job::JobStatus;
use crate::domain::schedule::{ScheduleCommand, ScheduleError, ScheduleState, decide};
use crate::store::{Store, StoreError};

pub use create::{create, new_schedule_id, update};
pub use dispatch::{DispatchReport, dispatch_due, run_now, start_pending};
pub use emit::{EmitReport, emit};
pub use sweep::{SWEEP_INTERVAL, run_schedule_loop};

/// How many times to reload and retry while other writers keep winning the race.
const MAX_ATTEMPTS: usize = 16;

/// Why a schedule operation did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleRunError {
    /// The schedule's rules refused it (not found, wrong status, invalid spec).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The id cannot name a schedule.
    #[error("schedule id {0:?} may contain only letters, digits, '.', '_' and '-'")]
    BadId(String),
    #[error("schedule {0} kept changing; gave up after {MAX_ATTEMPTS} attempts")]
    Contended(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a schedule id before it is put into key names.
pub fn validate_schedule_id(id: &str) -> Result<(), ScheduleRunError> {
    crate::store::validate_job_id(id).map_err(|_| ScheduleRunError::BadId(id.to_string()))
}

/// Whether the run a schedule started last is still active (the overlap check). A job that
/// was recorded but has no view yet counts as active: it is being submitted or projected.
pub async fn previous_active(store: &Store, state: &ScheduleState) -> Result<bool, StoreError> {
    let Some(job_id) = state.last_job_id() else {
        return Ok(false);
    };
    if let Some(view) = store.job_view(job_id).await? {
        return Ok(!view.status.is_some_and(JobStatus::is_terminal));
    }
    if state.pending().any(|d| d.job_id == job_id) {
        return Ok(true);
    }
    Ok(store.version(job_id).await? > 0)
}

/// Loads the schedule, builds the command (with the overlap check when `liveness` is set),
/// decides and appends; on a lost race, again. Returns the state after and what was appended.
pub async fn execute(
    store: &Store,
    schedule_id: &str,
    liveness: bool,
    command: impl Fn(&ScheduleState, bool) -> ScheduleCommand,
) -> Result<(ScheduleState, Vec<crate::domain::schedule::ScheduleEvent>), ScheduleRunError> {
    validate_schedule_id(schedule_id)?;
    for _ in 0..MAX_ATTEMPTS {
        let state = store.load_schedule(schedule_id).await?;
        let active = liveness && previous_active(store, &state).await?;
        let events = decide(&state, &command(&state, active))?;
        if events.is_empty() {
            return Ok((state, events));
        }
        if let Some(after) = store.append_schedule(&state, &events).await? {
            return Ok((after, events));
        }
    }
    Err(ScheduleRunError::Contended(schedule_id.to_string()))
}

/// The view row of a state (what list/status print).
pub fn view_of(state: &ScheduleState) -> Value {
    crate::domain::schedule::view(state)
}
