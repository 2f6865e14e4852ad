//! `observability` service. RPCs not overridden here answer UNIMPLEMENTED.

use super::context::ApiContext;
use super::pb::observability::observability_service_server::ObservabilityService;

/// The service implementation.
#[derive(Clone)]
pub struct Observability {
    #[allow(dead_code)]
    ctx: ApiContext,
}

impl Observability {
    pub fn new(ctx: ApiContext) -> Self {
        Observability { ctx }
    }
}

#[tonic::async_trait]
impl ObservabilityService for Observability {}
