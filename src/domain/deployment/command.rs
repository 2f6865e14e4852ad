//! What can be asked of a deployment key. Time, ids and the liveness of jobs are inputs.

use super::version::{BundleRef, Version};
use crate::domain::manifest::Manifest;
use crate::domain::policy::UpdatePolicy;

/// Which version a rollback returns to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    Version(Version),
    /// The newest version carrying this tag.
    Tag(String),
    /// The newest stable version other than the current one.
    LastStable,
}

/// A new version to roll out (a deploy, an update, or the manifest a rollback loads).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Id of this rollout (see [`super::deployment_id`]).
    pub deployment_id: String,
    /// The job to start when the plan starts one (initial, rerun, blue-green); agent-level
    /// updates keep the running job.
    pub job_id: String,
    /// The caller's policy (overrides merged); `None`: the manifest's, else the defaults.
    pub policy: Option<UpdatePolicy>,
    /// Whether the job being replaced is still active (decides in-place vs blue-green).
    pub source_active: bool,
    pub manifest_ref: Option<String>,
    /// The new version's payloads (a rollback takes the old version's instead).
    pub bundle: BundleRef,
    pub tag: Option<String>,
    pub now_ms: i64,
}

/// A request to a deployment key.
#[derive(Debug, Clone, PartialEq)]
pub enum DeploymentCommand {
    /// Deploy (or update: the key's history decides) `manifest`.
    Deploy {
        target: Target,
        manifest: Box<Manifest>,
    },
    /// The runtime replaced batch `index`'s agents (or started the target job).
    BatchStarted {
        index: usize,
        now_ms: i64,
    },
    /// Batch `index` became healthy at `at_ms` (its checks or agent states, per policy).
    BatchHealthy {
        index: usize,
        at_ms: i64,
    },
    /// Batch `index` is not healthy (any more).
    BatchUnhealthy {
        index: usize,
        reason: String,
        at_ms: i64,
    },
    /// Time passed: complete batches that stayed healthy, fail missed deadlines.
    Tick {
        now_ms: i64,
    },
    Promote {
        now_ms: i64,
    },
    /// Roll out an older version again, as a new version. `target.tag` tags the new one.
    Rollback {
        to: RollbackTarget,
        target: Target,
        reason: Option<String>,
    },
    Pause {
        reason: Option<String>,
        now_ms: i64,
    },
    Resume {
        now_ms: i64,
    },
    Fail {
        reason: String,
        now_ms: i64,
    },
}
