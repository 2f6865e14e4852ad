//! What lifecycle and lease events do to a job's status, result and lease holder. Shared by the
//! decider's state and the read views, so the two can never disagree about a job's status.

use serde_json::{Value, json};

use super::status::JobStatus;
use crate::domain::event::JobEvent;

/// The status (and, for terminal events, the result) an event gives the job.
pub fn status_change(event: &JobEvent) -> Option<(JobStatus, Option<Value>)> {
    match event {
        JobEvent::JobSubmitted(_) => Some((JobStatus::Pending, None)),
        JobEvent::JobStarted | JobEvent::JobResumed => Some((JobStatus::Running, None)),
        JobEvent::JobPaused { .. } => Some((JobStatus::Paused, None)),
        JobEvent::JobCancelled { reason } => {
            Some((JobStatus::Cancelled, Some(json!({ "reason": reason }))))
        }
        JobEvent::JobCompleted { result } => Some((JobStatus::Completed, Some(result.clone()))),
        JobEvent::JobFailed { result } => Some((JobStatus::Failed, Some(result.clone()))),
        _ => None,
    }
}

/// Applies a lifecycle event to a status and result; false when the event is not one.
pub fn apply_status(
    event: &JobEvent,
    status: &mut Option<JobStatus>,
    result: &mut Option<Value>,
) -> bool {
    let Some((new_status, new_result)) = status_change(event) else {
        return false;
    };
    *status = Some(new_status);
    if new_result.is_some() {
        *result = new_result;
    }
    true
}

/// The lease as the history records it: who holds it, at which epoch, and whether the holder
/// is an in-process run of the CLI.
pub struct LeaseRecord<'a> {
    pub owner: &'a mut Option<String>,
    pub epoch: &'a mut u64,
    pub local_run: &'a mut bool,
}

/// Applies a lease event to the recorded lease; false when the event is not one.
pub fn apply_lease(event: &JobEvent, lease: LeaseRecord<'_>) -> bool {
    match event {
        JobEvent::LeaseAcquired {
            owner,
            epoch,
            local_run,
        } => {
            *lease.owner = Some(owner.clone());
            *lease.epoch = *epoch;
            *lease.local_run = *local_run;
            true
        }
        JobEvent::LeaseReleased { owner, .. } => {
            if lease.owner.as_deref() == Some(owner.as_str()) {
                *lease.owner = None;
                *lease.local_run = false;
            }
            true
        }
        _ => false,
    }
}
