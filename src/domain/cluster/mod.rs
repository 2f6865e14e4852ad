//! Cluster decisions as pure functions of an observed snapshot: which nodes are lost, which
//! jobs need an owner and where, which work must move, when a drain is done, and which
//! recovery policy a job gets. The leader gathers the snapshot and turns the answer into
//! commands; nothing here reads a clock or Redis.

mod placement;
mod reconcile;
mod recovery;
#[cfg(test)]
mod tests;

pub use placement::Need;
pub use reconcile::{Action, JobObs, NodeObs, Snapshot, reconcile};
pub use recovery::{RecoveryPolicy, Reliability, resolve_recovery};
