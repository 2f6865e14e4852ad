//! The facts of a schedule's life, stored as JSON on the schedule's own stream.
//!
//! The order that makes dispatch exactly-once: `dispatched` (with the job id the run will
//! have) is recorded before the job is submitted, and `dispatch_started` after. A sweep that
//! finds a dispatch without its `dispatch_started` (a crash, or a rival leader mid-way)
//! submits the same job id again, which the job stream refuses to create twice.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An event emitted through `event emit` / `EmitTriggerEvent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmittedEvent {
    pub event_id: String,
    pub event_type: String,
    pub source: String,
    pub payload: Value,
    pub created_at_ms: i64,
}

/// Why a run was dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchReason {
    /// A cron occurrence, on time.
    Cron,
    /// A missed cron occurrence, run late under `missed_policy: catchup`.
    Catchup,
    /// A delayed schedule's instant came.
    Delay,
    /// An operator asked (`run-now`, `DispatchSchedule`).
    Manual,
    /// A matching event was emitted.
    Event,
}

/// Why occurrences were not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Later than the grace period (skip policy) or beyond the catch-up limit.
    Missed,
    /// The previous run was still active and the schedule prohibits overlap.
    Overlap,
}

/// One run a schedule decided to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Equal to the job id: one dispatch, one job, whatever retries happen.
    pub dispatch_id: String,
    pub job_id: String,
    /// The occurrence this run stands for (`None` for manual and event runs).
    pub scheduled_for_ms: Option<i64>,
    pub reason: DispatchReason,
    pub payload: Value,
    pub event: Option<EmittedEvent>,
    pub decided_at_ms: i64,
}

/// The facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ScheduleEvent {
    /// The schedule exists; `spec` is the normalised spec.
    Created {
        spec: Value,
        bundle_path: String,
        graph_id: String,
        job_name: String,
        source: Value,
        next_due_ms: Option<i64>,
        at_ms: i64,
    },
    /// The spec was replaced (an update); the next due instant follows the new spec.
    Updated {
        spec: Value,
        next_due_ms: Option<i64>,
        at_ms: i64,
    },
    Paused {
        reason: Option<String>,
        at_ms: i64,
    },
    /// Running again; occurrences that passed while paused are not caught up.
    Resumed {
        next_due_ms: Option<i64>,
        at_ms: i64,
    },
    Deleted {
        reason: Option<String>,
        at_ms: i64,
    },
    /// The next occurrence after a sweep (`None`: never again).
    DueComputed {
        next_due_ms: Option<i64>,
        at_ms: i64,
    },
    /// A run was decided; its job is about to be submitted under `job_id`.
    Dispatched(Dispatch),
    /// The run's job was submitted (or already existed).
    DispatchStarted {
        dispatch_id: String,
        at_ms: i64,
    },
    /// The run's job could not be submitted (e.g. the bundle is gone); not retried.
    DispatchFailed {
        dispatch_id: String,
        error: String,
        at_ms: i64,
    },
    /// Occurrences (or an event) that were not run; `count` may exceed the listed instants.
    Skipped {
        reason: SkipReason,
        count: u64,
        first_ms: Option<i64>,
        last_ms: Option<i64>,
        event_id: Option<String>,
        at_ms: i64,
    },
    /// An emitted event matched this trigger (a dispatch or an overlap skip follows).
    TriggerMatched {
        event_id: String,
        event_type: String,
        at_ms: i64,
    },
    /// A delayed schedule ran; nothing more will happen.
    Completed {
        at_ms: i64,
    },
}

impl ScheduleEvent {
    /// The snake_case name stored next to the JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            ScheduleEvent::Created { .. } => "created",
            ScheduleEvent::Updated { .. } => "updated",
            ScheduleEvent::Paused { .. } => "paused",
            ScheduleEvent::Resumed { .. } => "resumed",
            ScheduleEvent::Deleted { .. } => "deleted",
            ScheduleEvent::DueComputed { .. } => "due_computed",
            ScheduleEvent::Dispatched(_) => "dispatched",
            ScheduleEvent::DispatchStarted { .. } => "dispatch_started",
            ScheduleEvent::DispatchFailed { .. } => "dispatch_failed",
            ScheduleEvent::Skipped { .. } => "skipped",
            ScheduleEvent::TriggerMatched { .. } => "trigger_matched",
            ScheduleEvent::Completed { .. } => "completed",
        }
    }

    /// JSON for the stream.
    pub fn to_json(&self) -> String {
        // Plain data with string keys always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an event back from the stream.
    pub fn from_json(text: &str) -> Result<ScheduleEvent, serde_json::Error> {
        serde_json::from_str(text)
    }
}
