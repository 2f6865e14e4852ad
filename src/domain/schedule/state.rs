//! A schedule's state, folded from its history by [`evolve`].

use std::collections::VecDeque;

use serde_json::Value;

use super::event::{Dispatch, ScheduleEvent};
use super::spec::ScheduleSpec;

/// How many recent dispatches the state (and the view) keeps.
pub const RECENT_DISPATCHES: usize = 50;

/// Where a schedule is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleStatus {
    Active,
    Paused,
    /// A delayed schedule that ran.
    Completed,
    Deleted,
}

impl ScheduleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Active => "active",
            ScheduleStatus::Paused => "paused",
            ScheduleStatus::Completed => "completed",
            ScheduleStatus::Deleted => "deleted",
        }
    }
}

/// What happened to a dispatch, for the view and the overlap check.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchRecord {
    pub dispatch: Dispatch,
    /// `pending` (recorded, job not yet submitted), `submitted` or `failed`.
    pub status: &'static str,
    pub error: Option<String>,
}

/// Counters shown in the view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub dispatched: u64,
    pub missed: u64,
    pub overlap_skipped: u64,
    pub failed: u64,
    pub events_matched: u64,
}

/// The folded state.
#[derive(Debug, Clone, Default)]
pub struct ScheduleState {
    pub schedule_id: String,
    /// Number of events folded: the expected length for the next append.
    pub seq: u64,
    /// `None` until `created`.
    pub status: Option<ScheduleStatus>,
    pub spec: Option<ScheduleSpec>,
    /// The normalised spec as stored.
    pub spec_value: Value,
    /// Set when the stored spec no longer parses (e.g. a zone removed from the database).
    pub spec_error: Option<String>,
    pub bundle_path: String,
    pub graph_id: String,
    pub job_name: String,
    pub source: Value,
    pub next_due_ms: Option<i64>,
    /// Newest last.
    pub recent: VecDeque<DispatchRecord>,
    pub counters: Counters,
    /// The last skip, as a small JSON object for the view.
    pub last_skip: Option<Value>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl ScheduleState {
    pub fn new(schedule_id: &str) -> ScheduleState {
        ScheduleState {
            schedule_id: schedule_id.to_string(),
            ..ScheduleState::default()
        }
    }

    /// Dispatches recorded whose job has not been confirmed submitted, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Dispatch> {
        self.recent
            .iter()
            .filter(|r| r.status == "pending")
            .map(|r| &r.dispatch)
    }

    /// Whether a dispatch id was already recorded (a retried sweep or emit).
    pub fn has_dispatch(&self, dispatch_id: &str) -> bool {
        self.recent
            .iter()
            .any(|r| r.dispatch.dispatch_id == dispatch_id)
    }

    /// The job of the newest dispatch that was not refused: the one overlap is judged on.
    pub fn last_job_id(&self) -> Option<&str> {
        self.recent
            .iter()
            .rev()
            .find(|r| r.status != "failed")
            .map(|r| r.dispatch.job_id.as_str())
    }

    /// Score in the due index: now-ish when a dispatch waits to be submitted, the next
    /// occurrence while active, absent otherwise.
    pub fn due_score(&self) -> Option<i64> {
        if self.status == Some(ScheduleStatus::Deleted) {
            return None;
        }
        if let Some(p) = self.pending().next() {
            return Some(p.decided_at_ms);
        }
        match self.status {
            Some(ScheduleStatus::Active) => self.next_due_ms,
            _ => None,
        }
    }
}

/// Applies one event. Total: an accepted history always folds.
pub fn evolve(mut state: ScheduleState, event: &ScheduleEvent) -> ScheduleState {
    state.seq += 1;
    match event {
        ScheduleEvent::Created {
            spec,
            bundle_path,
            graph_id,
            job_name,
            source,
            next_due_ms,
            at_ms,
        } => {
            match ScheduleSpec::parse(spec, *at_ms) {
                Ok(parsed) => {
                    state.status = Some(if parsed.enabled {
                        ScheduleStatus::Active
                    } else {
                        ScheduleStatus::Paused
                    });
                    state.spec = Some(parsed);
                }
                Err(e) => {
                    state.status = Some(ScheduleStatus::Paused);
                    state.spec_error = Some(e.to_string());
                }
            }
            state.spec_value = spec.clone();
            state.bundle_path = bundle_path.clone();
            state.graph_id = graph_id.clone();
            state.job_name = job_name.clone();
            state.source = source.clone();
            state.next_due_ms = *next_due_ms;
            state.created_at_ms = *at_ms;
        }
        ScheduleEvent::Updated {
            spec,
            next_due_ms,
            at_ms,
        } => {
            match ScheduleSpec::parse(spec, *at_ms) {
                Ok(parsed) => {
                    state.spec = Some(parsed);
                    state.spec_error = None;
                }
                Err(e) => state.spec_error = Some(e.to_string()),
            }
            state.spec_value = spec.clone();
            state.next_due_ms = *next_due_ms;
        }
        ScheduleEvent::Paused { .. } => state.status = Some(ScheduleStatus::Paused),
        ScheduleEvent::Resumed { next_due_ms, .. } => {
            state.status = Some(ScheduleStatus::Active);
            state.next_due_ms = *next_due_ms;
        }
        ScheduleEvent::Deleted { .. } => {
            state.status = Some(ScheduleStatus::Deleted);
            state.next_due_ms = None;
        }
        ScheduleEvent::DueComputed { next_due_ms, .. } => state.next_due_ms = *next_due_ms,
        ScheduleEvent::Dispatched(d) => {
            state.counters.dispatched += 1;
            state.recent.push_back(DispatchRecord {
                dispatch: d.clone(),
                status: "pending",
                error: None,
            });
            // Forget the oldest settled dispatches; a pending one is kept until it settles.
            while state.recent.len() > RECENT_DISPATCHES {
                match state.recent.iter().position(|r| r.status != "pending") {
                    Some(i) => {
                        state.recent.remove(i);
                    }
                    None => break,
                }
            }
        }
        ScheduleEvent::DispatchStarted { dispatch_id, .. } => {
            if let Some(r) = record_mut(&mut state, dispatch_id) {
                r.status = "submitted";
            }
        }
        ScheduleEvent::DispatchFailed {
            dispatch_id, error, ..
        } => {
            state.counters.failed += 1;
            if let Some(r) = record_mut(&mut state, dispatch_id) {
                r.status = "failed";
                r.error = Some(error.clone());
            }
        }
        ScheduleEvent::Skipped {
            reason,
            count,
            first_ms,
            last_ms,
            event_id,
            at_ms,
        } => {
            match reason {
                super::SkipReason::Missed => state.counters.missed += count,
                super::SkipReason::Overlap => state.counters.overlap_skipped += count,
            }
            state.last_skip = Some(serde_json::json!({
                "reason": reason, "count": count, "first_ms": first_ms, "last_ms": last_ms,
                "event_id": event_id, "at_ms": at_ms,
            }));
        }
        ScheduleEvent::TriggerMatched { .. } => state.counters.events_matched += 1,
        ScheduleEvent::Completed { .. } => {
            state.status = Some(ScheduleStatus::Completed);
            state.next_due_ms = None;
        }
    }
    state.updated_at_ms = at_ms(event).max(state.updated_at_ms);
    state
}

fn record_mut<'a>(
    state: &'a mut ScheduleState,
    dispatch_id: &str,
) -> Option<&'a mut DispatchRecord> {
    state
        .recent
        .iter_mut()
        .rev()
        .find(|r| r.dispatch.dispatch_id == dispatch_id)
}

fn at_ms(event: &ScheduleEvent) -> i64 {
    match event {
        ScheduleEvent::Created { at_ms, .. }
        | ScheduleEvent::Updated { at_ms, .. }
        | ScheduleEvent::Paused { at_ms, .. }
        | ScheduleEvent::Resumed { at_ms, .. }
        | ScheduleEvent::Deleted { at_ms, .. }
        | ScheduleEvent::DueComputed { at_ms, .. }
        | ScheduleEvent::DispatchStarted { at_ms, .. }
        | ScheduleEvent::DispatchFailed { at_ms, .. }
        | ScheduleEvent::Skipped { at_ms, .. }
        | ScheduleEvent::TriggerMatched { at_ms, .. }
        | ScheduleEvent::Completed { at_ms } => *at_ms,
        ScheduleEvent::Dispatched(d) => d.decided_at_ms,
    }
}

/// Folds a whole history.
pub fn fold<'a>(
    schedule_id: &str,
    events: impl IntoIterator<Item = &'a ScheduleEvent>,
) -> ScheduleState {
    events
        .into_iter()
        .fold(ScheduleState::new(schedule_id), evolve)
}
