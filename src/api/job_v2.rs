//! `mirrorneuron.job.v2.JobService`: stable jobs (stored definitions of a bundle) and their
//! runs. A run is an ordinary job whose id every v1 call accepts.

use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use super::auth::require_admin;
use super::context::ApiContext;
use super::pb::job_v2::job_service_server::JobService;
use super::pb::job_v2::*;
use super::{job_json, status, upload};
use crate::domain::job::{JobCommand, JobStatus};
use crate::domain::manifest::ENTRYPOINTS_KEY;
use crate::domain::view::iso_ms;
use crate::runtime::bundle::load_bundle;
use crate::runtime::clock::now_ms;
use crate::runtime::{commands, local};
use crate::store::validate_job_id;

/// The version every v2 response carries.
const V: u32 = 2;

/// The service implementation.
#[derive(Clone)]
pub struct JobV2 {
    ctx: ApiContext,
}

fn reply(value: Value) -> Result<Response<JsonResponse>, Status> {
    Ok(Response::new(JsonResponse {
        result_json: value.to_string(),
        version: V,
    }))
}

fn parse_object(field: &str, text: &str) -> Result<Value, Status> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Status::invalid_argument(format!(
            "{field} must be a JSON object"
        ))),
        Err(e) => Err(Status::invalid_argument(format!(
            "{field} is not valid JSON: {e}"
        ))),
    }
}

impl JobV2 {
    pub fn new(ctx: ApiContext) -> Self {
        JobV2 { ctx }
    }

    async fn definition(&self, id: &str) -> Result<Value, Status> {
        validate_job_id(id).map_err(|e| status::job_id(&e))?;
        let def = self
            .ctx
            .store
            .definition(id)
            .await
            .map_err(|e| status::store(&e))?;
        def.ok_or_else(|| Status::not_found(format!("job {id} was not found")))
    }

    /// Records a definition change; a concurrent change makes this call fail with ABORTED.
    async fn record(
        &self,
        id: &str,
        event_type: &str,
        event: Value,
        view: Option<&Value>,
        expected: Option<u64>,
    ) -> Result<(), Status> {
        let ok = self
            .ctx
            .store
            .append_definition(id, event_type, &event, view, expected)
            .await
            .map_err(|e| status::store(&e))?;
        if ok {
            Ok(())
        } else {
            Err(Status::aborted(format!(
                "job {id} changed concurrently; retry"
            )))
        }
    }

    async fn run_record(&self, run_id: &str) -> Result<Value, Status> {
        validate_job_id(run_id).map_err(|e| status::job_id(&e))?;
        let store = &self.ctx.store;
        let view = store
            .job_view(run_id)
            .await
            .map_err(|e| status::store(&e))?;
        let view = view.ok_or_else(|| Status::not_found(format!("run {run_id} was not found")))?;
        let agents = store
            .agent_views(run_id)
            .await
            .map_err(|e| status::store(&e))?;
        let mut record =
            super::bounded::bound_record(&self.ctx, job_json::record(&view, &agents)).await?;
        record["run_id"] = json!(run_id);
        Ok(record)
    }

    async fn control(
        &self,
        run_id: &str,
        command: JobCommand,
    ) -> Result<Response<JsonResponse>, Status> {
        validate_job_id(run_id).map_err(|e| status::job_id(&e))?;
        let done = commands::execute(&self.ctx.store, run_id, &command, None)
            .await
            .map_err(|e| status::command(&e))?;
        super::consistency::wait_for_view(&self.ctx.store, run_id, done.state.seq).await;
        reply(
            json!({ "run_id": run_id, "job_id": run_id, "status": done.state.status.map(JobStatus::as_str) }),
        )
    }
}

#[tonic::async_trait]
impl JobService for JobV2 {
    async fn create_job(
        &self,
        request: Request<CreateJobRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        let req = request.into_inner();
        let config = parse_object(
            "resolved_configuration_json",
            &req.resolved_configuration_json,
        )?;
        let bundle =
            upload::materialise(&self.ctx.bundles_dir, &req.manifest_json, &req.payloads).await?;
        let id = if req.job_id.is_empty() {
            bundle.manifest.graph_id.clone()
        } else {
            req.job_id.clone()
        };
        validate_job_id(&id).map_err(|e| status::job_id(&e))?;
        let root = bundle.root.display().to_string();
        if let Some(existing) = self
            .ctx
            .store
            .definition(&id)
            .await
            .map_err(|e| status::store(&e))?
        {
            // Creating the same definition again is a no-op; a different bundle is a conflict.
            if existing["bundle_path"] == json!(root) {
                return reply(existing);
            }
            return Err(Status::already_exists(format!(
                "job {id} already exists with a different bundle; update or delete it first"
            )));
        }
        let now = iso_ms(now_ms());
        let view = json!({
            "job_id": id, "graph_id": bundle.manifest.graph_id, "job_name": bundle.manifest.job_name,
            "status": "active", "bundle_path": root, "configuration": config,
            "created_at": now, "updated_at": now,
        });
        self.record(
            &id,
            "job_definition_created",
            view.clone(),
            Some(&view),
            Some(0),
        )
        .await?;
        reply(view)
    }

    async fn get_job(
        &self,
        request: Request<JobRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        let id = request.into_inner().job_id;
        let mut def = self.definition(&id).await?;
        def["runs"] = json!(
            self.ctx
                .store
                .definition_runs_list(&id)
                .await
                .map_err(|e| status::store(&e))?
        );
        reply(def)
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        let include_archived = request.into_inner().include_archived;
        let defs = self
            .ctx
            .store
            .definitions()
            .await
            .map_err(|e| status::store(&e))?;
        let rows: Vec<Value> = defs
            .into_values()
            .filter(|d| include_archived || d["status"] != "archived")
            .collect();
        reply(json!({ "data": rows }))
    }

    async fn archive_job(
        &self,
        request: Request<JobRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        let id = request.into_inner().job_id;
        let mut def = self.definition(&id).await?;
        def["status"] = json!("archived");
        def["updated_at"] = json!(iso_ms(now_ms()));
        self.record(&id, "job_definition_archived", json!({}), Some(&def), None)
            .await?;
        reply(def)
    }

    async fn delete_job(
        &self,
        request: Request<DeleteJobRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        if !req.confirmed {
            return Err(Status::failed_precondition(
                "deleting a job needs confirmed=true",
            ));
        }
        self.definition(&req.job_id).await?;
        self.record(&req.job_id, "job_definition_deleted", json!({}), None, None)
            .await?;
        reply(json!({ "job_id": req.job_id, "status": "deleted", "resource_cleanup_errors": [] }))
    }

    async fn start_run(
        &self,
        request: Request<StartRunRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        let req = request.into_inner();
        let def = self.definition(&req.job_id).await?;
        if def["status"] == "archived" {
            return Err(Status::failed_precondition(format!(
                "job {} is archived",
                req.job_id
            )));
        }
        let inputs = parse_object("inputs_json", &req.inputs_json)?;
        let root = std::path::PathBuf::from(def["bundle_path"].as_str().unwrap_or_default());
        let mut bundle = tokio::task::spawn_blocking(move || load_bundle(&root))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| status::bundle(&e))?;
        if inputs.as_object().is_some_and(|o| !o.is_empty()) {
            // The run's inputs become the entrypoints' initial input.
            bundle.manifest.initial_inputs.clear();
            bundle
                .manifest
                .initial_inputs
                .insert(ENTRYPOINTS_KEY.to_string(), vec![inputs]);
        }
        let now = now_ms();
        let run_id = if req.run_id.is_empty() {
            local::new_job_id(&bundle.manifest.graph_id, now)
        } else {
            req.run_id.clone()
        };
        validate_job_id(&run_id).map_err(|e| status::job_id(&e))?;
        local::submit_as(&self.ctx.store, &bundle, &run_id)
            .await
            .map_err(|e| status::command(&e))?;
        self.ctx
            .store
            .add_definition_run(&req.job_id, &run_id, now)
            .await
            .map_err(|e| status::store(&e))?;
        self.ctx.node.own(&run_id);
        super::consistency::wait_for_view(&self.ctx.store, &run_id, 1).await;
        reply(
            json!({ "run_id": run_id, "job_id": req.job_id, "status": "pending", "submitted_at": iso_ms(now) }),
        )
    }

    async fn list_runs(
        &self,
        request: Request<JobRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        let id = request.into_inner().job_id;
        self.definition(&id).await?;
        let store = &self.ctx.store;
        let runs = store
            .definition_runs_list(&id)
            .await
            .map_err(|e| status::store(&e))?;
        let views = store
            .job_views(&runs)
            .await
            .map_err(|e| status::store(&e))?;
        let rows: Vec<Value> = views
            .iter()
            .map(|v| {
                let mut row = job_json::row(v);
                row["run_id"] = json!(v.job_id);
                row["job_id"] = json!(id);
                row
            })
            .collect();
        reply(json!({ "data": rows }))
    }

    async fn get_run(
        &self,
        request: Request<RunRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        reply(self.run_record(&request.into_inner().run_id).await?)
    }

    async fn pause_run(
        &self,
        request: Request<RunRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        self.control(
            &request.into_inner().run_id,
            JobCommand::Pause { reason: None },
        )
        .await
    }

    async fn resume_run(
        &self,
        request: Request<RunRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        self.control(&request.into_inner().run_id, JobCommand::Resume)
            .await
    }

    async fn cancel_run(
        &self,
        request: Request<RunRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        self.control(
            &request.into_inner().run_id,
            JobCommand::Cancel {
                reason: "cancelled by operator".into(),
            },
        )
        .await
    }

    async fn delete_run(
        &self,
        request: Request<DeleteRunRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        if !req.confirmed {
            return Err(Status::failed_precondition(
                "deleting a run needs confirmed=true",
            ));
        }
        validate_job_id(&req.run_id).map_err(|e| status::job_id(&e))?;
        let deleted = super::bulk::clear_one(&self.ctx, &req.run_id).await?;
        if !deleted {
            return Err(Status::failed_precondition(format!(
                "run {} is not finished (cancel it first) or does not exist",
                req.run_id
            )));
        }
        reply(json!({ "run_id": req.run_id, "status": "deleted" }))
    }

    async fn update_job(
        &self,
        _: Request<UpdateJobRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        Err(status::later("updating stable job definitions"))
    }
    async fn reset_job_data(
        &self,
        _: Request<JobRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        Err(status::later("job data reset"))
    }
    async fn send_run_input(
        &self,
        _: Request<SendRunInputRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        Err(status::later("run inputs"))
    }
    async fn create_job_schedule(
        &self,
        request: Request<CreateJobScheduleRequest>,
    ) -> Result<Response<JsonResponse>, Status> {
        let req = request.into_inner();
        let def = self.definition(&req.job_id).await?;
        if def["status"] == "archived" {
            return Err(Status::failed_precondition(format!(
                "job {} is archived (error job_not_active)",
                req.job_id
            )));
        }
        let spec = parse_object("schedule_json", &req.schedule_json)?;
        let mut source = parse_object("source_json", &req.source_json)?;
        source["job_id"] = json!(req.job_id);
        let root = std::path::PathBuf::from(def["bundle_path"].as_str().unwrap_or_default());
        let bundle = tokio::task::spawn_blocking(move || load_bundle(&root))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| status::bundle(&e))?;
        let state = crate::runtime::schedules::create(&self.ctx.store, &bundle, &spec, source)
            .await
            .map_err(|e| super::schedules::error(&e))?;
        let mut view = crate::runtime::schedules::view_of(&state);
        view["job_id"] = json!(req.job_id);
        reply(view)
    }
}
