//! `grpc`: the standard `grpc.health.v1.Health/Check` must answer SERVING for `service`
//! ("" asks about the server as a whole).

use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{Probe_, Target};

pub(super) async fn check(target: &Target, service: &str) -> Probe_ {
    let addr = target.socket().map_err(|e| (e, json!({})))?;
    let details = json!({"address": addr, "service": service});
    let fail = |e: String| (e, details.clone());
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| fail(format!("invalid address: {e}")))?
        .connect()
        .await
        .map_err(|e| fail(format!("cannot connect to {addr}: {e}")))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map_err(|e| fail(format!("health check failed: {}", e.message())))?
        .into_inner();
    let status = ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown);
    let mut details = details.clone();
    details["serving_status"] = json!(status.as_str_name());
    if status == ServingStatus::Serving {
        Ok(details)
    } else {
        Err((format!("not serving ({})", status.as_str_name()), details))
    }
}
