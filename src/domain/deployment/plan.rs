//! Planning an update (core-spec 9.2): from the running version and the new manifest, what
//! kind of update this is and the batches it rolls out in. Pure; the plan is stored in the
//! `deployment_created` event, so replay never re-plans.

use serde::{Deserialize, Serialize};

use super::status::{Mode, Phase, Role};
use super::topology::{changed_nodes, same_topology};
use crate::domain::manifest::{AgentType, JobType, Manifest};
use crate::domain::policy::{UpdatePolicy, UpdateStrategy};

/// The version being replaced.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub manifest: &'a Manifest,
    /// Whether its job is still pending or running: a finished job cannot be updated in place.
    pub active: bool,
    /// The new version's payload files differ: agents that run payloads (executors and
    /// modules) count as changed even when their specs did not.
    pub payloads_changed: bool,
}

/// What kind of update a manifest needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// The key has no version yet: start the job.
    Initial,
    /// The running version is not a service or system job: run the new one as a new job and
    /// record the version (batch jobs finish, so there is nothing to replace).
    Rerun,
    /// Start a new job beside the old one.
    BlueGreen,
    /// No agent changed: record the version as it is.
    NoOp,
    /// Replace the changed agents inside the running job.
    AgentLevel,
}

/// Agents replaced (or a job started) together; the next batch waits until this one has been
/// healthy for `min_healthy_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Node ids; the runtime maps them to its agents (per-node copies included).
    pub agents: Vec<String>,
    pub role: Role,
}

/// The decision, stored whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub kind: PlanKind,
    pub changed_agent_ids: Vec<String>,
    pub canary_agent_ids: Vec<String>,
    /// In order; a canary batch, when there is one, is first. Empty for rerun and no-op.
    pub batches: Vec<Batch>,
}

impl Plan {
    pub fn mode(&self) -> Mode {
        match self.kind {
            PlanKind::BlueGreen => Mode::BlueGreen,
            PlanKind::Initial | PlanKind::Rerun | PlanKind::NoOp | PlanKind::AgentLevel => {
                Mode::AgentLevel
            }
        }
    }

    /// The phase a job started for this plan is told; `None` when no job starts.
    pub fn phase(&self) -> Option<Phase> {
        match self.kind {
            PlanKind::Initial => Some(Phase::Initial),
            PlanKind::Rerun => Some(Phase::Rerun),
            PlanKind::BlueGreen => Some(Phase::BlueGreen),
            PlanKind::AgentLevel if !self.canary_agent_ids.is_empty() => Some(Phase::Canary),
            PlanKind::AgentLevel => Some(Phase::Rolling),
            PlanKind::NoOp => None,
        }
    }

    /// Whether the first batch is a canary (or candidate) that promotion is about.
    pub fn has_canary(&self) -> bool {
        self.batches
            .first()
            .is_some_and(|b| matches!(b.role, Role::Canary | Role::Candidate))
    }
}

/// Whether the policy asks for canaries at all.
pub fn wants_canary(policy: &UpdatePolicy) -> bool {
    policy.canary > 0 || policy.strategy == UpdateStrategy::Canary
}

/// How many of `changed` agents go first as canaries: `min(canary, n)` when `canary` is set,
/// one when only the strategy says canary, else none.
pub fn canary_count(policy: &UpdatePolicy, changed: usize) -> usize {
    let asked = usize::try_from(policy.canary).unwrap_or(usize::MAX);
    match (asked, policy.strategy) {
        (0, UpdateStrategy::Canary) => changed.min(1),
        (n, _) => changed.min(n),
    }
}

/// Plans the update of `source` (none: the key is new) to `target` under `policy`.
pub fn plan_update(source: Option<Source<'_>>, target: &Manifest, policy: &UpdatePolicy) -> Plan {
    let Some(source) = source else {
        return whole_job(PlanKind::Initial, target, Role::Primary);
    };
    if !matches!(source.manifest.job_type, JobType::Service | JobType::System) {
        return no_batches(PlanKind::Rerun, Vec::new());
    }
    // Blue-green as a strategy is honoured even when agents alone changed (the original
    // only switched jobs when the topology differed).
    let blue_green = policy.strategy == UpdateStrategy::BlueGreen;
    if !same_topology(source.manifest, target) || !source.active {
        return blue_green_plan(target, policy);
    }
    let mut changed = changed_nodes(source.manifest, target);
    if source.payloads_changed {
        for node in &target.nodes {
            let runs_payloads = matches!(node.agent_type, AgentType::Executor | AgentType::Module);
            if runs_payloads && !changed.contains(&node.node_id) {
                changed.push(node.node_id.clone());
            }
        }
    }
    if changed.is_empty() {
        return no_batches(PlanKind::NoOp, changed);
    }
    if blue_green {
        return blue_green_plan(target, policy);
    }
    agent_level(changed, policy)
}

fn whole_job(kind: PlanKind, target: &Manifest, role: Role) -> Plan {
    let agents: Vec<String> = target.nodes.iter().map(|n| n.node_id.clone()).collect();
    let canaries = match role {
        Role::Primary => Vec::new(),
        Role::Canary | Role::Candidate => agents.clone(),
    };
    Plan {
        kind,
        changed_agent_ids: agents.clone(),
        canary_agent_ids: canaries,
        batches: vec![Batch { agents, role }],
    }
}

fn blue_green_plan(target: &Manifest, policy: &UpdatePolicy) -> Plan {
    let role = if wants_canary(policy) {
        Role::Candidate
    } else {
        Role::Primary
    };
    whole_job(PlanKind::BlueGreen, target, role)
}

fn no_batches(kind: PlanKind, changed: Vec<String>) -> Plan {
    Plan {
        kind,
        changed_agent_ids: changed,
        canary_agent_ids: Vec::new(),
        batches: Vec::new(),
    }
}

fn agent_level(changed: Vec<String>, policy: &UpdatePolicy) -> Plan {
    let canaries = canary_count(policy, changed.len());
    let (first, rest) = changed.split_at(canaries);
    let mut batches = Vec::new();
    if !first.is_empty() {
        batches.push(Batch {
            agents: first.to_vec(),
            role: Role::Canary,
        });
    }
    batches.extend(chunks(rest, policy.max_parallel));
    Plan {
        kind: PlanKind::AgentLevel,
        canary_agent_ids: first.to_vec(),
        changed_agent_ids: changed,
        batches,
    }
}

/// Primary batches of `max_parallel` agents (at least one, so a rollout always progresses).
pub(super) fn chunks(agents: &[String], max_parallel: u64) -> Vec<Batch> {
    let size = usize::try_from(max_parallel).unwrap_or(usize::MAX).max(1);
    agents
        .chunks(size)
        .map(|c| Batch {
            agents: c.to_vec(),
            role: Role::Primary,
        })
        .collect()
}
