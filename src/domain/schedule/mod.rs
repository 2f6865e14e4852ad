//! The schedule aggregate (periodic, delayed and event-triggered runs of a bundle) as a
//! Decider: [`decide`] turns a command into events, [`evolve`] folds them, [`due`] says what
//! a sweep owes. All pure: the clock, ids and job liveness are inputs, so DST, catch-up and
//! overlap rules are tested without Redis or sleeping.

mod cron;
mod decide;
mod due;
mod error;
mod event;
mod fields;
mod filter;
mod input;
mod spec;
mod state;
mod view;

pub use cron::{CronSet, parse_timezone};
pub use decide::{ScheduleCommand, decide, matches};
pub use due::{DuePlan, Skip, due, run_job_id};
pub use error::{ScheduleError, SpecError};
pub use event::{Dispatch, DispatchReason, EmittedEvent, ScheduleEvent, SkipReason};
pub use filter::{Condition, Filters};
pub use input::{attach, dispatch_fields};
pub use spec::{MissedPolicy, ScheduleSpec, Timing, validate_event_type};
pub use state::{Counters, DispatchRecord, ScheduleState, ScheduleStatus, evolve, fold};
pub use view::view;

#[cfg(test)]
mod tests;
