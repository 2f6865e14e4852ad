//! `job_v1` service. RPCs not overridden here answer UNIMPLEMENTED.

use super::context::ApiContext;
use super::pb::job_v1::job_service_server::JobService;

/// The service implementation.
#[derive(Clone)]
pub struct JobV1 {
    #[allow(dead_code)]
    ctx: ApiContext,
}

impl JobV1 {
    pub fn new(ctx: ApiContext) -> Self {
        JobV1 { ctx }
    }
}

#[tonic::async_trait]
impl JobService for JobV1 {}
