//! Deployments at run time (core-spec 9.2, 9.3): the requests (deploy, update, promote,
//! rollback, pause, resume, fail, get, list), which record decisions on the key's stream,
//! and the controller, which executes what the pure core says runs next (start a job,
//! replace agents, judge health, let time pass, promote, retire the old job).
//!
//! # Layout
//! - `requests`: what the API and the CLI call; each returns the key's view.
//! - `controller`: the leader's loop over keys with work left.
//! - `act`: one action against the jobs (idempotent, so a crash midway is only a retry).
//! - `policy`: the caller's policy overrides merged over the manifest's.

mod act;
mod controller;
mod policy;
mod requests;

use serde_json::Value;

use crate::domain::deployment::{
    DeploymentCommand, DeploymentError, DeploymentEvent, DeploymentState, decide,
};
use crate::domain::manifest::ValidationError;
use crate::store::{Store, StoreError};

pub use controller::{CONTROL_INTERVAL, reconcile_once, run_deployment_loop};
pub use requests::{
    ActionKind, DeployRequest, RollbackRequest, action, deploy, get, list, moving, promote,
    rollback, wait_settled,
};

/// How many times to reload and retry while other writers keep winning the race.
const MAX_ATTEMPTS: usize = 16;

/// Why a deployment request did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentRunError {
    /// The deployment's rules refused it (not found, busy, wrong status, no target).
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The request's manifest or policy is invalid; each error names its field.
    #[error("{}", ValidationError::join(.0))]
    Invalid(Vec<ValidationError>),
    /// The key cannot name a deployment.
    #[error(
        "deployment_key {0:?} may contain only letters, digits, '.', '_', ':' and '-' (at most 200)"
    )]
    BadKey(String),
    #[error("no deployment has the id or key {0:?}")]
    NotFound(String),
    #[error("deployment {0} kept changing; gave up after {MAX_ATTEMPTS} attempts")]
    Contended(String),
    #[error("{0}")]
    Job(#[from] crate::runtime::commands::CommandError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a deployment key before it is put into key names.
pub fn validate_key(key: &str) -> Result<(), DeploymentRunError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(DeploymentRunError::BadKey(key.to_string()))
    }
}

/// Loads the key, builds the command, decides and appends; on a lost race, again. Returns
/// the state after and what was appended.
pub async fn execute(
    store: &Store,
    key: &str,
    now_ms: i64,
    command: impl Fn(&DeploymentState) -> Result<DeploymentCommand, DeploymentRunError>,
) -> Result<(DeploymentState, Vec<DeploymentEvent>), DeploymentRunError> {
    validate_key(key)?;
    for _ in 0..MAX_ATTEMPTS {
        let state = store.load_deployment(key).await?;
        let events = decide(&state, &command(&state)?)?;
        if events.is_empty() {
            return Ok((state, events));
        }
        if let Some(after) = store.append_deployment(&state, &events, now_ms).await? {
            crate::metrics::deployment_events(&events, &after);
            return Ok((after, events));
        }
    }
    Err(DeploymentRunError::Contended(key.to_string()))
}

/// The key an id or key names: a key with a history, else the key of a deployment id.
pub async fn resolve(store: &Store, id_or_key: &str) -> Result<String, DeploymentRunError> {
    let id_or_key = id_or_key.trim();
    if validate_key(id_or_key).is_ok() && store.deployment_view(id_or_key).await?.is_some() {
        return Ok(id_or_key.to_string());
    }
    match store.deployment_key_of(id_or_key).await? {
        Some(key) => Ok(key),
        None => Err(DeploymentRunError::NotFound(id_or_key.to_string())),
    }
}

/// The record the API returns: the view plus the keys the published client reads.
pub fn record(view: Value) -> Value {
    let mut view = view;
    if let Some(obj) = view.as_object_mut() {
        let job = obj
            .get("target_job_id")
            .filter(|v| !v.is_null())
            .or_else(|| obj.get("current_job_id"))
            .cloned()
            .unwrap_or(Value::Null);
        let version = obj
            .get("target_version")
            .filter(|v| !v.is_null())
            .or_else(|| obj.get("current_version"))
            .cloned()
            .unwrap_or(Value::Null);
        obj.insert("job_id".into(), job);
        obj.insert("version".into(), version);
    }
    view
}
