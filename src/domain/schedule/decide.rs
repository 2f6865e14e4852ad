//! `decide(state, command) -> events`: the schedule's rules. Pure: time, ids and whether
//! the previous run is still active are all inputs.

use serde_json::Value;

use super::due::{due, manual_payload, run_job_id};
use super::error::ScheduleError;
use super::event::{Dispatch, DispatchReason, EmittedEvent, ScheduleEvent, SkipReason};
use super::spec::{ScheduleSpec, Timing};
use super::state::{ScheduleState, ScheduleStatus};

/// What can be asked of a schedule.
#[derive(Debug, Clone)]
pub enum ScheduleCommand {
    Create {
        spec: ScheduleSpec,
        bundle_path: String,
        graph_id: String,
        job_name: String,
        source: Value,
        now_ms: i64,
    },
    /// Replace the spec (the caller merged and re-validated it); status stays as it is.
    Update {
        spec: ScheduleSpec,
        now_ms: i64,
    },
    Pause {
        reason: Option<String>,
        now_ms: i64,
    },
    Resume {
        now_ms: i64,
    },
    Delete {
        reason: Option<String>,
        now_ms: i64,
    },
    /// A sweep: dispatch what is due (see [`due`]).
    Tick {
        now_ms: i64,
        previous_active: bool,
    },
    /// Run once now, whatever the timing (overlap is not checked: an operator asked).
    RunNow {
        payload: Option<Value>,
        now_ms: i64,
    },
    /// An event was emitted; dispatch if this trigger matches it.
    MatchEvent {
        event: EmittedEvent,
        previous_active: bool,
        now_ms: i64,
    },
    /// The job of a dispatch was submitted (or already existed).
    ConfirmStart {
        dispatch_id: String,
        now_ms: i64,
    },
    /// The job of a dispatch cannot be submitted.
    FailStart {
        dispatch_id: String,
        error: String,
        now_ms: i64,
    },
}

/// The first due instant of a spec created or resumed at `now_ms`.
fn first_due(spec: &ScheduleSpec, now_ms: i64) -> Option<i64> {
    match &spec.timing {
        Timing::Periodic(cron) => cron.next_after(now_ms),
        Timing::Delayed { run_at_ms } => Some(*run_at_ms),
        Timing::Event { .. } => None,
    }
}

/// Decides the events a command produces, or refuses it. Empty: nothing to do (already so).
pub fn decide(
    state: &ScheduleState,
    command: &ScheduleCommand,
) -> Result<Vec<ScheduleEvent>, ScheduleError> {
    let Some(status) = state.status else {
        return match command {
            ScheduleCommand::Create {
                spec,
                bundle_path,
                graph_id,
                job_name,
                source,
                now_ms,
            } => Ok(vec![ScheduleEvent::Created {
                spec: spec.to_value(),
                bundle_path: bundle_path.clone(),
                graph_id: graph_id.clone(),
                job_name: job_name.clone(),
                source: source.clone(),
                next_due_ms: first_due(spec, *now_ms),
                at_ms: *now_ms,
            }]),
            _ => Err(ScheduleError::NotFound),
        };
    };
    if status == ScheduleStatus::Deleted && !matches!(command, ScheduleCommand::Delete { .. }) {
        return Err(ScheduleError::NotFound);
    }
    let wrong = |action| {
        Err(ScheduleError::WrongStatus {
            action,
            status: status.as_str(),
        })
    };
    match command {
        ScheduleCommand::Create { .. } => Err(ScheduleError::AlreadyExists),
        ScheduleCommand::Update { spec, now_ms } => match status {
            ScheduleStatus::Active | ScheduleStatus::Paused => Ok(vec![ScheduleEvent::Updated {
                spec: spec.to_value(),
                next_due_ms: first_due(spec, *now_ms),
                at_ms: *now_ms,
            }]),
            _ => wrong("update"),
        },
        ScheduleCommand::Pause { reason, now_ms } => match status {
            ScheduleStatus::Active => Ok(vec![ScheduleEvent::Paused {
                reason: reason.clone(),
                at_ms: *now_ms,
            }]),
            ScheduleStatus::Paused => Ok(vec![]),
            _ => wrong("pause"),
        },
        ScheduleCommand::Resume { now_ms } => match (status, &state.spec) {
            (ScheduleStatus::Active, _) => Ok(vec![]),
            (ScheduleStatus::Paused, Some(spec)) => Ok(vec![ScheduleEvent::Resumed {
                next_due_ms: first_due(spec, *now_ms),
                at_ms: *now_ms,
            }]),
            _ => wrong("resume"),
        },
        ScheduleCommand::Delete { reason, now_ms } => match status {
            ScheduleStatus::Deleted => Ok(vec![]),
            _ => Ok(vec![ScheduleEvent::Deleted {
                reason: reason.clone(),
                at_ms: *now_ms,
            }]),
        },
        ScheduleCommand::Tick {
            now_ms,
            previous_active,
        } => Ok(tick(state, *now_ms, *previous_active)),
        ScheduleCommand::RunNow { payload, now_ms } => {
            let id = run_job_id(&state.schedule_id, &format!("m{}", state.seq + 1));
            Ok(vec![ScheduleEvent::Dispatched(Dispatch {
                dispatch_id: id.clone(),
                job_id: id,
                scheduled_for_ms: Some(*now_ms),
                reason: DispatchReason::Manual,
                payload: manual_payload(state, payload.clone()),
                event: None,
                decided_at_ms: *now_ms,
            })])
        }
        ScheduleCommand::MatchEvent {
            event,
            previous_active,
            now_ms,
        } => Ok(match_event(state, event, *previous_active, *now_ms)),
        ScheduleCommand::ConfirmStart {
            dispatch_id,
            now_ms,
        } => Ok(
            match state.pending().any(|d| &d.dispatch_id == dispatch_id) {
                true => vec![ScheduleEvent::DispatchStarted {
                    dispatch_id: dispatch_id.clone(),
                    at_ms: *now_ms,
                }],
                false => vec![],
            },
        ),
        ScheduleCommand::FailStart {
            dispatch_id,
            error,
            now_ms,
        } => Ok(
            match state.pending().any(|d| &d.dispatch_id == dispatch_id) {
                true => vec![ScheduleEvent::DispatchFailed {
                    dispatch_id: dispatch_id.clone(),
                    error: error.clone(),
                    at_ms: *now_ms,
                }],
                false => vec![],
            },
        ),
    }
}

fn tick(state: &ScheduleState, now_ms: i64, previous_active: bool) -> Vec<ScheduleEvent> {
    let Some(plan) = due(state, now_ms, previous_active) else {
        return vec![];
    };
    let mut events: Vec<ScheduleEvent> = plan
        .skips
        .into_iter()
        .map(|s| ScheduleEvent::Skipped {
            reason: s.reason,
            count: s.count,
            first_ms: s.first_ms,
            last_ms: s.last_ms,
            event_id: None,
            at_ms: now_ms,
        })
        .collect();
    events.extend(
        plan.dispatches
            .into_iter()
            .filter(|d| !state.has_dispatch(&d.dispatch_id))
            .map(ScheduleEvent::Dispatched),
    );
    if plan.completes {
        events.push(ScheduleEvent::Completed { at_ms: now_ms });
    } else {
        events.push(ScheduleEvent::DueComputed {
            next_due_ms: plan.next_due_ms,
            at_ms: now_ms,
        });
    }
    events
}

/// True when this schedule is an active trigger whose type and filters accept `event`.
pub fn matches(state: &ScheduleState, event: &EmittedEvent) -> bool {
    let Some(Timing::Event {
        event_types,
        filters,
    }) = state.spec.as_ref().map(|s| &s.timing)
    else {
        return false;
    };
    state.status == Some(ScheduleStatus::Active)
        && event_types.iter().any(|t| t == &event.event_type)
        && filters.matches(&event.event_type, &event.source, &event.payload)
}

fn match_event(
    state: &ScheduleState,
    event: &EmittedEvent,
    previous_active: bool,
    now_ms: i64,
) -> Vec<ScheduleEvent> {
    let id = run_job_id(&state.schedule_id, &format!("e-{}", event.event_id));
    let already = state.has_dispatch(&id)
        || state.last_skip.as_ref().is_some_and(|s| {
            s.get("event_id").and_then(Value::as_str) == Some(event.event_id.as_str())
        });
    if already || !matches(state, event) {
        return vec![];
    }
    let matched = ScheduleEvent::TriggerMatched {
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        at_ms: now_ms,
    };
    let overlap = state.spec.as_ref().is_some_and(|s| s.prohibit_overlap) && previous_active;
    let then = if overlap {
        ScheduleEvent::Skipped {
            reason: SkipReason::Overlap,
            count: 1,
            first_ms: None,
            last_ms: None,
            event_id: Some(event.event_id.clone()),
            at_ms: now_ms,
        }
    } else {
        ScheduleEvent::Dispatched(Dispatch {
            dispatch_id: id.clone(),
            job_id: id,
            scheduled_for_ms: None,
            reason: DispatchReason::Event,
            payload: state
                .spec
                .as_ref()
                .map_or(Value::Null, |s| s.payload.clone()),
            event: Some(event.clone()),
            decided_at_ms: now_ms,
        })
    };
    vec![matched, then]
}
