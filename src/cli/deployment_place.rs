//! Where `deployment` commands act: the local store through `runtime::deployments` (a
//! running `serve` leader rolls the recorded decisions out), or a server (`--target`)
//! through the v1 deployment RPCs the published client uses. Both answer with the same
//! record JSON. Refusals of the input (a bad bundle, policy, key or version) come back as
//! [`Invalid`], so the command can exit 2 for them as `validate` does.

use std::path::Path;

use serde_json::{Value, json};
use tonic::Code;

use super::remote::{connect, failed, parse};
use crate::api::client::{Client, read_bundle};
use crate::api::pb::job_v1 as v1;
use crate::runtime::Backend;
use crate::runtime::bundle::{BundleError, load_bundle};
use crate::runtime::deployments::{self, ActionKind, DeployRequest, DeploymentRunError};

/// The input was refused; the message says which field and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// The local store or a server. One per command, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Place {
    Local(Backend),
    Remote(Client),
}

/// A new version: the bundle folder, the key (else the manifest's), the policy overrides
/// and a tag.
pub(super) struct Deploy<'a> {
    pub bundle: &'a Path,
    pub key: Option<String>,
    pub policy: Option<Value>,
    pub tag: Option<String>,
}

fn local(e: DeploymentRunError) -> anyhow::Error {
    match e {
        DeploymentRunError::Invalid(_) | DeploymentRunError::BadKey(_) => {
            Invalid(e.to_string()).into()
        }
        other => other.into(),
    }
}

fn remote(s: tonic::Status) -> anyhow::Error {
    if s.code() == Code::InvalidArgument {
        Invalid(failed(s).to_string()).into()
    } else {
        failed(s)
    }
}

fn answer(r: tonic::Response<v1::DeploymentResponse>) -> anyhow::Result<Value> {
    parse(&r.into_inner().result_json)
}

impl Place {
    /// Connects to `target`, or opens the local store.
    pub async fn open(target: Option<&str>) -> anyhow::Result<Place> {
        Ok(match target {
            Some(t) => Place::Remote(connect(t).await?),
            None => Place::Local(Backend::open().await?),
        })
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Place::Local(_))
    }

    /// Locally: whether any node is serving on this Redis (its liveness lease is held), so
    /// a rollout will move. A server is a serving node itself.
    pub async fn serving(&self) -> bool {
        let Place::Local(b) = self else {
            return true;
        };
        let Ok(names) = b.store.node_names().await else {
            return true;
        };
        b.store
            .alive(&names)
            .await
            .map_or(true, |alive| alive.iter().any(Option::is_some))
    }

    pub async fn close(self) {
        if let Place::Local(b) = self {
            b.close().await;
        }
    }

    /// Deploys (or updates to) the bundle; returns the key's record.
    pub async fn deploy(&mut self, d: Deploy<'_>) -> anyhow::Result<Value> {
        match self {
            Place::Local(b) => {
                let root = d.bundle.to_path_buf();
                let bundle = tokio::task::spawn_blocking(move || load_bundle(&root))
                    .await?
                    .map_err(|e| match e {
                        BundleError::Io { .. } => anyhow::Error::from(e),
                        other => Invalid(other.to_string()).into(),
                    })?;
                let req = DeployRequest {
                    bundle: &bundle,
                    key: d.key,
                    policy: d.policy,
                    tag: d.tag,
                };
                deployments::deploy(&b.store, req).await.map_err(local)
            }
            Place::Remote(c) => {
                let (manifest_json, payloads) =
                    read_bundle(d.bundle).map_err(|e| Invalid(format!("{e:#}")))?;
                // The request has no tag field: it travels in the overrides, which this
                // server takes it out of again (see `api::deployments`).
                let mut overrides = d.policy.unwrap_or_else(|| json!({}));
                if let (Some(tag), Some(o)) = (d.tag, overrides.as_object_mut()) {
                    o.insert("tag".into(), json!(tag));
                }
                let req = v1::DeployJobRequest {
                    manifest_json,
                    payloads,
                    deployment_key: d.key.unwrap_or_default(),
                    update_policy_json: overrides.to_string(),
                    wait: false,
                    version: 1,
                };
                c.check_size("the bundle upload", &req).map_err(failed)?;
                answer(c.jobs.deploy_job(req).await.map_err(remote)?)
            }
        }
    }

    /// The record with its versions and latest events.
    pub async fn get(&mut self, id_or_key: &str) -> anyhow::Result<Value> {
        match self {
            Place::Local(b) => deployments::get(&b.store, id_or_key).await.map_err(local),
            Place::Remote(c) => {
                let req = v1::GetDeploymentRequest {
                    id_or_key: id_or_key.into(),
                    version: 1,
                };
                answer(c.jobs.get_deployment(req).await.map_err(remote)?)
            }
        }
    }

    /// Every key's record, most recently changed first.
    pub async fn list(&mut self) -> anyhow::Result<Vec<Value>> {
        match self {
            Place::Local(b) => deployments::list(&b.store).await.map_err(local),
            Place::Remote(c) => {
                let req = v1::ListDeploymentsRequest {
                    query_json: "{}".into(),
                    version: 1,
                };
                let all = answer(c.jobs.list_deployments(req).await.map_err(remote)?)?;
                Ok(all["data"].as_array().cloned().unwrap_or_default())
            }
        }
    }

    pub async fn promote(&mut self, id_or_key: &str) -> anyhow::Result<Value> {
        match self {
            Place::Local(b) => deployments::promote(&b.store, id_or_key)
                .await
                .map_err(local),
            Place::Remote(c) => {
                let req = v1::PromoteDeploymentRequest {
                    id_or_key: id_or_key.into(),
                    version: 1,
                };
                answer(c.jobs.promote_deployment(req).await.map_err(remote)?)
            }
        }
    }

    pub async fn rollback(
        &mut self,
        id_or_key: &str,
        to: deployments::RollbackRequest,
    ) -> anyhow::Result<Value> {
        match self {
            Place::Local(b) => deployments::rollback(&b.store, id_or_key, &to)
                .await
                .map_err(local),
            Place::Remote(c) => {
                let req = v1::RollbackDeploymentRequest {
                    id_or_key: id_or_key.into(),
                    version: to.version.unwrap_or_default(),
                    tag: to.tag.unwrap_or_default(),
                    reason: to.reason.unwrap_or_default(),
                };
                answer(c.jobs.rollback_deployment(req).await.map_err(remote)?)
            }
        }
    }

    /// Pause, resume or fail.
    pub async fn action(
        &mut self,
        id_or_key: &str,
        kind: ActionKind,
        reason: Option<String>,
    ) -> anyhow::Result<Value> {
        match self {
            Place::Local(b) => deployments::action(&b.store, id_or_key, kind, reason.as_deref())
                .await
                .map_err(local),
            Place::Remote(c) => {
                let req = v1::DeploymentActionRequest {
                    id_or_key: id_or_key.into(),
                    reason: reason.unwrap_or_default(),
                    version: 1,
                };
                let r = match kind {
                    ActionKind::Pause => c.jobs.pause_deployment(req).await,
                    ActionKind::Resume => c.jobs.resume_deployment(req).await,
                    ActionKind::Fail => c.jobs.fail_deployment(req).await,
                };
                answer(r.map_err(remote)?)
            }
        }
    }
}
