//! The runtime half of services (core-spec 9.1): running checks, registering instances when
//! jobs and agents start, the per-node monitor, the registry read, and preflight.
//!
//! # Layout
//! - [`checks`]: one file per check type, with timeouts and redaction.
//! - [`registry`]: the registry as the job projections hold it (read side).
//! - [`register`]: the instances a job registers when it starts (owner side).
//! - [`monitor`]: each node re-checks the instances it hosts and records status changes.
//! - [`node_loss`]: the leader deregisters a lost node's instances.
//! - [`preflight`]: `required_services` checked before a job starts.

pub mod checks;
pub mod monitor;
pub mod node_loss;
pub mod preflight;
pub mod register;
pub mod registry;
