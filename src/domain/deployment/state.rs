//! A deployment key's state: every version, the current rollout and where it stands.

use std::collections::BTreeMap;

use super::plan::{Batch, Plan};
use super::status::DeploymentStatus;
use super::version::{Version, VersionRecord};
use crate::domain::manifest::Manifest;
use crate::domain::policy::UpdatePolicy;

/// The batch being rolled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveBatch {
    pub index: usize,
    /// When the runtime started it: the healthy deadline counts from here.
    pub started_at_ms: i64,
    /// Since when it has been healthy without interruption.
    pub healthy_since_ms: Option<i64>,
}

/// The newest rollout of the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub deployment_id: String,
    pub version: Version,
    /// The job that will run `version` (the source job itself for in-place updates).
    pub job_id: String,
    pub source_job_id: Option<String>,
    pub policy: UpdatePolicy,
    pub plan: Plan,
    /// Index of the next batch to start.
    pub next_batch: usize,
    pub active: Option<ActiveBatch>,
    /// Nodes of every batch started so far: what a revert has to put back.
    pub touched: Vec<String>,
    /// Last batch start, healthy report or completion: the progress deadline counts from it.
    pub last_progress_ms: i64,
    /// When the rollout was created (a revert continues it).
    pub created_at_ms: i64,
    /// This rollout is an automatic revert (it does not revert itself again).
    pub reverting: bool,
    pub description: String,
}

impl Rollout {
    /// The batch the runtime should start now, if any.
    pub fn next(&self) -> Option<(usize, &Batch)> {
        if self.active.is_some() {
            return None;
        }
        self.plan
            .batches
            .get(self.next_batch)
            .map(|b| (self.next_batch, b))
    }
}

/// The folded state of one deployment key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentState {
    pub key: String,
    /// Number of events folded: the expected length for the next append.
    pub seq: u64,
    /// `None` until the first `deployment_created`.
    pub status: Option<DeploymentStatus>,
    /// What to return to on resume.
    pub paused_from: Option<DeploymentStatus>,
    pub paused_at_ms: Option<i64>,
    pub rollout: Option<Rollout>,
    pub versions: BTreeMap<Version, VersionRecord>,
    pub current_version: Option<Version>,
    pub stable_version: Option<Version>,
    pub current_job_id: Option<String>,
    pub stable_job_id: Option<String>,
    /// The job a finished blue-green rollout (or its revert) replaced: the runtime cancels it.
    pub retired_job_id: Option<String>,
    /// Why the last rollout failed, kept after a revert so the view can say so.
    pub failure: Option<String>,
    pub description: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl DeploymentState {
    pub fn new(key: &str) -> DeploymentState {
        DeploymentState {
            key: key.to_string(),
            ..DeploymentState::default()
        }
    }

    /// The version an update replaces: the stable one, else the current one.
    pub fn source_version(&self) -> Option<&VersionRecord> {
        self.stable_version
            .or(self.current_version)
            .and_then(|v| self.versions.get(&v))
    }

    /// The job an update replaces; the caller says whether it is still active.
    pub fn source_job_id(&self) -> Option<&str> {
        self.source_version().map(|r| r.job_id.as_str())
    }

    /// The number the next recorded version gets.
    pub fn next_version(&self) -> Version {
        Version::next_after(self.versions.keys())
    }

    /// The manifest of a recorded version, typed.
    pub fn manifest_of(&self, version: Version) -> Option<Manifest> {
        let record = self.versions.get(&version)?;
        Manifest::from_normalised(&record.manifest).ok()
    }

    /// When the newest rollout was created.
    pub fn rollout_created_at_ms(&self) -> Option<i64> {
        self.rollout.as_ref().map(|r| r.created_at_ms)
    }

    /// The policy in force for time-driven decisions.
    pub fn policy(&self) -> Option<&UpdatePolicy> {
        self.rollout.as_ref().map(|r| &r.policy)
    }
}
