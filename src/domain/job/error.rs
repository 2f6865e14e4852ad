//! Why the decider refused a command. These are answers, not crashes: the caller shows them.

use super::status::JobStatus;

/// A command that does not fit the job's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Submit for a job id whose history already exists. Caller: pick a new id.
    #[error("job already exists")]
    AlreadyExists,
    /// Any command other than submit for a job with no history. Caller: report NOT_FOUND.
    #[error("job was not found")]
    NotFound,
    /// The command is not allowed in the current status (e.g. pause a completed job).
    /// Caller: report FAILED_PRECONDITION with this text.
    #[error("cannot {action} a job that is {status}")]
    WrongStatus {
        action: &'static str,
        status: JobStatus,
    },
    /// A lease command from a stale or foreign owner. Caller: stop acting for this job.
    #[error("lease epoch {offered} is not newer than recorded epoch {recorded}")]
    StaleLease { offered: u64, recorded: u64 },
    /// The message an agent step refers to is not the one in flight. Caller: drop the step.
    #[error("message {message_id} is not in flight for agent {agent_id}")]
    NotInFlight {
        agent_id: String,
        message_id: String,
    },
    /// The job's stored manifest could not be read back (written by an incompatible build).
    #[error("the job's manifest could not be read")]
    UnreadableManifest,
    /// The message names an agent the manifest does not have.
    #[error("unknown agent {0}")]
    UnknownAgent(String),
    /// An in-place deployment update names an agent the running job does not have.
    #[error("deployment target topology is not compatible with this job: it has no agent {0}")]
    IncompatibleTopology(String),
}
