//! `cluster` service. RPCs not overridden here answer UNIMPLEMENTED.

use super::context::ApiContext;
use super::pb::cluster::cluster_service_server::ClusterService;

/// The service implementation.
#[derive(Clone)]
pub struct Cluster {
    #[allow(dead_code)]
    ctx: ApiContext,
}

impl Cluster {
    pub fn new(ctx: ApiContext) -> Self {
        Cluster { ctx }
    }
}

#[tonic::async_trait]
impl ClusterService for Cluster {}
