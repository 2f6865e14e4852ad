//! Handing a job back from an in-process run of the CLI (`run`, `job recover`) that stops
//! before the job ends (Ctrl-C, SIGTERM, `--timeout`). The owner stops the way a serving
//! node's owners stop at shutdown (steps killed, lease released); this then records the
//! release in the job's history, with why, through the ordinary command path. A node that
//! stops keeps its name in the history, so a `local_restart` job waits for it to return; a
//! local run never returns, so its release is written down and any node may take the job.

use crate::domain::job::JobCommand;
use crate::runtime::commands::{self, CommandError};
use crate::store::Store;

/// Why a local run stopped before its job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// SIGINT or SIGTERM.
    Interrupted,
    /// `--timeout` passed.
    TimedOut,
}

impl StopCause {
    /// The reason recorded in the `lease_released` event.
    pub fn reason(self) -> &'static str {
        match self {
            StopCause::Interrupted => "local run interrupted",
            StopCause::TimedOut => "local run timed out",
        }
    }
}

/// Records that `owner` gave `job_id` up because of `cause`. The owner has already released
/// the lease key; if a node adopted the job in between, the decider sees another holder and
/// records nothing, so this never undoes a newer owner.
pub async fn hand_back(
    store: &Store,
    job_id: &str,
    owner: &str,
    cause: StopCause,
) -> Result<(), CommandError> {
    let command = JobCommand::ReleaseLease {
        owner: owner.to_string(),
        reason: Some(cause.reason().to_string()),
    };
    commands::execute(store, job_id, &command, None).await?;
    Ok(())
}
