//! What the runtime does next for a deployment key: a pure function of its state, so the
//! controller is a loop that executes these actions and reports back as commands. Every
//! action is safe to repeat (a job id can be submitted once, a replacement or promotion
//! already recorded decides nothing, a finished job cannot be cancelled), so a controller
//! that crashed midway simply does it again.

use super::plan::PlanKind;
use super::state::DeploymentState;
use super::status::{DeploymentStatus as S, Phase, Role};
use super::version::Version;
use crate::domain::policy::HealthCheck;

/// Batch `index` of the rollout, to put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStart {
    pub index: usize,
    pub job_id: String,
    pub version: Version,
    pub role: Role,
    pub phase: Option<Phase>,
    pub agents: Vec<String>,
    /// Start the job running `version` (initial, blue-green), rather than replace agents of
    /// a running one.
    pub whole_job: bool,
}

/// The active batch, to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthProbe {
    pub index: usize,
    pub job_id: String,
    pub version: Version,
    pub agents: Vec<String>,
    pub whole_job: bool,
    pub started_at_ms: i64,
    pub mode: HealthCheck,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Put a batch in place, then report `BatchStarted`.
    StartBatch(BatchStart),
    /// Judge the active batch, then report `BatchHealthy` or `BatchUnhealthy`.
    CheckHealth(HealthProbe),
    /// Report `Tick`: time completes healthy batches and fails missed deadlines.
    Tick,
    /// Start the job of a recorded (rerun) version.
    StartJob { job_id: String, version: Version },
    /// Make `version`'s canaries and candidates in `job_id` primary.
    PromoteAgents { job_id: String, version: Version },
    /// Cancel the job a blue-green rollout (or its revert) replaced.
    CancelJob { job_id: String, reason: String },
}

/// The actions the state calls for now; empty when the key is settled (finished, or waiting
/// on an operator).
pub fn next_actions(state: &DeploymentState) -> Vec<Action> {
    let (Some(status), Some(r)) = (state.status, state.rollout.as_ref()) else {
        return vec![];
    };
    let whole_job = matches!(r.plan.kind, PlanKind::Initial | PlanKind::BlueGreen);
    match status {
        S::Running | S::Reverting => {
            let mut out = Vec::new();
            if let Some((index, batch)) = r.next() {
                out.push(Action::StartBatch(BatchStart {
                    index,
                    job_id: r.job_id.clone(),
                    version: r.version,
                    role: batch.role,
                    phase: r.plan.phase(),
                    agents: batch.agents.clone(),
                    whole_job,
                }));
            } else if let Some(active) = &r.active {
                out.push(Action::CheckHealth(HealthProbe {
                    index: active.index,
                    job_id: r.job_id.clone(),
                    version: r.version,
                    agents: r
                        .plan
                        .batches
                        .get(active.index)
                        .map(|b| b.agents.clone())
                        .unwrap_or_default(),
                    whole_job,
                    started_at_ms: active.started_at_ms,
                    mode: r.policy.health_check,
                }));
            }
            out.push(Action::Tick);
            out
        }
        S::Successful | S::Reverted => {
            let mut out = Vec::new();
            if let (Some(job_id), Some(version)) = (&state.current_job_id, state.current_version) {
                out.push(Action::PromoteAgents {
                    job_id: job_id.clone(),
                    version,
                });
            }
            if let Some(old) = &state.retired_job_id {
                out.push(Action::CancelJob {
                    job_id: old.clone(),
                    reason: format!(
                        "replaced by version {} of deployment {}",
                        state.current_version.map_or(0, |v| v.0),
                        state.key
                    ),
                });
            }
            out
        }
        S::VersionRecorded => vec![Action::StartJob {
            job_id: r.job_id.clone(),
            version: r.version,
        }],
        S::AwaitingPromotion | S::Paused | S::Failed => vec![],
    }
}
