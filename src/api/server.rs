//! The gRPC server: seven services behind token auth, plus health and reflection, with a
//! request size limit large enough for bundle uploads and graceful shutdown.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use super::auth::{Authenticator, Tokens};
use super::context::ApiContext;
use super::pb;
use super::{blobs, cluster, history, job_v1, job_v2, observability, operations, scheduler};

/// Default request size limit: bundles travel inside requests.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = super::message_limit::DEFAULT_MAX_MESSAGE_BYTES;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub max_message_bytes: usize,
    pub tokens: Tokens,
}

impl ServerConfig {
    /// `MN_CORE_HOST` (127.0.0.1) : `MN_GRPC_PORT` (55051), `MN_GRPC_MAX_MESSAGE_BYTES`, tokens.
    /// Without a token the server must stay on loopback unless `MN_ALLOW_INSECURE_REMOTE=1`.
    pub fn from_env() -> anyhow::Result<ServerConfig> {
        let host = crate::config::var("MN_CORE_HOST").unwrap_or_else(|| "127.0.0.1".into());
        let ip: IpAddr = match host.as_str() {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            h => h.parse().map_err(|_| {
                anyhow::anyhow!("MN_CORE_HOST must be an IP address to bind (got {h:?})")
            })?,
        };
        let port = crate::config::u64_var("MN_GRPC_PORT", 55051)?;
        anyhow::ensure!(
            port <= u64::from(u16::MAX),
            "MN_GRPC_PORT must be a port number, got {port}"
        );
        let max = super::message_limit::from_env()?;
        let tokens = Tokens::from_env()?;
        let insecure_ok = crate::config::bool_var("MN_ALLOW_INSECURE_REMOTE", false)?;
        if !ip.is_loopback() && !tokens.any() && !insecure_ok {
            anyhow::bail!(
                "refusing to serve on {ip} without authentication: set MN_GRPC_AUTH_TOKEN, \
                 bind MN_CORE_HOST to 127.0.0.1, or set MN_ALLOW_INSECURE_REMOTE=1"
            );
        }
        Ok(ServerConfig {
            addr: SocketAddr::new(ip, port as u16),
            max_message_bytes: max,
            tokens,
        })
    }
}

/// Accepted connections with Nagle's algorithm off: small gRPC frames must not wait for a
/// delayed ACK (that costs ~40 ms a call on Linux loopback).
fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        if let Ok(c) = &conn {
            let _ = c.set_nodelay(true);
        }
        conn
    })
}

/// Serves on `listener` until `shutdown` resolves, then finishes in-flight calls.
pub async fn serve(
    ctx: ApiContext,
    cfg: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let auth = Authenticator::new(cfg.tokens.clone());
    let max = cfg.max_message_bytes;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::job_v1::job_service_server::JobServiceServer<job_v1::JobV1>>()
        .await;
    health_reporter
        .set_serving::<pb::job_v2::job_service_server::JobServiceServer<job_v2::JobV2>>()
        .await;
    health_reporter
        .set_serving::<pb::cluster::cluster_service_server::ClusterServiceServer<cluster::Cluster>>(
        )
        .await;
    health_reporter
        .set_serving::<pb::observability::observability_service_server::ObservabilityServiceServer<
            observability::Observability,
        >>()
        .await;
    health_reporter
        .set_serving::<pb::operations::operations_service_server::OperationsServiceServer<operations::Operations>>()
        .await;
    health_reporter
        .set_serving::<pb::scheduler::scheduler_service_server::SchedulerServiceServer<scheduler::Scheduler>>()
        .await;
    health_reporter
        .set_serving::<pb::history::history_service_server::HistoryServiceServer<history::History>>(
        )
        .await;
    health_reporter
        .set_serving::<pb::blobs::blob_service_server::BlobServiceServer<blobs::Blobs>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    // grpcurl 1.8 only speaks the v1alpha reflection protocol.
    let reflection_v1alpha = reflection().build_v1alpha()?;

    macro_rules! guarded {
        ($server:ty, $svc:expr) => {
            tonic::service::interceptor::InterceptedService::new(
                <$server>::new($svc)
                    .max_decoding_message_size(max)
                    .max_encoding_message_size(max),
                auth.clone(),
            )
        };
    }
    tonic::transport::Server::builder()
        .layer(super::grpc_metrics::GrpcMetricsLayer)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(guarded!(
            pb::job_v1::job_service_server::JobServiceServer<job_v1::JobV1>,
            job_v1::JobV1::new(ctx.clone())
        ))
        .add_service(guarded!(
            pb::job_v2::job_service_server::JobServiceServer<job_v2::JobV2>,
            job_v2::JobV2::new(ctx.clone())
        ))
        .add_service(guarded!(
            pb::cluster::cluster_service_server::ClusterServiceServer<cluster::Cluster>,
            cluster::Cluster::new(ctx.clone())
        ))
        .add_service(guarded!(
            pb::observability::observability_service_server::ObservabilityServiceServer<
                observability::Observability,
            >,
            observability::Observability::new(ctx.clone())
        ))
        .add_service(guarded!(
            pb::operations::operations_service_server::OperationsServiceServer<
                operations::Operations,
            >,
            operations::Operations::new(ctx.clone())
        ))
        .add_service(guarded!(
            pb::scheduler::scheduler_service_server::SchedulerServiceServer<scheduler::Scheduler>,
            scheduler::Scheduler::new(ctx.clone())
        ))
        .add_service(guarded!(
            pb::history::history_service_server::HistoryServiceServer<history::History>,
            history::History::new(ctx.clone())
        ))
        .add_service(guarded!(
            pb::blobs::blob_service_server::BlobServiceServer<blobs::Blobs>,
            blobs::Blobs::new(ctx.clone())
        ))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await?;
    Ok(())
}
