//! The leader's reconciler: desired state (every active job owned by a live node, no work on
//! a dead or drained node, drains finished when nothing is left) against the observed state.

use std::collections::BTreeMap;

use super::recovery::RecoveryPolicy;
use crate::domain::job::JobStatus;
use crate::domain::node::{NodeState, NodeStatus};

/// One node as the leader sees it.
#[derive(Debug, Clone)]
pub struct NodeObs {
    pub state: NodeState,
    /// The incarnation holding the node's liveness lease, if it is held.
    pub alive: Option<String>,
    /// Work items on the node's work stream not yet done (queued or running).
    pub pending_work: u64,
}

/// One active job as the leader sees it.
#[derive(Debug, Clone)]
pub struct JobObs {
    pub job_id: String,
    pub status: JobStatus,
    /// Who holds the job lease right now.
    pub lease_owner: Option<String>,
    /// The last owner the history recorded (it may be gone).
    pub last_owner: Option<String>,
    /// `last_owner` was an in-process run of the CLI, not a node: it never comes back, so
    /// the job is adopted whatever its recovery policy once the lease is free.
    pub last_owner_local_run: bool,
    /// The effective recovery policy recorded when the job started (`None`: not started yet).
    pub recovery: Option<RecoveryPolicy>,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub now_ms: i64,
    pub nodes: Vec<NodeObs>,
    pub jobs: Vec<JobObs>,
}

/// What the leader should do. Applying an action twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The node's liveness lease is gone: record it as lost.
    MarkLost { node: String, incarnation: String },
    /// Move the node's unfinished work to the given live nodes.
    ReclaimWork { from: String, to: Vec<String> },
    /// Ask `node` to take the job's lease and run it.
    Assign { job_id: String, node: String },
    /// Stop the job for an operator to look at (its policy forbids automatic recovery).
    PauseForReview { job_id: String, reason: String },
    /// Ask a draining node past its deadline to hand the job back.
    Release { job_id: String, node: String },
    /// The drained node has nothing left.
    CompleteDrain { node: String },
}

/// Decides the actions for one sweep.
pub fn reconcile(s: &Snapshot) -> Vec<Action> {
    let mut actions = vec![];
    let mut down: Vec<&str> = vec![];
    for n in &s.nodes {
        let name = n.state.name.as_str();
        if !n.state.connected {
            down.push(name);
            continue;
        }
        if n.alive.is_none() || n.alive != n.state.incarnation {
            if let Some(incarnation) = n.state.incarnation.clone() {
                actions.push(Action::MarkLost {
                    node: name.to_string(),
                    incarnation,
                });
            }
            down.push(name);
        }
    }
    let past_deadline = |n: &NodeObs| {
        n.state
            .draining()
            .is_some_and(|d| s.now_ms >= d.deadline_at_ms)
    };
    let targets: Vec<&NodeObs> = s
        .nodes
        .iter()
        .filter(|n| !down.contains(&n.state.name.as_str()))
        .filter(|n| n.state.status() == NodeStatus::Healthy)
        .collect();
    let target_names: Vec<String> = targets.iter().map(|n| n.state.name.clone()).collect();
    let node = |name: &str| s.nodes.iter().find(|n| n.state.name == name);
    let is_up = |name: &str| node(name).is_some() && !down.contains(&name);

    for n in &s.nodes {
        let gone = down.contains(&n.state.name.as_str()) || past_deadline(n);
        if gone && n.pending_work > 0 && !target_names.is_empty() {
            actions.push(Action::ReclaimWork {
                from: n.state.name.clone(),
                to: target_names.clone(),
            });
        }
    }

    // Jobs per live owner, so new assignments go to the least loaded node.
    let mut load: BTreeMap<&str, usize> = target_names.iter().map(|t| (t.as_str(), 0)).collect();
    for j in &s.jobs {
        if let Some(o) = j.lease_owner.as_deref()
            && let Some(c) = load.get_mut(o)
        {
            *c += 1;
        }
    }
    for j in s.jobs.iter().filter(|j| !j.status.is_terminal()) {
        if let Some(owner) = &j.lease_owner {
            if node(owner).is_some_and(past_deadline) {
                actions.push(Action::Release {
                    job_id: j.job_id.clone(),
                    node: owner.clone(),
                });
            }
            continue;
        }
        // A local run's owner is no node to wait for or to review the loss of: its job is
        // handed to a node like a job that never had an owner.
        let last_owner = j.last_owner.as_deref().filter(|_| !j.last_owner_local_run);
        let last_up = last_owner.filter(|o| is_up(o));
        let policy = j.recovery.unwrap_or(RecoveryPolicy::ClusterRecover);
        let previous_owner_lost = last_owner.is_some() && last_up.is_none();
        if policy == RecoveryPolicy::ManualRecover
            && previous_owner_lost
            && j.status != JobStatus::Paused
        {
            actions.push(Action::PauseForReview {
                job_id: j.job_id.clone(),
                reason: format!(
                    "owner node {} was lost and the job's recovery policy is manual_recover",
                    j.last_owner.as_deref().unwrap_or("?")
                ),
            });
            continue;
        }
        let preferred = last_up.filter(|o| target_names.iter().any(|t| t == o));
        let target = match (policy, preferred) {
            (_, Some(p)) => Some(p.to_string()),
            // Local restart waits for its node to come back.
            (RecoveryPolicy::LocalRestart, None) if previous_owner_lost => None,
            _ => load
                .iter()
                .min_by_key(|(name, c)| (**c, **name))
                .map(|(name, _)| name.to_string()),
        };
        if let Some(t) = target {
            if let Some(c) = load.get_mut(t.as_str()) {
                *c += 1;
            }
            actions.push(Action::Assign {
                job_id: j.job_id.clone(),
                node: t,
            });
        }
    }

    for n in &s.nodes {
        let name = n.state.name.as_str();
        let owns = s
            .jobs
            .iter()
            .any(|j| !j.status.is_terminal() && j.lease_owner.as_deref() == Some(name));
        if n.state.draining().is_some() && !owns && n.pending_work == 0 {
            actions.push(Action::CompleteDrain {
                node: name.to_string(),
            });
        }
    }
    actions
}
