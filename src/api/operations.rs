//! `operations` service. RPCs not overridden here answer UNIMPLEMENTED.

use super::context::ApiContext;
use super::pb::operations::operations_service_server::OperationsService;

/// The service implementation.
#[derive(Clone)]
pub struct Operations {
    #[allow(dead_code)]
    ctx: ApiContext,
}

impl Operations {
    pub fn new(ctx: ApiContext) -> Self {
        Operations { ctx }
    }
}

#[tonic::async_trait]
impl OperationsService for Operations {}
