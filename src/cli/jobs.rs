//! Where the `job` commands read and write: this machine's store, or a server (`--target`).
//!
//! Both answer in the JSON the server's API builds (`api::job_json` records, our own event
//! envelopes from the history), so a command prints the same thing locally and remotely: the
//! local side calls the functions the RPC handlers call, the remote side gets their output
//! over gRPC, and one renderer prints either.

use serde_json::Value;

use super::history_pages::PageSource;
use crate::api::client::Client;
use crate::api::job_json;
use crate::api::pb::job_v1 as v1;
use crate::domain::job::{JobCommand, JobStatus};
use crate::runtime::commands;
use crate::store::{JobListFilter, Store, validate_job_id};

/// How many jobs a prefix is matched against (the newest first).
const PREFIX_SCAN: usize = 10_000;

/// A job operation a command asks for.
pub enum Control {
    Pause,
    Resume,
    Cancel { reason: String },
}

/// The job API of this machine or of a server.
pub enum Jobs<'a> {
    Local(&'a Store),
    Remote(Box<Client>),
}

fn not_found(job_id: &str) -> anyhow::Error {
    anyhow::anyhow!("job {job_id} was not found")
}

impl Jobs<'_> {
    /// List rows, newest first, optionally of one status.
    pub async fn list(
        &mut self,
        status: Option<JobStatus>,
        limit: usize,
    ) -> anyhow::Result<Vec<Value>> {
        match self {
            Jobs::Local(store) => Ok(store
                .list_jobs(&JobListFilter { status, limit })
                .await?
                .iter()
                .map(job_json::row)
                .collect()),
            Jobs::Remote(client) => {
                // `ListJobs` has no status filter: ask for enough to filter here.
                let asked = if status.is_some() || limit == 0 {
                    PREFIX_SCAN
                } else {
                    limit
                };
                let reply = client
                    .jobs
                    .list_jobs(v1::ListJobsRequest {
                        limit: asked.min(i32::MAX as usize) as i32,
                        include_terminal: true,
                        version: 1,
                    })
                    .await
                    .map_err(super::remote::failed)?;
                let all = super::remote::parse(&reply.into_inner().jobs_json)?;
                let wanted = status.map(JobStatus::as_str);
                Ok(all
                    .get("data")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|j| {
                        wanted.is_none_or(|s| j.get("status").and_then(Value::as_str) == Some(s))
                    })
                    .take(if limit == 0 { usize::MAX } else { limit })
                    .collect())
            }
        }
    }

    /// The job's full record: its list row plus result, lease, counters and agents.
    pub async fn record(&mut self, job_id: &str) -> anyhow::Result<Value> {
        validate_job_id(job_id)?;
        match self {
            Jobs::Local(store) => {
                let view = store
                    .job_view(job_id)
                    .await?
                    .ok_or_else(|| not_found(job_id))?;
                let agents = store.agent_views(job_id).await?;
                Ok(job_json::record(&view, &agents))
            }
            Jobs::Remote(client) => super::remote::get_job_once(client, job_id)
                .await
                .map_err(super::remote::failed)?,
        }
    }

    /// The job's history from `from_seq`, page by page.
    pub async fn history(&mut self, job_id: &str, from_seq: u64) -> anyhow::Result<PageSource> {
        match self {
            Jobs::Local(store) => PageSource::local_from(store, job_id, from_seq).await,
            Jobs::Remote(client) => PageSource::remote_from(client, job_id, from_seq).await,
        }
    }

    /// Pauses, resumes or cancels the job; answers its status afterwards.
    pub async fn control(&mut self, job_id: &str, control: Control) -> anyhow::Result<String> {
        validate_job_id(job_id)?;
        match self {
            Jobs::Local(store) => {
                let command = match control {
                    Control::Pause => JobCommand::Pause { reason: None },
                    Control::Resume => JobCommand::Resume,
                    Control::Cancel { reason } => JobCommand::Cancel { reason },
                };
                let done = commands::execute(store, job_id, &command, None)
                    .await
                    .map_err(|e| match e {
                        commands::CommandError::Domain(e) => {
                            anyhow::anyhow!("failed precondition: job {job_id}: {e}")
                        }
                        other => other.into(),
                    })?;
                Ok(done
                    .state
                    .status
                    .map_or("unknown", JobStatus::as_str)
                    .to_string())
            }
            Jobs::Remote(client) => {
                let job_id = job_id.to_string();
                let status = match control {
                    Control::Pause => client
                        .jobs
                        .pause_job(v1::PauseJobRequest { job_id, version: 1 })
                        .await
                        .map(|r| r.into_inner().status),
                    Control::Resume => client
                        .jobs
                        .resume_job(v1::ResumeJobRequest { job_id, version: 1 })
                        .await
                        .map(|r| r.into_inner().status),
                    // v1 `CancelJob` carries no reason: the server records its own.
                    Control::Cancel { .. } => client
                        .jobs
                        .cancel_job(v1::CancelJobRequest { job_id, version: 1 })
                        .await
                        .map(|r| r.into_inner().status),
                };
                status.map_err(super::remote::failed)
            }
        }
    }

    /// The full id of the job `id` names: itself when such a job exists, else the one job
    /// whose id starts with it (ids are long; a unique prefix is enough, as with git).
    pub async fn resolve(&mut self, id: &str) -> anyhow::Result<String> {
        if id.is_empty() {
            anyhow::bail!("a job id is required");
        }
        // A prefix is made of the characters an id may hold: a bad one is refused as such.
        validate_job_id(id)?;
        if self.exists(id).await? {
            return Ok(id.to_string());
        }
        let ids: Vec<String> = self
            .list(None, PREFIX_SCAN)
            .await?
            .iter()
            .filter_map(|j| j.get("job_id").and_then(Value::as_str))
            .filter(|j| j.starts_with(id))
            .map(String::from)
            .collect();
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(not_found(id)),
            many => anyhow::bail!(
                "job id prefix {id:?} is ambiguous: it matches {} jobs ({}{})",
                many.len(),
                many.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if many.len() > 5 { ", ..." } else { "" }
            ),
        }
    }

    async fn exists(&mut self, job_id: &str) -> anyhow::Result<bool> {
        match self {
            Jobs::Local(store) => Ok(store.job_view(job_id).await?.is_some()),
            Jobs::Remote(client) => match super::remote::get_job_once(client, job_id).await {
                Ok(_) => Ok(true),
                Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
                Err(s) => Err(super::remote::failed(s)),
            },
        }
    }
}
