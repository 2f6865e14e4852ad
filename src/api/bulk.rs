//! Bulk actions shared by the v1 RPCs and the operations service: cancel every active job,
//! delete every finished one.

use tonic::Status;

use super::context::ApiContext;
use super::status;
use crate::domain::job::{JobCommand, JobStatus};
use crate::runtime::commands::{self, CommandError};
use crate::store::JobListFilter;

/// Ids of the jobs in any of `statuses`, from the views.
async fn jobs_in(ctx: &ApiContext, statuses: &[JobStatus]) -> Result<Vec<String>, Status> {
    let mut ids = Vec::new();
    for s in statuses {
        let filter = JobListFilter {
            status: Some(*s),
            limit: 0,
        };
        let jobs = ctx
            .store
            .list_jobs(&filter)
            .await
            .map_err(|e| status::store(&e))?;
        ids.extend(jobs.into_iter().map(|j| j.job_id));
    }
    // The status indexes are read one after the other: a job that moved from one to the next
    // meanwhile (pending -> running) is listed twice.
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    Ok(ids)
}

/// Ids of active (pending, running, paused) jobs.
pub async fn active_jobs(ctx: &ApiContext) -> Result<Vec<String>, Status> {
    let views = ctx
        .store
        .active_job_views()
        .await
        .map_err(|e| status::store(&e))?;
    Ok(views.into_iter().map(|v| v.job_id).collect())
}

/// Cancels one job; a job that finished meanwhile is not an error (`Ok(false)`).
pub async fn cancel_one(ctx: &ApiContext, job_id: &str) -> Result<bool, Status> {
    let cmd = JobCommand::Cancel {
        reason: "cancelled by operator (cancel all)".into(),
    };
    match commands::execute(&ctx.store, job_id, &cmd, None).await {
        Ok(_) => Ok(true),
        Err(CommandError::Domain(_)) => Ok(false),
        Err(e) => Err(status::command(&e)),
    }
}

/// Cancels every active job; returns the ids it cancelled.
pub async fn cancel_all(ctx: &ApiContext) -> Result<Vec<String>, Status> {
    let mut cancelled = Vec::new();
    for id in active_jobs(ctx).await? {
        if cancel_one(ctx, &id).await? {
            cancelled.push(id);
        }
    }
    Ok(cancelled)
}

/// Deletes one job if it is finished. The view says where its terminal event is; the delete
/// script checks the history still ends there, so a lagging view can never delete a live job.
pub async fn clear_one(ctx: &ApiContext, job_id: &str) -> Result<bool, Status> {
    let view = ctx
        .store
        .job_view(job_id)
        .await
        .map_err(|e| status::store(&e))?;
    match view {
        Some(v) if v.status.is_some_and(JobStatus::is_terminal) => ctx
            .store
            .delete_job(job_id, v.last_seq)
            .await
            .map_err(|e| status::store(&e)),
        _ => Ok(false),
    }
}

/// Ids of finished jobs.
pub async fn terminal_jobs(ctx: &ApiContext) -> Result<Vec<String>, Status> {
    jobs_in(
        ctx,
        &[
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ],
    )
    .await
}

/// Deletes every finished job; returns the ids it deleted.
pub async fn clear_terminal(ctx: &ApiContext) -> Result<Vec<String>, Status> {
    let mut cleared = Vec::new();
    for id in terminal_jobs(ctx).await? {
        if clear_one(ctx, &id).await? {
            cleared.push(id);
        }
    }
    Ok(cleared)
}
