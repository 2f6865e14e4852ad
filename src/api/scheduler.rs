//! `mirrorneuron.scheduler.v1.SchedulerService`: `PlanJob`, a dry run of the scheduler against
//! the live cluster (what `mirror-neuron plan --target` calls). Writes nothing.

use serde_json::Value;
use tonic::{Request, Response, Status};

use super::context::ApiContext;
use super::pb::scheduler::scheduler_service_server::SchedulerService;
use super::pb::scheduler::{PlanJobRequest, PlanJobResponse};
use super::status;
use crate::domain::manifest::parse_manifest;
use crate::runtime::cluster::dry_run::{DryRunError, dry_run};

/// The service implementation.
#[derive(Clone)]
pub struct Scheduler {
    ctx: ApiContext,
}

impl Scheduler {
    pub fn new(ctx: ApiContext) -> Self {
        Scheduler { ctx }
    }
}

#[tonic::async_trait]
impl SchedulerService for Scheduler {
    async fn plan_job(
        &self,
        request: Request<PlanJobRequest>,
    ) -> Result<Response<PlanJobResponse>, Status> {
        let req = request.into_inner();
        if req.manifest_json.trim().is_empty() {
            return Err(Status::invalid_argument("manifest_json is required"));
        }
        let raw: Value = serde_json::from_str(&req.manifest_json).map_err(|e| {
            Status::invalid_argument(format!("manifest_json is not valid JSON: {e}"))
        })?;
        let manifest = parse_manifest(&raw).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            Status::invalid_argument(format!("invalid manifest:\n{}", lines.join("\n")))
        })?;
        let admission = crate::config::bool_var("MN_RESOURCE_ADMISSION_ENABLED", false)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let report = match dry_run(&self.ctx.store, &manifest, admission).await {
            Ok(r) => r,
            Err(DryRunError::Request(e)) => {
                return Err(Status::invalid_argument(format!("invalid manifest:\n{e}")));
            }
            Err(DryRunError::Store(e)) => return Err(status::store(&e)),
        };
        let plan_json = serde_json::to_string(&report)
            .map_err(|e| Status::internal(format!("plan could not be encoded: {e}")))?;
        Ok(Response::new(PlanJobResponse {
            plan_json,
            version: 1,
        }))
    }
}
