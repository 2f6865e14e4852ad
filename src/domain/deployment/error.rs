//! Why a deployment command was refused. Answers for the caller, not crashes.

use super::status::DeploymentStatus;
use super::version::Version;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    /// The key has no deployment. Caller: report NOT_FOUND (an update falls back to deploy).
    #[error("deployment {key} was not found")]
    NotFound { key: String },
    /// Promote outside `awaiting_promotion`. Caller: FAILED_PRECONDITION with this text.
    #[error("deployment is {status}, expected awaiting_promotion")]
    NotAwaitingPromotion { status: DeploymentStatus },
    /// The command does not fit the status (pause a finished rollout, ...).
    #[error("cannot {action} deployment {key}: it is {status}")]
    WrongStatus {
        key: String,
        action: &'static str,
        status: DeploymentStatus,
    },
    /// A rollout is still in progress. Caller: promote, fail or wait for it, then retry.
    #[error("deployment {key} is {status}; promote, fail or wait for it before updating")]
    Busy {
        key: String,
        status: DeploymentStatus,
    },
    #[error("no rollback target found for deployment {key}")]
    NoRollbackTarget { key: String },
    /// A stored manifest no longer reads back (written by an incompatible build).
    #[error("the manifest of version {version} could not be read")]
    UnreadableManifest { version: Version },
    /// A batch report that is not about the batch in flight (or the next one to start).
    /// Caller: drop it; it is stale.
    #[error("batch {index} is not the batch in progress")]
    UnexpectedBatch { index: usize },
}
