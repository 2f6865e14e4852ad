//! `mirrorneuron.job.v1.JobService`: submit, read, list and control jobs. Reads come from the
//! views; writes are commands through the decider. Schedule, trigger and event RPCs live in
//! `api::schedules`, deployment RPCs in `api::deployments`.

use tonic::{Request, Response, Status};

use super::auth::require_admin;
use super::context::ApiContext;
use super::pb::job_v1::job_service_server::JobService;
use super::pb::job_v1::*;
use super::{deployments, job_json, schedules, status, upload};
use crate::domain::job::{JobCommand, JobStatus};
use crate::runtime::deployments::ActionKind;
use crate::runtime::{commands, local};
use crate::store::{JobListFilter, validate_job_id};

/// Rows `ListJobs` returns when the client asks for the server default (`limit` 0).
const DEFAULT_LIST_LIMIT: usize = 1000;

/// The service implementation.
#[derive(Clone)]
pub struct JobV1 {
    ctx: ApiContext,
}

impl JobV1 {
    pub fn new(ctx: ApiContext) -> Self {
        JobV1 { ctx }
    }

    /// Runs an operator command and reports the job's new status word.
    async fn control(&self, job_id: &str, command: JobCommand) -> Result<String, Status> {
        validate_job_id(job_id).map_err(|e| status::job_id(&e))?;
        let done = commands::execute(&self.ctx.store, job_id, &command, None)
            .await
            .map_err(|e| status::command(&e))?;
        super::consistency::wait_for_view(&self.ctx.store, job_id, done.state.seq).await;
        Ok(done
            .state
            .status
            .map_or("unknown", JobStatus::as_str)
            .to_string())
    }

    /// Pauses, resumes or fails a deployment's rollout.
    async fn deployment_action(
        &self,
        request: Request<DeploymentActionRequest>,
        kind: ActionKind,
    ) -> Result<Response<DeploymentResponse>, Status> {
        let req = request.into_inner();
        deployment(deployments::action(&self.ctx, &req.id_or_key, kind, &req.reason).await?)
    }
}

/// The version every v1 response carries.
const V: u32 = 1;

/// A deployment answer: the record JSON as `result_json`.
fn deployment(value: serde_json::Value) -> Result<Response<DeploymentResponse>, Status> {
    Ok(Response::new(DeploymentResponse {
        result_json: value.to_string(),
        version: V,
    }))
}

/// A schedule/trigger/event answer: the JSON as `result_json`.
fn reply(value: serde_json::Value) -> Result<Response<ScheduleResponse>, Status> {
    Ok(Response::new(ScheduleResponse {
        result_json: value.to_string(),
        version: V,
    }))
}

#[tonic::async_trait]
impl JobService for JobV1 {
    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<SubmitJobResponse>, Status> {
        let req = request.into_inner();
        let bundle =
            upload::materialise(&self.ctx.bundles_dir, &req.manifest_json, &req.payloads).await?;
        let job_id = local::submit(&self.ctx.store, &bundle)
            .await
            .map_err(|e| status::command(&e))?;
        self.ctx.node.own(&job_id);
        super::consistency::wait_for_view(&self.ctx.store, &job_id, 1).await;
        Ok(Response::new(SubmitJobResponse {
            job_id,
            status: "pending".into(),
            version: V,
        }))
    }

    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let job_id = request.into_inner().job_id;
        validate_job_id(&job_id).map_err(|e| status::job_id(&e))?;
        let store = &self.ctx.store;
        let mut view = store
            .job_view(&job_id)
            .await
            .map_err(|e| status::store(&e))?;
        // A client that saw an event (StreamEvents) and then asks for the job must see that
        // event's effect: when the view is behind the history, wait (bounded) for it.
        let version = store
            .version(&job_id)
            .await
            .map_err(|e| status::store(&e))?;
        if view.as_ref().is_none_or(|v| v.last_seq < version) && version > 0 {
            super::consistency::wait_for_view(store, &job_id, version).await;
            view = store
                .job_view(&job_id)
                .await
                .map_err(|e| status::store(&e))?;
        }
        let view = view.ok_or_else(|| Status::not_found(format!("job {job_id} was not found")))?;
        let agents = store
            .agent_views(&job_id)
            .await
            .map_err(|e| status::store(&e))?;
        let record =
            super::bounded::bound_record(&self.ctx, job_json::record(&view, &agents)).await?;
        let json = record.to_string();
        Ok(Response::new(GetJobResponse {
            job_json: json,
            version: V,
        }))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let req = request.into_inner();
        let limit = if req.limit <= 0 {
            DEFAULT_LIST_LIMIT
        } else {
            req.limit as usize
        };
        let jobs = self
            .ctx
            .store
            .list_jobs(&JobListFilter {
                status: None,
                limit: 0,
            })
            .await
            .map_err(|e| status::store(&e))?;
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .filter(|j| req.include_terminal || !j.status.is_some_and(JobStatus::is_terminal))
            .take(limit)
            .map(job_json::row)
            .collect();
        let json = serde_json::json!({ "data": rows }).to_string();
        Ok(Response::new(ListJobsResponse {
            jobs_json: json,
            version: V,
        }))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<CancelJobResponse>, Status> {
        let job_id = request.into_inner().job_id;
        let status = self
            .control(
                &job_id,
                JobCommand::Cancel {
                    reason: "cancelled by operator".into(),
                },
            )
            .await?;
        Ok(Response::new(CancelJobResponse {
            job_id,
            status,
            version: V,
        }))
    }

    async fn pause_job(
        &self,
        request: Request<PauseJobRequest>,
    ) -> Result<Response<PauseJobResponse>, Status> {
        let job_id = request.into_inner().job_id;
        let status = self
            .control(&job_id, JobCommand::Pause { reason: None })
            .await?;
        Ok(Response::new(PauseJobResponse {
            job_id,
            status,
            version: V,
        }))
    }

    async fn resume_job(
        &self,
        request: Request<ResumeJobRequest>,
    ) -> Result<Response<ResumeJobResponse>, Status> {
        let job_id = request.into_inner().job_id;
        let status = self.control(&job_id, JobCommand::Resume).await?;
        let status = if status == "running" {
            "resumed".to_string()
        } else {
            status
        };
        Ok(Response::new(ResumeJobResponse {
            job_id,
            status,
            version: V,
        }))
    }

    async fn cancel_all_jobs(
        &self,
        request: Request<CancelAllJobsRequest>,
    ) -> Result<Response<CancelAllJobsResponse>, Status> {
        require_admin(&request)?;
        let cancelled = super::bulk::cancel_all(&self.ctx).await?;
        let json =
            serde_json::json!({ "cancelled": cancelled, "count": cancelled.len() }).to_string();
        Ok(Response::new(CancelAllJobsResponse {
            result_json: json,
            version: V,
        }))
    }

    async fn clear_jobs(
        &self,
        request: Request<ClearJobsRequest>,
    ) -> Result<Response<ClearJobsResponse>, Status> {
        require_admin(&request)?;
        let cleared = super::bulk::clear_terminal(&self.ctx).await?;
        Ok(Response::new(ClearJobsResponse {
            cleared_count: cleared.len() as i32,
            version: V,
        }))
    }

    async fn export_job_backup(
        &self,
        request: Request<ExportJobBackupRequest>,
    ) -> Result<Response<ExportJobBackupResponse>, Status> {
        let (backup, bundle_files) =
            super::backup::export(&self.ctx, &request.into_inner().job_id).await?;
        Ok(Response::new(ExportJobBackupResponse {
            backup_json: backup.to_string(),
            bundle_files,
            version: V,
        }))
    }

    async fn restore_job_backup(
        &self,
        request: Request<RestoreJobBackupRequest>,
    ) -> Result<Response<RestoreJobBackupResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let result =
            super::backup::restore(&self.ctx, &req.backup_json, &req.bundle_files, &req.run_id)
                .await?;
        Ok(Response::new(RestoreJobBackupResponse {
            result_json: result.to_string(),
            version: V,
        }))
    }

    async fn deploy_job(
        &self,
        request: Request<DeployJobRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        let req = request.into_inner();
        deployment(deployments::deploy(&self.ctx, (&req).into()).await?)
    }
    async fn update_deployment(
        &self,
        request: Request<UpdateDeploymentRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        let req = request.into_inner();
        deployment(deployments::deploy(&self.ctx, (&req).into()).await?)
    }
    async fn get_deployment(
        &self,
        request: Request<GetDeploymentRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        deployment(deployments::get(&self.ctx, &request.into_inner().id_or_key).await?)
    }
    async fn list_deployments(
        &self,
        request: Request<ListDeploymentsRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        deployment(deployments::list(&self.ctx, &request.into_inner().query_json).await?)
    }
    async fn promote_deployment(
        &self,
        request: Request<PromoteDeploymentRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        deployment(deployments::promote(&self.ctx, &request.into_inner().id_or_key).await?)
    }
    async fn rollback_deployment(
        &self,
        request: Request<RollbackDeploymentRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        deployment(deployments::rollback(&self.ctx, request.into_inner()).await?)
    }
    async fn pause_deployment(
        &self,
        request: Request<DeploymentActionRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        self.deployment_action(request, ActionKind::Pause).await
    }
    async fn resume_deployment(
        &self,
        request: Request<DeploymentActionRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        self.deployment_action(request, ActionKind::Resume).await
    }
    async fn fail_deployment(
        &self,
        request: Request<DeploymentActionRequest>,
    ) -> Result<Response<DeploymentResponse>, Status> {
        self.deployment_action(request, ActionKind::Fail).await
    }
    async fn create_schedule(
        &self,
        request: Request<CreateScheduleRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::create(&self.ctx, request.into_inner()).await?)
    }
    async fn update_schedule(
        &self,
        request: Request<ScheduleActionRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::update(&self.ctx, request.into_inner()).await?)
    }
    async fn get_schedule(
        &self,
        request: Request<GetScheduleRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::get(&self.ctx, &request.into_inner().schedule_id).await?)
    }
    async fn list_schedules(
        &self,
        request: Request<ListSchedulesRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::list(&self.ctx, &request.into_inner().query_json).await?)
    }
    async fn pause_schedule(
        &self,
        request: Request<ScheduleActionRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::pause(&self.ctx, request.into_inner()).await?)
    }
    async fn resume_schedule(
        &self,
        request: Request<ScheduleActionRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::resume(&self.ctx, request.into_inner()).await?)
    }
    async fn delete_schedule(
        &self,
        request: Request<ScheduleActionRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::delete(&self.ctx, request.into_inner()).await?)
    }
    async fn dispatch_schedule(
        &self,
        request: Request<DispatchScheduleRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::dispatch(&self.ctx, request.into_inner()).await?)
    }
    async fn emit_trigger_event(
        &self,
        request: Request<EmitTriggerEventRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        let key = request
            .metadata()
            .get(schedules::IDEMPOTENCY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        reply(schedules::emit(&self.ctx, request.into_inner(), key).await?)
    }
    async fn list_trigger_events(
        &self,
        request: Request<ListTriggerEventsRequest>,
    ) -> Result<Response<ScheduleResponse>, Status> {
        reply(schedules::list_events(&self.ctx, request.into_inner().limit).await?)
    }
}
