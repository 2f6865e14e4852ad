//! A job's part in a deployment (core-spec 9.2, 9.3): which deployment version and role the
//! job and each of its agents run, in-place replacement of agents by a rolling or canary
//! update, and promotion of the new version's agents to `primary`. The deployment aggregate
//! decides when; these rules only keep the job's record of it consistent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::DomainError;
use super::state::JobState;
use super::status::JobStatus;
use crate::domain::deployment::{BundleRef, Phase, Role, Version};
use crate::domain::event::JobEvent;
use crate::domain::manifest::Manifest;

/// The deployment a job (or an agent replaced in place) runs for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDeployment {
    pub deployment_id: String,
    pub deployment_key: String,
    pub version: Version,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
}

impl JobDeployment {
    /// The job's deployment context as the job record shows it (core-spec 9.2).
    pub fn context(&self) -> Value {
        serde_json::json!({
            "deployment_id": self.deployment_id,
            "deployment_key": self.deployment_key,
            "deployment_version": self.version,
            "deployment_role": self.role,
            "phase": self.phase,
        })
    }
}

/// What a job records about its deployment: the version it was started with and the
/// version and role each agent replaced in place runs now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub job: Option<JobDeployment>,
    /// Source agent id -> the deployment it was replaced for.
    pub agents: BTreeMap<String, JobDeployment>,
    /// Source agent id -> the payloads of the version it was replaced by (others run the
    /// job's own bundle).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bundles: BTreeMap<String, BundleRef>,
    /// Bumped by every replacement or promotion: owners react once per change.
    pub generation: u64,
}

impl DeploymentRecord {
    /// The deployment agent `source_id` runs for: its replacement's, else the job's.
    pub fn of_agent(&self, source_id: &str) -> Option<&JobDeployment> {
        self.agents.get(source_id).or(self.job.as_ref())
    }

    /// Whether no deployment ever touched the job.
    pub fn is_empty(&self) -> bool {
        self.job.is_none() && self.agents.is_empty()
    }

    /// Records that the agents of `nodes` run for `deployment` now, from `bundle`.
    pub fn replaced(&mut self, nodes: &[Value], bundle: &BundleRef, deployment: &JobDeployment) {
        for id in nodes.iter().filter_map(node_id) {
            self.agents.insert(id.to_string(), deployment.clone());
            if *bundle == BundleRef::default() {
                self.bundles.remove(id);
            } else {
                self.bundles.insert(id.to_string(), bundle.clone());
            }
        }
        self.generation += 1;
    }

    /// Records that everything of `version` is primary now.
    pub fn promoted(&mut self, version: Version) {
        for d in self.job.iter_mut().chain(self.agents.values_mut()) {
            if d.version == version {
                d.role = Role::Primary;
            }
        }
        self.generation += 1;
    }
}

/// Replace `nodes` (normalised node specs of the new version) inside a live job.
pub(super) fn replace(
    state: &JobState,
    nodes: &[Value],
    bundle: &BundleRef,
    deployment: &JobDeployment,
) -> Result<Vec<JobEvent>, DomainError> {
    let status = state.status.ok_or(DomainError::NotFound)?;
    if status.is_terminal() {
        return Err(DomainError::WrongStatus {
            action: "replace agents of",
            status,
        });
    }
    let graph = state
        .graph
        .as_ref()
        .ok_or(DomainError::UnreadableManifest)?;
    let mut ids = Vec::with_capacity(nodes.len());
    for node in nodes {
        let id = node_id(node).ok_or(DomainError::UnreadableManifest)?;
        if graph.node(id).is_none() {
            return Err(DomainError::IncompatibleTopology(id.to_string()));
        }
        ids.push(id);
    }
    // Already replaced for this version (a retried action): nothing to record.
    let done = ids.iter().all(|id| {
        state
            .deployment
            .agents
            .get(*id)
            .is_some_and(|d| d.version == deployment.version && d.role == deployment.role)
    });
    if done {
        return Ok(vec![]);
    }
    Ok(vec![JobEvent::AgentsReplaced {
        nodes: nodes.to_vec(),
        bundle: bundle.clone(),
        deployment: deployment.clone(),
    }])
}

/// Mark everything of `version` in this job as `primary`.
pub(super) fn promote(state: &JobState, version: Version) -> Result<Vec<JobEvent>, DomainError> {
    let status = state.status.ok_or(DomainError::NotFound)?;
    if status == JobStatus::Completed
        || status == JobStatus::Failed
        || status == JobStatus::Cancelled
    {
        return Err(DomainError::WrongStatus {
            action: "promote",
            status,
        });
    }
    let record = &state.deployment;
    let pending = record
        .job
        .iter()
        .chain(record.agents.values())
        .any(|d| d.version == version && d.role != Role::Primary);
    Ok(if pending {
        vec![JobEvent::AgentsPromoted { version }]
    } else {
        vec![]
    })
}

fn node_id(node: &Value) -> Option<&str> {
    node.get("node_id").and_then(Value::as_str)
}

/// Applies `agents_replaced`: the graph takes the new node specs (re-parsed whole, so every
/// derived field is computed as at submission), and the agents their version and role.
pub(super) fn apply_replaced(
    state: &mut JobState,
    nodes: &[Value],
    bundle: &BundleRef,
    deployment: &JobDeployment,
) {
    if let Some(graph) = state.graph.as_ref() {
        let mut value = graph.to_value();
        if let Some(list) = value.get_mut("nodes").and_then(Value::as_array_mut) {
            for new in nodes {
                if let Some(slot) = list
                    .iter_mut()
                    .find(|n| node_id(n).is_some() && node_id(n) == node_id(new))
                {
                    *slot = new.clone();
                }
            }
        }
        // A history that was accepted folds again: an unreadable result keeps the old graph.
        if let Ok(m) = Manifest::from_normalised(&value) {
            state.graph = Some(m);
        }
    }
    state.deployment.replaced(nodes, bundle, deployment);
}
