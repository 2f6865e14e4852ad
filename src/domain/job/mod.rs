//! The job aggregate as a Decider: [`decide`] turns a command into events, [`evolve`] folds
//! events into state. Both are pure; the runtime wraps them with Redis and clocks.

mod command;
mod copies;
mod decide;
mod deployment;
mod error;
mod evolve;
pub mod lifecycle;
mod next;
mod quiescence;
mod restart;
mod seeds;
mod services;
mod state;
mod status;
mod step;

pub use command::JobCommand;
pub use copies::{per_node, source_of, sysbatch_done};
pub use decide::decide;
pub use deployment::{DeploymentRecord, JobDeployment};
pub use error::DomainError;
pub use evolve::{evolve, fold};
pub use next::{NextStep, next_steps};
pub use quiescence::{DeadLetterSample, stalled_on_dead_letters};
pub use seeds::seed_messages;
pub use state::{AgentRuntime, InFlight, JobState};
pub use status::JobStatus;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_concurrency;
