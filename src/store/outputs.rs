//! The per-job output budget's counter: bytes of step output a job has stored, added by
//! whichever node ran the step, so that the budget holds across nodes.

use redis::AsyncCommands;

use super::{Store, StoreError};

/// How long a job's counter outlives its last step (its history may be read for that long).
const COUNTER_TTL_S: i64 = 30 * 24 * 3600;

impl Store {
    /// Adds a step's `bytes` to the job's stored output; returns the job's new total.
    pub async fn add_job_output(&self, job_id: &str, bytes: u64) -> Result<u64, StoreError> {
        let key = self.keys().job_output_bytes(job_id);
        let mut pipe = redis::pipe();
        pipe.incr(&key, bytes).expire(&key, COUNTER_TTL_S).ignore();
        let (total,): (u64,) = pipe.query_async(&mut self.conn()).await?;
        Ok(total)
    }

    /// Takes back bytes added for a step whose output was refused after all.
    pub async fn take_back_job_output(&self, job_id: &str, bytes: u64) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .decr(self.keys().job_output_bytes(job_id), bytes)
            .await?;
        Ok(())
    }
}
