//! What a sweep at `now` owes a schedule: runs to dispatch, occurrences to skip, and the
//! next due instant. Pure; the caller says whether the previous run is still active.
//!
//! Policies: with `skip`, only the newest occurrence runs, and only if it is late by at most
//! `missed_grace_ms` (a sweep every 500 ms is always a little late; that is not a miss).
//! With `catchup`, the newest `catchup_limit` occurrences run and older ones are skipped:
//! after a long outage the recent runs matter more than the ancient ones. With
//! `prohibit_overlap`, nothing runs while the previous run is active, and a catch-up
//! collapses to its newest occurrence (running several at once would overlap them).

use serde_json::Value;

use super::event::{Dispatch, DispatchReason, SkipReason};
use super::spec::{MissedPolicy, Timing};
use super::state::{ScheduleState, ScheduleStatus};

/// Longest stretch of missed occurrences counted one by one (beyond it, "at least").
pub const MAX_COUNTED_MISSES: usize = 10_000;

/// Occurrences not run, in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub reason: SkipReason,
    pub count: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// A sweep's plan for one schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct DuePlan {
    pub dispatches: Vec<Dispatch>,
    pub skips: Vec<Skip>,
    pub next_due_ms: Option<i64>,
    /// A delayed schedule that has now run: it completes.
    pub completes: bool,
}

/// The job id (and dispatch id) of a run: deterministic, so a retry names the same job.
pub fn run_job_id(schedule_id: &str, suffix: &str) -> String {
    format!("{schedule_id}-{suffix}")
}

/// The plan at `now_ms`, or `None` when nothing is due (not active, or not yet time).
pub fn due(state: &ScheduleState, now_ms: i64, previous_active: bool) -> Option<DuePlan> {
    let spec = state.spec.as_ref()?;
    let next = state.next_due_ms?;
    if state.status != Some(ScheduleStatus::Active) || next > now_ms {
        return None;
    }
    let dispatch = |at: i64, reason| Dispatch {
        dispatch_id: run_job_id(&state.schedule_id, &format!("t{at}")),
        job_id: run_job_id(&state.schedule_id, &format!("t{at}")),
        scheduled_for_ms: Some(at),
        reason,
        payload: spec.payload.clone(),
        event: None,
        decided_at_ms: now_ms,
    };
    match &spec.timing {
        Timing::Event { .. } => None,
        Timing::Delayed { .. } => Some(DuePlan {
            dispatches: vec![dispatch(next, DispatchReason::Delay)],
            skips: vec![],
            next_due_ms: None,
            completes: true,
        }),
        Timing::Periodic(cron) => {
            let wanted = match spec.missed_policy {
                MissedPolicy::Skip => 1,
                MissedPolicy::Catchup => spec.catchup_limit as usize,
            };
            let (all, more) = cron.runs_between(next - 1, now_ms, MAX_COUNTED_MISSES);
            let mut runs = cron.newest_runs(next, now_ms, wanted);
            if spec.missed_policy == MissedPolicy::Skip {
                runs.retain(|&r| now_ms - r <= spec.missed_grace_ms);
            }
            let total = all.len().max(runs.len()) as u64 + u64::from(more);
            let mut skips = Vec::new();
            let missed = total - runs.len() as u64;
            if missed > 0 {
                let before_runs = |&t: &i64| runs.first().is_none_or(|&r| t < r);
                skips.push(Skip {
                    reason: SkipReason::Missed,
                    count: missed,
                    first_ms: all.first().copied(),
                    last_ms: all.iter().copied().rfind(before_runs),
                });
            }
            if spec.prohibit_overlap {
                let keep = if previous_active {
                    0
                } else {
                    runs.len().min(1)
                };
                let blocked: Vec<i64> = runs.drain(..runs.len() - keep).collect();
                if !blocked.is_empty() {
                    skips.push(Skip {
                        reason: SkipReason::Overlap,
                        count: blocked.len() as u64,
                        first_ms: blocked.first().copied(),
                        last_ms: blocked.last().copied(),
                    });
                }
            }
            let dispatches = runs
                .into_iter()
                .map(|r| {
                    let reason = if now_ms - r <= spec.missed_grace_ms {
                        DispatchReason::Cron
                    } else {
                        DispatchReason::Catchup
                    };
                    dispatch(r, reason)
                })
                .collect();
            Some(DuePlan {
                dispatches,
                skips,
                next_due_ms: cron.next_after(now_ms),
                completes: false,
            })
        }
    }
}

/// A manual run's payload: the one given, else the schedule's.
pub fn manual_payload(state: &ScheduleState, given: Option<Value>) -> Value {
    given
        .filter(|v| !v.is_null())
        .or_else(|| state.spec.as_ref().map(|s| s.payload.clone()))
        .unwrap_or(Value::Null)
}
