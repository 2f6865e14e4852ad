//! Recovery policy resolution (core-spec 6.8): what a job asks for (`policies.recovery_mode`)
//! against what the cluster can give when it starts.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryPolicy {
    Auto,
    LocalRestart,
    ClusterRecover,
    ManualRecover,
}

impl RecoveryPolicy {
    pub fn parse(s: Option<&str>) -> RecoveryPolicy {
        match s {
            Some("local_restart") => RecoveryPolicy::LocalRestart,
            Some("cluster_recover") => RecoveryPolicy::ClusterRecover,
            Some("manual_recover") => RecoveryPolicy::ManualRecover,
            _ => RecoveryPolicy::Auto,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryPolicy::Auto => "auto",
            RecoveryPolicy::LocalRestart => "local_restart",
            RecoveryPolicy::ClusterRecover => "cluster_recover",
            RecoveryPolicy::ManualRecover => "manual_recover",
        }
    }
}

/// The reliability map persisted on the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reliability {
    /// `multi_node` when at least two healthy nodes were observed, else `single_node`.
    pub mode: String,
    pub requested_recovery_policy: RecoveryPolicy,
    pub effective_recovery_policy: RecoveryPolicy,
    /// True when `cluster_recover` was asked for and could not be given.
    pub degraded: bool,
    pub reason: String,
    pub observed_nodes: Vec<String>,
    pub observed_at_ms: i64,
}

/// Resolves the policy. `healthy_nodes` are the connected, schedulable nodes (stable long
/// enough to count); `profiles` the execution profiles the job uses, and `profile_nodes(p)`
/// the healthy nodes advertising profile `p`.
pub fn resolve_recovery(
    requested: RecoveryPolicy,
    healthy_nodes: &[String],
    profiles: &[String],
    profile_nodes: impl Fn(&str) -> usize,
    now_ms: i64,
) -> Reliability {
    let multi = healthy_nodes.len() >= 2;
    let mode = if multi { "multi_node" } else { "single_node" };
    let missing_profile = profiles.iter().find(|p| profile_nodes(p) < 2);
    let recoverable: Result<(), String> = if !multi {
        Err("fewer than 2 healthy connected runtime nodes observed".into())
    } else if let Some(p) = missing_profile {
        Err(format!(
            "no alternate healthy runtime node advertises execution profile {p}"
        ))
    } else {
        Ok(())
    };
    let (effective, degraded, reason) = match (requested, recoverable) {
        (RecoveryPolicy::ManualRecover, _) => (
            RecoveryPolicy::ManualRecover,
            false,
            format!("manual recovery requested on {mode}"),
        ),
        (RecoveryPolicy::LocalRestart, _) => (
            RecoveryPolicy::LocalRestart,
            false,
            format!("local recovery requested on {mode}"),
        ),
        (RecoveryPolicy::ClusterRecover, Ok(())) => (
            RecoveryPolicy::ClusterRecover,
            false,
            "cluster recovery enabled".into(),
        ),
        (RecoveryPolicy::ClusterRecover, Err(why)) => (RecoveryPolicy::LocalRestart, true, why),
        (RecoveryPolicy::Auto, Ok(())) => (
            RecoveryPolicy::ClusterRecover,
            false,
            "auto selected cluster recovery".into(),
        ),
        (RecoveryPolicy::Auto, Err(why)) => (RecoveryPolicy::LocalRestart, false, why),
    };
    let mut observed = healthy_nodes.to_vec();
    observed.sort();
    Reliability {
        mode: mode.into(),
        requested_recovery_policy: requested,
        effective_recovery_policy: effective,
        degraded,
        reason,
        observed_nodes: observed,
        observed_at_ms: now_ms,
    }
}
