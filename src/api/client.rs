//! A client for our own gRPC API (what `--target` / `MN_GRPC_TARGET` commands use). It sends
//! the same `authorization: Bearer <token>` header as the published client.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use super::pb::blobs::blob_service_client::BlobServiceClient;
use super::pb::cluster::cluster_service_client::ClusterServiceClient;
use super::pb::history::history_service_client::HistoryServiceClient;
use super::pb::job_v1::job_service_client::JobServiceClient;
use super::pb::observability::observability_service_client::ObservabilityServiceClient;
use super::pb::scheduler::scheduler_service_client::SchedulerServiceClient;

/// Adds the bearer token (when one is configured) to every call.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

type Intercepted = tonic::service::interceptor::InterceptedService<Channel, BearerToken>;

/// Connected stubs for the services the CLI uses.
#[derive(Clone)]
pub struct Client {
    pub jobs: JobServiceClient<Intercepted>,
    pub events: ObservabilityServiceClient<Intercepted>,
    pub cluster: ClusterServiceClient<Intercepted>,
    pub scheduler: SchedulerServiceClient<Intercepted>,
    pub history: HistoryServiceClient<Intercepted>,
    pub blobs: BlobServiceClient<Intercepted>,
    /// The message size limit this client encodes and decodes under
    /// (`MN_GRPC_MAX_MESSAGE_BYTES`); requests are checked against it before they are sent.
    pub max_message_bytes: usize,
}

impl Client {
    /// Connects to `host:port` (plaintext h2c, like the published client) with an optional token.
    pub async fn connect(target: &str, token: Option<&str>) -> anyhow::Result<Client> {
        let url = if target.contains("://") {
            target.to_string()
        } else {
            format!("http://{target}")
        };
        let channel = Endpoint::from_shared(url)
            .map_err(|e| anyhow::anyhow!("--target {target:?} is not host:port: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach mirror-neuron at {target}: {e}"))?;
        let header = match token {
            Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| {
                anyhow::anyhow!("MN_GRPC_AUTH_TOKEN contains characters a header cannot carry")
            })?),
            None => None,
        };
        let auth = BearerToken(header);
        let max = super::message_limit::from_env()?;
        Ok(Client {
            jobs: JobServiceClient::with_interceptor(channel.clone(), auth.clone())
                .max_encoding_message_size(max)
                .max_decoding_message_size(max),
            events: ObservabilityServiceClient::with_interceptor(channel.clone(), auth.clone())
                .max_decoding_message_size(max),
            cluster: ClusterServiceClient::with_interceptor(channel.clone(), auth.clone())
                .max_decoding_message_size(max),
            scheduler: SchedulerServiceClient::with_interceptor(channel.clone(), auth.clone())
                .max_encoding_message_size(max)
                .max_decoding_message_size(max),
            history: HistoryServiceClient::with_interceptor(channel.clone(), auth.clone())
                .max_decoding_message_size(max),
            blobs: BlobServiceClient::with_interceptor(channel, auth)
                .max_decoding_message_size(max),
            max_message_bytes: max,
        })
    }

    /// Refuses `request` before sending when its encoding is over this client's limit: sent,
    /// tonic would fail it mid-stream and the caller would see only an h2 protocol error.
    pub fn check_size(&self, what: &str, request: &impl prost::Message) -> Result<(), Status> {
        super::message_limit::check_request(what, request.encoded_len(), self.max_message_bytes)
    }
}

/// Reads a bundle folder the way the published client uploads it: the manifest as text and
/// every regular file under `payloads/` keyed by its POSIX path relative to `payloads/`.
/// Symlinks are refused rather than followed.
pub fn read_bundle(root: &Path) -> anyhow::Result<(String, HashMap<String, Vec<u8>>)> {
    let manifest = std::fs::read_to_string(root.join("manifest.json"))
        .map_err(|e| anyhow::anyhow!("{}: {e}", root.join("manifest.json").display()))?;
    let mut files = HashMap::new();
    let payloads = root.join("payloads");
    if payloads.is_dir() {
        collect(&payloads, &payloads, &mut files)?;
    }
    Ok((manifest, files))
}

fn collect(base: &Path, dir: &Path, out: &mut HashMap<String, Vec<u8>>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            anyhow::bail!(
                "{} is a symlink; bundles uploaded over gRPC may not contain links",
                path.display()
            );
        }
        if kind.is_dir() {
            collect(base, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(base)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.insert(rel, std::fs::read(&path)?);
        }
    }
    Ok(())
}

/// The token our CLI sends: `MN_GRPC_AUTH_TOKEN`, else the file named by `MN_GRPC_AUTH_TOKEN_FILE`.
pub fn token_from_env() -> anyhow::Result<Option<String>> {
    if let Some(t) = crate::config::var("MN_GRPC_AUTH_TOKEN") {
        return Ok(Some(t.trim().to_string()));
    }
    match crate::config::var("MN_GRPC_AUTH_TOKEN_FILE") {
        Some(p) => Ok(Some(
            std::fs::read_to_string(&p)
                .map_err(|e| anyhow::anyhow!("MN_GRPC_AUTH_TOKEN_FILE {p}: {e}"))?
                .trim()
                .to_string(),
        )),
        None => Ok(None),
    }
}
