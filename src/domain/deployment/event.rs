//! The facts of a deployment key's life, stored as JSON on the key's own stream. Named like
//! the job events (`job_started` / `deployment_started`), tagged in snake_case.

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::status::Role;
use super::version::{Version, VersionRecord};
use crate::domain::policy::UpdatePolicy;

/// The facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum DeploymentEvent {
    /// A rollout exists: its id, the version it records (not stable yet) and its plan.
    DeploymentCreated {
        deployment_id: String,
        key: String,
        record: VersionRecord,
        policy: UpdatePolicy,
        plan: Plan,
        /// The job being replaced (`None` for an initial deployment).
        source_job_id: Option<String>,
        /// Set when this rollout is a rollback to that version.
        rollback_of: Option<Version>,
        description: String,
        at_ms: i64,
    },
    /// Batches start being rolled out; the runtime starts the first one.
    DeploymentStarted {
        at_ms: i64,
    },
    /// The runtime replaced a batch's agents (or started the target job).
    DeploymentBatchStarted {
        index: usize,
        agents: Vec<String>,
        role: Role,
        at_ms: i64,
    },
    /// The batch's agents became healthy at `since_ms`; it completes once they stay so for
    /// `min_healthy_ms`.
    DeploymentBatchHealthy {
        index: usize,
        since_ms: i64,
    },
    /// The batch stopped being healthy; the `min_healthy_ms` wait starts over.
    DeploymentBatchUnhealthy {
        index: usize,
        reason: String,
        at_ms: i64,
    },
    /// The batch stayed healthy long enough; the runtime may start the next one.
    DeploymentBatchCompleted {
        index: usize,
        at_ms: i64,
    },
    /// The canaries (or candidate job) are healthy. Without `auto_promote` the deployment
    /// waits for an operator's promote.
    DeploymentCanaryReady {
        agents: Vec<String>,
        auto_promote: bool,
        at_ms: i64,
    },
    /// An operator promoted the canaries; the remaining batches follow.
    DeploymentPromoted {
        at_ms: i64,
    },
    /// The target version is live and stable. `cancel_job_id`: the old job the runtime
    /// cancels (blue-green).
    DeploymentSuccessful {
        version: Version,
        job_id: String,
        cancel_job_id: Option<String>,
        description: String,
        at_ms: i64,
    },
    /// Nothing changed at runtime; the version is recorded as stable.
    DeploymentNoop {
        version: Version,
        at_ms: i64,
    },
    /// A batch job ran again as a new job; the version is recorded, not made stable.
    DeploymentVersionRecorded {
        version: Version,
        job_id: String,
        at_ms: i64,
    },
    DeploymentPaused {
        reason: Option<String>,
        at_ms: i64,
    },
    /// Resumed after a pause.
    DeploymentRunning {
        at_ms: i64,
    },
    DeploymentFailed {
        reason: String,
        at_ms: i64,
    },
    /// A failed rollout is undone (`auto_revert`): `record` is a new version carrying the
    /// manifest of stable version `to`, rolled out by `plan`.
    DeploymentReverting {
        record: VersionRecord,
        to: Version,
        plan: Plan,
        at_ms: i64,
    },
    /// The revert finished: `version` is live and stable. `cancel_job_id`: the failed
    /// rollout's job the runtime cancels (blue-green).
    DeploymentReverted {
        version: Version,
        job_id: String,
        cancel_job_id: Option<String>,
        at_ms: i64,
    },
}

impl DeploymentEvent {
    /// The snake_case name stored next to the JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            DeploymentEvent::DeploymentCreated { .. } => "deployment_created",
            DeploymentEvent::DeploymentStarted { .. } => "deployment_started",
            DeploymentEvent::DeploymentBatchStarted { .. } => "deployment_batch_started",
            DeploymentEvent::DeploymentBatchHealthy { .. } => "deployment_batch_healthy",
            DeploymentEvent::DeploymentBatchUnhealthy { .. } => "deployment_batch_unhealthy",
            DeploymentEvent::DeploymentBatchCompleted { .. } => "deployment_batch_completed",
            DeploymentEvent::DeploymentCanaryReady { .. } => "deployment_canary_ready",
            DeploymentEvent::DeploymentPromoted { .. } => "deployment_promoted",
            DeploymentEvent::DeploymentSuccessful { .. } => "deployment_successful",
            DeploymentEvent::DeploymentNoop { .. } => "deployment_noop",
            DeploymentEvent::DeploymentVersionRecorded { .. } => "deployment_version_recorded",
            DeploymentEvent::DeploymentPaused { .. } => "deployment_paused",
            DeploymentEvent::DeploymentRunning { .. } => "deployment_running",
            DeploymentEvent::DeploymentFailed { .. } => "deployment_failed",
            DeploymentEvent::DeploymentReverting { .. } => "deployment_reverting",
            DeploymentEvent::DeploymentReverted { .. } => "deployment_reverted",
        }
    }

    /// JSON for the stream.
    pub fn to_json(&self) -> String {
        // Plain data with string keys always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an event back from the stream.
    pub fn from_json(text: &str) -> Result<DeploymentEvent, serde_json::Error> {
        serde_json::from_str(text)
    }
}
