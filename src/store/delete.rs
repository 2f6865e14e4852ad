//! Deleting a finished job: every key it has, in one script, guarded by its history version.

use super::{Store, StoreError};
use crate::domain::job::JobStatus;

impl Store {
    /// Deletes `job_id` if its history is still at `version` (the caller saw it terminal there).
    /// Returns false when the job does not exist or moved on.
    pub async fn delete_job(&self, job_id: &str, version: u64) -> Result<bool, StoreError> {
        let k = self.keys();
        let shard = k.shard_of(job_id);
        let mut keys = vec![
            k.job_events(job_id),
            k.job_lease(job_id),
            k.job_lease_epoch(job_id),
            k.job_view(job_id),
            k.job_agents(job_id),
            k.job_dead_letters(job_id),
            k.jobs_registry(shard),
            k.jobs_by_time(shard),
            k.job_archive(job_id),
            k.jobs_archived(shard),
        ];
        keys.extend(JobStatus::ALL.iter().map(|s| k.jobs_by_status(shard, *s)));
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut cmd = self.scripts().delete_job.evalsha(&refs);
        cmd.arg(job_id).arg(version);
        let (deleted, _): (i64, u64) = self.eval(&cmd).await?;
        Ok(deleted == 1)
    }
}
