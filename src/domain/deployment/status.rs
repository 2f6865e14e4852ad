//! The small vocabularies of a deployment: its status, how it rolls out, and the role the
//! new version's instances play meanwhile.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a deployment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Batches are being rolled out.
    Running,
    /// Canaries (or a candidate job) are healthy; an operator has to promote.
    AwaitingPromotion,
    /// The target version is live and stable.
    Successful,
    /// A batch job ran again; the version is recorded but not made stable.
    VersionRecorded,
    /// An operator paused it; deadlines and progress wait for a resume.
    Paused,
    Failed,
    /// A failed rollout is being undone by itself (`auto_revert`).
    Reverting,
    /// A failed rollout was undone: the last stable version runs again, as a new version.
    Reverted,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Running => "running",
            DeploymentStatus::AwaitingPromotion => "awaiting_promotion",
            DeploymentStatus::Successful => "successful",
            DeploymentStatus::VersionRecorded => "version_recorded",
            DeploymentStatus::Paused => "paused",
            DeploymentStatus::Failed => "failed",
            DeploymentStatus::Reverting => "reverting",
            DeploymentStatus::Reverted => "reverted",
        }
    }

    /// A rollout is under way (or waits for an operator): a new update must not start.
    /// Every status, in lifecycle order.
    pub const ALL: [DeploymentStatus; 8] = [
        DeploymentStatus::Running,
        DeploymentStatus::AwaitingPromotion,
        DeploymentStatus::Successful,
        DeploymentStatus::VersionRecorded,
        DeploymentStatus::Paused,
        DeploymentStatus::Failed,
        DeploymentStatus::Reverting,
        DeploymentStatus::Reverted,
    ];

    /// Reads a status word back (as [`DeploymentStatus::as_str`] writes it).
    pub fn parse(s: &str) -> Option<DeploymentStatus> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    pub fn in_progress(self) -> bool {
        match self {
            DeploymentStatus::Running
            | DeploymentStatus::AwaitingPromotion
            | DeploymentStatus::Paused
            | DeploymentStatus::Reverting => true,
            DeploymentStatus::Successful
            | DeploymentStatus::VersionRecorded
            | DeploymentStatus::Failed
            | DeploymentStatus::Reverted => false,
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the new version replaces the old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Changed agents are replaced inside the running job.
    AgentLevel,
    /// A new job runs beside the old one, which is cancelled on promotion.
    BlueGreen,
}

/// The role of a version's service instances; discovery hides all but `primary` (9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Primary,
    /// Replaced agents of an agent-level canary.
    Canary,
    /// A blue-green job waiting for promotion.
    Candidate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Canary => "canary",
            Role::Candidate => "candidate",
        }
    }
}

/// The deployment phase a started job is told (its deployment context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Initial,
    Rerun,
    Canary,
    Rolling,
    BlueGreen,
}
