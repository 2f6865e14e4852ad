//! `job_v2` service. RPCs not overridden here answer UNIMPLEMENTED.

use super::context::ApiContext;
use super::pb::job_v2::job_service_server::JobService;

/// The service implementation.
#[derive(Clone)]
pub struct JobV2 {
    #[allow(dead_code)]
    ctx: ApiContext,
}

impl JobV2 {
    pub fn new(ctx: ApiContext) -> Self {
        JobV2 { ctx }
    }
}

#[tonic::async_trait]
impl JobService for JobV2 {}
