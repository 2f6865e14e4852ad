//! The write path for commands from outside the owner (CLI, gRPC): load the job, decide,
//! append with the expected version, and on a version conflict reload and decide again.

use crate::domain::event::EventEnvelope;
use crate::domain::job::{DomainError, JobCommand, JobState, decide, evolve};
use crate::runtime::clock::now_ms;
use crate::store::{AppendError, AppendOutcome, Store, StoreError};

/// How many times to reload and retry while other writers keep winning the race.
const MAX_ATTEMPTS: usize = 16;

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The job's rules refused it (not found, wrong status, ...).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Lost the race too many times in a row (the job is extremely busy).
    #[error("job {job_id} kept changing; gave up after {attempts} attempts")]
    Contended { job_id: String, attempts: usize },
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job's history could not be read (its archive is missing or damaged here).
    #[error(transparent)]
    History(#[from] crate::runtime::history::HistoryError),
}

/// The result of a command: the events it appended (possibly none) and the state after.
#[derive(Debug, Clone)]
pub struct Executed {
    pub events: Vec<EventEnvelope>,
    pub state: JobState,
}

/// Current fencing epoch of a job (0 if no lease was ever taken).
pub async fn current_epoch(store: &Store, job_id: &str) -> Result<u64, StoreError> {
    use redis::AsyncCommands;
    let epoch: Option<u64> = store
        .conn()
        .get(store.keys().job_lease_epoch(job_id))
        .await?;
    Ok(epoch.unwrap_or(0))
}

/// Executes an operator command. Operator writes are ordered by the version check, not by a
/// lease: they use the job's current epoch, and a lease change in between is just a retry.
pub async fn execute(
    store: &Store,
    job_id: &str,
    command: &JobCommand,
    correlation_id: Option<&str>,
) -> Result<Executed, CommandError> {
    for _ in 0..MAX_ATTEMPTS {
        // A finished job may be archived: its state comes from the archive then, so a
        // command (a re-submitted deterministic id included) sees the job as it ended.
        let blobs = crate::runtime::blobs::BlobStore::from_env();
        let state = crate::runtime::history::load_state(store, &blobs, job_id).await?;
        let events = decide(&state, command)?;
        if events.is_empty() {
            return Ok(Executed {
                events: vec![],
                state,
            });
        }
        let epoch = current_epoch(store, job_id).await?;
        let sealed = crate::store::seal(
            job_id,
            state.seq,
            epoch,
            now_ms(),
            None,
            correlation_id,
            events,
        );
        match store.append(job_id, state.seq, epoch, &sealed).await {
            Ok(AppendOutcome::Appended { .. } | AppendOutcome::AlreadyAppended { .. }) => {
                let state = sealed.iter().fold(state, evolve);
                crate::metrics::job_ended_by(&sealed, &state);
                return Ok(Executed {
                    events: sealed,
                    state,
                });
            }
            Err(AppendError::Conflict { .. } | AppendError::StaleEpoch { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::Contended {
        job_id: job_id.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}
