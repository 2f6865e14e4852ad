//! `mirrorneuron.cluster.v1.ClusterService`: the system summary (`mn node list`), resource
//! limits, node maintenance/undrain, and the service registry. Multi-node features (join, models, Docker
//! workers) answer UNIMPLEMENTED naming the feature; the handshake never hands out tokens.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use super::context::ApiContext;
use super::pb::cluster::cluster_service_server::ClusterService;
use super::pb::cluster::*;
use super::{job_json, status};
use crate::domain::view::iso_ms;
use crate::runtime::clock::now_ms;
use crate::runtime::cluster::{ops, overview};
use crate::store::{JobListFilter, NodeCommandError};

/// The service implementation.
#[derive(Clone)]
pub struct Cluster {
    ctx: ApiContext,
}

impl Cluster {
    pub fn new(ctx: ApiContext) -> Self {
        Cluster { ctx }
    }

    async fn nodes(&self) -> Result<Vec<Value>, Status> {
        overview::nodes(&self.ctx.store, Some(self.ctx.node.name()))
            .await
            .map_err(|e| status::store(&e))
    }

    fn limits(stored: Option<Value>) -> Value {
        stored.unwrap_or_else(|| json!({"cpu": 100, "gpu": 100, "memory": 100, "disk": 100}))
    }
}

/// A refused node command is the caller's mistake; anything else is ours.
fn node_status(e: &NodeCommandError) -> Status {
    match e {
        NodeCommandError::Refused(crate::domain::node::NodeError::Unknown(_)) => {
            Status::not_found(e.to_string())
        }
        NodeCommandError::Refused(_) => Status::failed_precondition(e.to_string()),
        NodeCommandError::Store(s) => status::store(s),
        NodeCommandError::Contended(_) => Status::aborted(e.to_string()),
    }
}

#[tonic::async_trait]
impl ClusterService for Cluster {
    async fn get_system_summary(
        &self,
        _: Request<GetSystemSummaryRequest>,
    ) -> Result<Response<GetSystemSummaryResponse>, Status> {
        let store = &self.ctx.store;
        let jobs = store
            .list_jobs(&JobListFilter {
                status: None,
                limit: 1000,
            })
            .await
            .map_err(|e| status::store(&e))?;
        let counts = store.job_counts().await.map_err(|e| status::store(&e))?;
        let nodes = self.nodes().await?;
        let by_status: BTreeMap<&str, u64> = counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        // Dead letters per listed job, and their sum over the listed (newest 1000) jobs.
        let rows: Vec<Value> = jobs.iter().map(job_json::summary_row).collect();
        let dead_letters: u64 = jobs.iter().map(|j| j.dead_letters).sum();
        let summary = json!({
            "nodes": nodes,
            "jobs": rows,
            "metrics": {"nodes": nodes.len(), "jobs_by_status": by_status, "jobs_total": by_status.values().sum::<u64>(), "dead_letters": dead_letters},
            "generated_at": iso_ms(now_ms()),
        });
        Ok(Response::new(GetSystemSummaryResponse {
            summary_json: summary.to_string(),
            version: 1,
        }))
    }

    async fn get_resource(
        &self,
        _: Request<GetResourceRequest>,
    ) -> Result<Response<GetResourceResponse>, Status> {
        let limits = Self::limits(
            self.ctx
                .store
                .resource_limits()
                .await
                .map_err(|e| status::store(&e))?,
        );
        let body = json!({"limits": limits, "nodes": self.nodes().await?});
        Ok(Response::new(GetResourceResponse {
            resource_json: body.to_string(),
            version: 1,
        }))
    }

    async fn set_resource(
        &self,
        request: Request<SetResourceRequest>,
    ) -> Result<Response<SetResourceResponse>, Status> {
        let input: Value =
            serde_json::from_str(&request.into_inner().resource_json).map_err(|e| {
                Status::invalid_argument(format!("resource_json is not valid JSON: {e}"))
            })?;
        let Some(fields) = input.as_object() else {
            return Err(Status::invalid_argument(
                "resource_json must be a JSON object",
            ));
        };
        let mut limits = Self::limits(
            self.ctx
                .store
                .resource_limits()
                .await
                .map_err(|e| status::store(&e))?,
        );
        for (key, value) in fields {
            if !["cpu", "gpu", "memory", "disk"].contains(&key.as_str()) {
                return Err(Status::invalid_argument(format!(
                    "resource_json.{key}: unknown resource (cpu, gpu, memory, disk)"
                )));
            }
            match value.as_f64() {
                Some(p) if (0.0..=100.0).contains(&p) => limits[key] = json!(p),
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "resource_json.{key} must be a percentage between 0 and 100"
                    )));
                }
            }
        }
        self.ctx
            .store
            .set_resource_limits(&limits)
            .await
            .map_err(|e| status::store(&e))?;
        let body = json!({"status": "updated", "limits": limits});
        Ok(Response::new(SetResourceResponse {
            resource_json: body.to_string(),
            version: 1,
        }))
    }

    async fn set_node_maintenance(
        &self,
        request: Request<SetNodeMaintenanceRequest>,
    ) -> Result<Response<SetNodeMaintenanceResponse>, Status> {
        let req = request.into_inner();
        if req.node_name.is_empty() {
            return Err(Status::invalid_argument("node_name is required"));
        }
        let reason = Some(req.reason).filter(|r| !r.is_empty());
        let v = ops::maintenance(&self.ctx.store, &req.node_name, req.enabled, reason)
            .await
            .map_err(|e| node_status(&e))?;
        Ok(Response::new(SetNodeMaintenanceResponse {
            result_json: v.to_string(),
            version: 1,
        }))
    }

    async fn cancel_node_drain(
        &self,
        request: Request<CancelNodeDrainRequest>,
    ) -> Result<Response<CancelNodeDrainResponse>, Status> {
        let req = request.into_inner();
        if req.node_name.is_empty() {
            return Err(Status::invalid_argument("node_name is required"));
        }
        let reason = Some(req.reason).filter(|r| !r.is_empty());
        let v = ops::undrain(&self.ctx.store, &req.node_name, reason, req.mark_eligible)
            .await
            .map_err(|e| node_status(&e))?;
        Ok(Response::new(CancelNodeDrainResponse {
            result_json: v.to_string(),
            version: 1,
        }))
    }

    async fn get_node_drain_status(
        &self,
        request: Request<GetNodeDrainStatusRequest>,
    ) -> Result<Response<GetNodeDrainStatusResponse>, Status> {
        let name = request.into_inner().node_name;
        if name.is_empty() {
            return Err(Status::invalid_argument("node_name is required"));
        }
        let state = self
            .ctx
            .store
            .node_view(&name)
            .await
            .map_err(|e| status::store(&e))?
            .ok_or_else(|| Status::not_found(format!("node {name} is not known to the cluster")))?;
        Ok(Response::new(GetNodeDrainStatusResponse {
            result_json: ops::status_json(&state).to_string(),
            version: 1,
        }))
    }

    async fn network_handshake(
        &self,
        _: Request<NetworkHandshakeRequest>,
    ) -> Result<Response<NetworkHandshakeResponse>, Status> {
        Err(status::later("joining nodes over the network (cluster)"))
    }
    async fn add_node(
        &self,
        _: Request<AddNodeRequest>,
    ) -> Result<Response<AddNodeResponse>, Status> {
        Err(status::later("adding nodes (cluster)"))
    }
    async fn remove_node(
        &self,
        _: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeResponse>, Status> {
        Err(status::later("removing nodes (cluster)"))
    }
    async fn reconcile_node(
        &self,
        _: Request<ReconcileNodeRequest>,
    ) -> Result<Response<ReconcileNodeResponse>, Status> {
        Err(status::later(
            "the direct ReconcileNode RPC (use the operations service, kind reconcile_node)",
        ))
    }
    async fn drain_node(
        &self,
        request: Request<DrainNodeRequest>,
    ) -> Result<Response<DrainNodeResponse>, Status> {
        crate::api::auth::require_admin(&request)?;
        let req = request.into_inner();
        if req.node_name.is_empty() {
            return Err(Status::invalid_argument("node_name is required"));
        }
        let drain = ops::DrainRequest {
            node: req.node_name,
            reason: Some(req.reason).filter(|r| !r.is_empty()),
            deadline_ms: u64::try_from(req.deadline_ms)
                .ok()
                .filter(|d| *d > 0)
                .unwrap_or(ops::DEFAULT_DRAIN_DEADLINE_MS),
            dry_run: req.dry_run,
            ignore_system_jobs: req.ignore_system_jobs,
        };
        let v = ops::drain(&self.ctx.store, &drain)
            .await
            .map_err(|e| node_status(&e))?;
        Ok(Response::new(DrainNodeResponse {
            result_json: v.to_string(),
            version: 1,
        }))
    }
    async fn list_services(
        &self,
        request: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        let req = request.into_inner();
        let v = super::services::list(&self.ctx.store, &req.query_json).await?;
        Ok(Response::new(ListServicesResponse {
            result_json: v.to_string(),
            version: 1,
        }))
    }
    async fn resolve_service(
        &self,
        request: Request<ResolveServiceRequest>,
    ) -> Result<Response<ResolveServiceResponse>, Status> {
        let req = request.into_inner();
        let v = super::services::resolve(&self.ctx.store, &req.name, &req.query_json).await?;
        Ok(Response::new(ResolveServiceResponse {
            result_json: v.to_string(),
            version: 1,
        }))
    }
    async fn check_services(
        &self,
        request: Request<CheckServicesRequest>,
    ) -> Result<Response<CheckServicesResponse>, Status> {
        let req = request.into_inner();
        let v = super::services::check(&self.ctx.store, &req.services_json).await?;
        Ok(Response::new(CheckServicesResponse {
            result_json: v.to_string(),
            version: 1,
        }))
    }
    async fn get_runtime_statuses(
        &self,
        _: Request<GetResourceRequest>,
    ) -> Result<Response<GetResourceResponse>, Status> {
        Err(status::later("runtime model statuses"))
    }
    async fn publish_runtime_status(
        &self,
        _: Request<SetResourceRequest>,
    ) -> Result<Response<SetResourceResponse>, Status> {
        Err(status::later("runtime model statuses"))
    }
    async fn ack_runtime_status_events(
        &self,
        _: Request<SetResourceRequest>,
    ) -> Result<Response<SetResourceResponse>, Status> {
        Err(status::later("runtime model statuses"))
    }
    async fn sync_lite_llm_gateway(
        &self,
        _: Request<SetResourceRequest>,
    ) -> Result<Response<SetResourceResponse>, Status> {
        Err(status::later("the LiteLLM gateway"))
    }
    async fn remove_lite_llm_gateway_route(
        &self,
        _: Request<SetResourceRequest>,
    ) -> Result<Response<SetResourceResponse>, Status> {
        Err(status::later("the LiteLLM gateway"))
    }
    async fn prepare_runtime_model(
        &self,
        _: Request<SetResourceRequest>,
    ) -> Result<Response<SetResourceResponse>, Status> {
        Err(status::later("runtime model preparation"))
    }
    async fn prepare_docker_worker(
        &self,
        _: Request<PrepareDockerWorkerRequest>,
    ) -> Result<Response<PrepareDockerWorkerResponse>, Status> {
        Err(status::later("Docker workers"))
    }
    async fn cleanup_docker_worker(
        &self,
        _: Request<CleanupDockerWorkerRequest>,
    ) -> Result<Response<CleanupDockerWorkerResponse>, Status> {
        Err(status::later("Docker workers"))
    }
}
