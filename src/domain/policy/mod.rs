//! Restart and reschedule policies (core-spec 8): what they are for each kind of job, how a
//! job or one of its agents overrides them, and the pure decision "restart now, after a delay,
//! wait for the window, or give up" from the attempt history and the current time.
//!
//! The clock is an input (`now_ms`), so replaying history gives the same decisions.
//!
//! # Layout
//! - [`model`]: [`LifecyclePolicy`] and its enums.
//! - [`defaults`](mod@defaults): the built-in policy by job type and effective recovery mode.
//! - [`resolve`](mod@resolve): defaults ← `policies.<kind>` ← `nodes[agent].policies.<kind>`.
//! - [`decide`]: [`decide_restart`], [`decide_reschedule`], delay sequences, history upkeep.
//! - [`update`]: the deployment update policy (`policies.update`), parsed once at validation.

pub mod decide;
pub mod defaults;
pub mod model;
pub mod resolve;
pub mod update;

#[cfg(test)]
mod tests;

pub use decide::{
    Attempt, RescheduleDecision, RestartDecision, decide_reschedule, decide_restart, delay_for,
    record_attempt,
};
pub use defaults::defaults;
pub use model::{DelayFunction, LifecyclePolicy, PolicyKind, RecoveryMode, RestartMode};
pub use resolve::{PolicyError, resolve, resolve_for_agent};
pub use update::{HealthCheck, UpdatePolicy, UpdateStrategy};
