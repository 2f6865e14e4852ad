//! The requests people make of deployments. Each records a decision on the key's stream and
//! returns the key's record; the controller does the rest (see `controller`). Reads come from
//! the view the append wrote, never from folding the history.

use std::time::Duration;

use serde_json::{Value, json};

use super::{DeploymentRunError, execute, policy, record, resolve, validate_key};
use crate::domain::deployment::{
    BundleRef, DeploymentCommand, DeploymentState, DeploymentStatus, RollbackTarget, Target,
    Version, deployment_id, resolve_key, view,
};
use crate::domain::manifest::ValidationError;
use crate::runtime::bundle::Bundle;
use crate::runtime::clock::now_ms;
use crate::store::Store;

/// A new version to deploy (or update to: the key's history decides which).
pub struct DeployRequest<'a> {
    pub bundle: &'a Bundle,
    /// Overrides the key the manifest resolves to.
    pub key: Option<String>,
    /// Policy fields laid over the manifest's `policies.update`.
    pub policy: Option<Value>,
    /// A label the version can be rolled back to by.
    pub tag: Option<String>,
}

/// Deploys or updates; returns the key's record.
pub async fn deploy(store: &Store, req: DeployRequest<'_>) -> Result<Value, DeploymentRunError> {
    let manifest = &req.bundle.manifest;
    let key = resolve_key(req.key.as_deref(), manifest);
    validate_key(&key)?;
    let policy = policy::effective(manifest, req.policy.as_ref())?;
    // Archived so the version can run on any node, and a rollback can run it again.
    let digest = match crate::runtime::bundle_archive::archive(store, &req.bundle.payloads).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "bundle not archived; nodes need its folder");
            None
        }
    };
    let now = now_ms();
    let state = store.load_deployment(&key).await?;
    let target = Target {
        deployment_id: deployment_id(&key, unique(now)),
        job_id: crate::runtime::local::new_job_id(&manifest.graph_id, now),
        policy,
        source_active: source_active(store, &state).await?,
        manifest_ref: Some(req.bundle.root.display().to_string()),
        bundle: BundleRef {
            digest,
            path: Some(req.bundle.root.display().to_string()),
        },
        tag: req.tag.clone(),
        now_ms: now,
    };
    let (after, _) = execute(store, &key, now, |_| {
        Ok(DeploymentCommand::Deploy {
            target: target.clone(),
            manifest: Box::new(manifest.clone()),
        })
    })
    .await?;
    Ok(record(view(&after)))
}

/// Which older version a rollback returns to.
#[derive(Debug, Default, Clone)]
pub struct RollbackRequest {
    pub version: Option<String>,
    pub tag: Option<String>,
    pub reason: Option<String>,
}

/// Rolls an older version out again, as a new version; returns the key's record.
pub async fn rollback(
    store: &Store,
    id_or_key: &str,
    req: &RollbackRequest,
) -> Result<Value, DeploymentRunError> {
    let key = resolve(store, id_or_key).await?;
    let to = match (blank(&req.version), blank(&req.tag)) {
        (Some(v), _) => RollbackTarget::Version(Version::parse(v).ok_or_else(|| {
            DeploymentRunError::Invalid(vec![ValidationError::new(
                "version",
                format!("version must be a version number like \"3\", got {v:?}"),
            )])
        })?),
        (None, Some(tag)) => RollbackTarget::Tag(tag.to_string()),
        (None, None) => RollbackTarget::LastStable,
    };
    let now = now_ms();
    let state = store.load_deployment(&key).await?;
    let graph_id = state
        .source_version()
        .and_then(|r| r.manifest.get("graph_id"))
        .and_then(Value::as_str)
        .unwrap_or(&key)
        .to_string();
    let target = Target {
        deployment_id: deployment_id(&key, unique(now)),
        job_id: crate::runtime::local::new_job_id(&graph_id, now),
        policy: None,
        source_active: source_active(store, &state).await?,
        manifest_ref: None,
        bundle: BundleRef::default(),
        tag: None,
        now_ms: now,
    };
    let reason = blank(&req.reason).map(str::to_string);
    let (after, _) = execute(store, &key, now, |_| {
        Ok(DeploymentCommand::Rollback {
            to: to.clone(),
            target: target.clone(),
            reason: reason.clone(),
        })
    })
    .await?;
    Ok(record(view(&after)))
}

/// Promotes the canaries (or candidate job) of a rollout awaiting promotion.
pub async fn promote(store: &Store, id_or_key: &str) -> Result<Value, DeploymentRunError> {
    let key = resolve(store, id_or_key).await?;
    let now = now_ms();
    let (after, _) = execute(store, &key, now, |_| {
        Ok(DeploymentCommand::Promote { now_ms: now })
    })
    .await?;
    Ok(record(view(&after)))
}

/// An operator's pause, resume or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Pause,
    Resume,
    Fail,
}

/// Pauses, resumes or fails the key's rollout.
pub async fn action(
    store: &Store,
    id_or_key: &str,
    kind: ActionKind,
    reason: Option<&str>,
) -> Result<Value, DeploymentRunError> {
    let key = resolve(store, id_or_key).await?;
    let now = now_ms();
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let command = match kind {
        ActionKind::Pause => DeploymentCommand::Pause {
            reason: reason.map(str::to_string),
            now_ms: now,
        },
        ActionKind::Resume => DeploymentCommand::Resume { now_ms: now },
        ActionKind::Fail => DeploymentCommand::Fail {
            reason: reason.unwrap_or("failed by an operator").to_string(),
            now_ms: now,
        },
    };
    let (after, _) = execute(store, &key, now, |_| Ok(command.clone())).await?;
    Ok(record(view(&after)))
}

/// The key's record with its versions and its latest events (at most 100, oldest first).
pub async fn get(store: &Store, id_or_key: &str) -> Result<Value, DeploymentRunError> {
    let key = resolve(store, id_or_key).await?;
    let Some(view) = store.deployment_view(&key).await? else {
        return Err(DeploymentRunError::NotFound(id_or_key.to_string()));
    };
    let events = store.deployment_events(&key).await?;
    let recent: Vec<Value> = events
        .iter()
        .skip(events.len().saturating_sub(100))
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .map(|e| json!({"type": e["type"], "data": e["data"]}))
        .collect();
    let mut out = record(view);
    out["events"] = Value::Array(recent);
    Ok(out)
}

/// Every key's record, most recently changed first.
pub async fn list(store: &Store) -> Result<Vec<Value>, DeploymentRunError> {
    let mut rows: Vec<Value> = store
        .deployment_views()
        .await?
        .into_values()
        .map(record)
        .collect();
    rows.sort_by(|a, b| {
        let at = |v: &Value| v["updated_at"].as_str().unwrap_or_default().to_string();
        at(b).cmp(&at(a))
    });
    Ok(rows)
}

/// Whether a status means the controller is still moving the rollout.
pub fn moving(status: &str) -> bool {
    matches!(
        DeploymentStatus::parse(status),
        Some(DeploymentStatus::Running | DeploymentStatus::Reverting)
    )
}

/// Polls the key's record until the rollout stops moving (finished, failed, awaiting
/// promotion, paused) or `timeout` passes; `progress` sees each record read.
pub async fn wait_settled(
    store: &Store,
    key: &str,
    timeout: Duration,
    mut progress: impl FnMut(&Value),
) -> Result<Value, DeploymentRunError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let view = store
            .deployment_view(key)
            .await?
            .ok_or_else(|| DeploymentRunError::NotFound(key.to_string()))?;
        progress(&view);
        let status = view["status"].as_str().unwrap_or_default();
        if !moving(status) || tokio::time::Instant::now() >= deadline {
            return Ok(record(view));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the job an update would replace is still pending or running (an update of a
/// finished job starts a new one beside it instead of replacing agents in place).
async fn source_active(store: &Store, state: &DeploymentState) -> Result<bool, DeploymentRunError> {
    let Some(job_id) = state.source_job_id() else {
        return Ok(false);
    };
    Ok(store
        .job_view(job_id)
        .await?
        .and_then(|v| v.status)
        .is_some_and(|s| !s.is_terminal()))
}

/// A number that makes a deployment id unique: the time, plus randomness against two
/// requests in the same millisecond.
fn unique(now_ms: i64) -> u64 {
    let salt = u64::from(uuid::Uuid::new_v4().as_u128() as u16);
    u64::try_from(now_ms).unwrap_or(0) * 1000 + salt % 1000
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}
