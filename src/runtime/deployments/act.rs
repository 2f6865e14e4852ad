//! One action of the controller against the jobs, then its report to the deployment.
//! Every action is idempotent: a job id is submitted once, a replacement or promotion
//! already recorded decides nothing, and a finished job is left alone.

use serde_json::Value;

use super::{DeploymentRunError, execute};
use crate::domain::deployment::{
    Action, BatchStart, DeploymentCommand, DeploymentState, HealthProbe, Phase, Role, Version,
    batch_health,
};
use crate::domain::job::{DomainError, JobCommand, JobDeployment};
use crate::runtime::clock::now_ms;
use crate::runtime::commands::{self, CommandError};
use crate::store::Store;

/// Runs `action` for the key whose state is `state`.
pub(super) async fn run(
    store: &Store,
    state: &DeploymentState,
    action: &Action,
) -> Result<(), DeploymentRunError> {
    let key = state.key.as_str();
    match action {
        Action::StartBatch(batch) => {
            start_batch(store, state, batch).await?;
            report(
                store,
                key,
                DeploymentCommand::BatchStarted {
                    index: batch.index,
                    now_ms: now_ms(),
                },
            )
            .await
        }
        Action::CheckHealth(probe) => {
            let command = match judge(store, state, probe).await? {
                Ok(()) => DeploymentCommand::BatchHealthy {
                    index: probe.index,
                    at_ms: now_ms(),
                },
                Err(reason) => DeploymentCommand::BatchUnhealthy {
                    index: probe.index,
                    reason,
                    at_ms: now_ms(),
                },
            };
            report(store, key, command).await
        }
        Action::Tick => report(store, key, DeploymentCommand::Tick { now_ms: now_ms() }).await,
        Action::StartJob { job_id, version } => {
            submit(
                store,
                state,
                job_id,
                *version,
                Role::Primary,
                Some(Phase::Rerun),
            )
            .await
        }
        Action::PromoteAgents { job_id, version } => tolerate_ended(
            commands::execute(
                store,
                job_id,
                &JobCommand::PromoteAgents { version: *version },
                None,
            )
            .await,
        ),
        Action::CancelJob { job_id, reason } => {
            let cancel = JobCommand::Cancel {
                reason: reason.clone(),
            };
            tolerate_ended(commands::execute(store, job_id, &cancel, None).await)
        }
    }
}

/// Reports to the deployment. A report the state no longer wants (another controller got
/// there first, an operator paused meanwhile) is dropped: the next pass looks again.
async fn report(
    store: &Store,
    key: &str,
    command: DeploymentCommand,
) -> Result<(), DeploymentRunError> {
    match execute(store, key, now_ms(), |_| Ok(command.clone())).await {
        Ok(_) => Ok(()),
        Err(DeploymentRunError::Deployment(e)) => {
            tracing::debug!(deployment_key = key, error = %e, "deployment report not needed");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A job that ended (or never existed) needs no promotion or cancel any more.
fn tolerate_ended(
    result: Result<commands::Executed, CommandError>,
) -> Result<(), DeploymentRunError> {
    match result {
        Ok(_)
        | Err(CommandError::Domain(DomainError::WrongStatus { .. } | DomainError::NotFound)) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The job context of the rollout's version.
fn context(
    state: &DeploymentState,
    version: Version,
    role: Role,
    phase: Option<Phase>,
) -> JobDeployment {
    JobDeployment {
        deployment_id: state
            .rollout
            .as_ref()
            .map(|r| r.deployment_id.clone())
            .unwrap_or_default(),
        deployment_key: state.key.clone(),
        version,
        role,
        phase,
    }
}

/// Starts the job (initial, blue-green) or replaces the batch's agents in place.
async fn start_batch(
    store: &Store,
    state: &DeploymentState,
    b: &BatchStart,
) -> Result<(), DeploymentRunError> {
    if b.whole_job {
        return submit(store, state, &b.job_id, b.version, b.role, b.phase).await;
    }
    let record = state.versions.get(&b.version).ok_or(
        crate::domain::deployment::DeploymentError::UnreadableManifest { version: b.version },
    )?;
    let nodes: Vec<Value> = record
        .manifest
        .get("nodes")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter(|n| {
                    n.get("node_id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| b.agents.iter().any(|a| a == id))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let command = JobCommand::ReplaceAgents {
        nodes,
        bundle: record.bundle.clone(),
        deployment: context(state, b.version, b.role, b.phase),
    };
    match commands::execute(store, &b.job_id, &command, None).await {
        Ok(_) => Ok(()),
        // The job ended or cannot take the agents: the batch starts anyway and its health
        // says why it never becomes healthy (the deadline then fails the rollout).
        Err(CommandError::Domain(e)) => {
            tracing::warn!(job_id = %b.job_id, error = %e, "agents not replaced");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Submits the job running `version` under `job_id` (once: a second submit is refused and
/// means it already exists).
async fn submit(
    store: &Store,
    state: &DeploymentState,
    job_id: &str,
    version: Version,
    role: Role,
    phase: Option<Phase>,
) -> Result<(), DeploymentRunError> {
    let record = state
        .versions
        .get(&version)
        .ok_or(crate::domain::deployment::DeploymentError::UnreadableManifest { version })?;
    let text = |k: &str| {
        record
            .manifest
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let command = JobCommand::Submit {
        graph_id: text("graph_id"),
        job_name: text("job_name"),
        manifest: record.manifest.clone(),
        bundle_path: record.bundle.path.clone(),
        bundle_digest: record.bundle.digest.clone(),
        deployment: Some(context(state, version, role, phase)),
        now_ms: now_ms(),
    };
    match commands::execute(store, job_id, &command, Some(job_id)).await {
        Ok(_) | Err(CommandError::Domain(DomainError::AlreadyExists)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether the probe's batch is healthy now, from the job's views.
async fn judge(
    store: &Store,
    state: &DeploymentState,
    probe: &HealthProbe,
) -> Result<Result<(), String>, DeploymentRunError> {
    let job = store.job_view(&probe.job_id).await?;
    let agents = match &job {
        Some(_) => store.agent_views(&probe.job_id).await?,
        None => vec![],
    };
    let target = state.manifest_of(probe.version);
    Ok(batch_health(probe, job.as_ref(), &agents, target.as_ref()))
}
