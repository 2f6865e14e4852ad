//! Placement on a cluster: the owner plans the job when it starts and records the plan as a
//! `job_planned` event; every executor step then goes to its planned node. When nothing fits,
//! a `job_placement_blocked` event says why (once per blocked spell), the steps wait, and
//! planning is tried again every [`RETRY`], so attaching a fitting node unblocks the job.
//! When an agent with work has a planned node that can no longer take it (drained, lost), the
//! agent alone is planned again, against the rest of this job's allocations, and the merged
//! plan is recorded with the reason.
//!
//! The decisions are the pure `domain::scheduler::plan`; this module only gathers its inputs
//! (the cluster cache, other jobs' plans) and turns the answer into commands.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::Owner;
use crate::domain::job::{JobCommand, JobStatus};
use crate::domain::manifest::{AgentType, JobType};
use crate::domain::scheduler::{self, JobRequest, NodeCandidate, Plan, Requirements};
use crate::runtime::cluster::ClusterCache;
use crate::runtime::cluster::dry_run::executor_request;

/// How long a blocked job waits before planning again.
pub const RETRY: Duration = Duration::from_secs(2);

impl Owner {
    /// Plans the job, or re-places agents stranded on nodes that cannot take work, when due.
    pub(super) async fn schedule(&mut self) {
        let Some(cache) = self.cfg.cluster.clone() else {
            return;
        };
        if self.state.status.is_none_or(|s| s.is_terminal()) || self.manifest().is_none() {
            return;
        }
        if Instant::now() < self.next_schedule_at {
            return;
        }
        if self.state.plan.is_none() {
            self.plan_job(&cache).await;
            return;
        }
        if crate::domain::job::per_node(&self.state) {
            // Copies are node-scoped: one whose node is gone waits for it (core-spec 6.6);
            // a system job gains copies on nodes that joined.
            let system = self
                .manifest()
                .is_some_and(|m| m.job_type == JobType::System);
            if system && self.state.status == Some(JobStatus::Running) {
                self.grow_system(&cache).await;
            }
            return;
        }
        let stranded = self.stranded(&cache);
        if !stranded.is_empty() {
            self.replace(&cache, &stranded).await;
        }
    }

    /// Adds copies of a running system job on eligible nodes it does not cover yet.
    async fn grow_system(&mut self, cache: &ClusterCache) {
        self.next_schedule_at = Instant::now() + RETRY;
        let (Ok(request), Some(current)) = (self.request(), self.state.plan.clone()) else {
            return;
        };
        let Ok(existing) = cache.existing(&self.store, &self.job_id).await else {
            return;
        };
        let nodes = self.candidates(cache, &request).await;
        let Ok(full) = scheduler::plan(&nodes, &existing, &request) else {
            return;
        };
        let have: BTreeSet<&str> = current
            .allocations
            .iter()
            .map(|a| a.agent_id.as_str())
            .collect();
        let added: Vec<_> = full
            .allocations
            .iter()
            .filter(|a| !have.contains(a.agent_id.as_str()))
            .cloned()
            .collect();
        if added.is_empty() {
            return;
        }
        let nodes: BTreeSet<&str> = added.iter().map(|a| a.node.as_str()).collect();
        let reason = format!(
            "node(s) joined: {}",
            nodes.into_iter().collect::<Vec<_>>().join(", ")
        );
        let mut grown = current;
        grown.allocations.extend(added);
        grown.placement_count = grown.allocations.len();
        grown.system_targets = full.system_targets;
        self.record_plan(cache, &grown, Some(reason));
    }

    /// The cached nodes, each with its passing service instances when the request has a
    /// `requires_services` (read only then: the registry is the views of every active job).
    async fn candidates(&self, cache: &ClusterCache, request: &JobRequest) -> Vec<NodeCandidate> {
        let mut nodes = cache.candidates();
        if request.tasks.iter().all(|t| t.requires_services.is_empty()) {
            return nodes;
        }
        match crate::runtime::services::registry::passing_on_nodes(&self.store).await {
            Ok(mut by_node) => {
                for n in &mut nodes {
                    n.services = by_node.remove(&n.name).unwrap_or_default();
                }
            }
            // Planned without them, the job waits (blocked naming the service) and retries.
            Err(e) => {
                tracing::warn!(job_id = %self.job_id, error = %e, "cannot read the service registry")
            }
        }
        nodes
    }

    /// What the scheduler is asked: the manifest's executors.
    fn request(&self) -> Result<JobRequest, String> {
        let manifest = self
            .manifest()
            .ok_or_else(|| "the job's manifest cannot be read".to_string())?;
        executor_request(manifest, &self.job_id).map_err(|e| e.to_string())
    }

    async fn plan_job(&mut self, cache: &ClusterCache) {
        let request = match self.request() {
            Ok(r) => r,
            Err(e) => {
                // The manifest asks for something no cluster could ever read: fix the bundle.
                tracing::warn!(job_id = %self.job_id, error = %e, "job cannot be planned");
                self.decide_now(JobCommand::Fail {
                    result: json!({"error": format!("cannot plan the job: {e}"), "kind": "placement"}),
                });
                return;
            }
        };
        let existing = match cache.existing(&self.store, &self.job_id).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(job_id = %self.job_id, error = %e, "could not read other jobs' plans; retrying");
                self.next_schedule_at = Instant::now() + RETRY;
                return;
            }
        };
        let nodes = self.candidates(cache, &request).await;
        match scheduler::plan(&nodes, &existing, &request) {
            Ok(plan) => self.record_plan(cache, &plan, None),
            Err(e) => {
                tracing::info!(job_id = %self.job_id, reason = %e, "job waits for placement");
                self.decide_now(JobCommand::RecordPlacementBlocked {
                    reason: e.to_string(),
                    agent_id: None,
                });
                self.next_schedule_at = Instant::now() + RETRY;
            }
        }
    }

    /// Executors with work whose planned node cannot take it now (or that the plan lacks),
    /// or that their reschedule policy moves off the node they failed on.
    fn stranded(&self, cache: &ClusterCache) -> Vec<String> {
        self.startable(&[AgentType::Executor])
            .into_iter()
            .map(|(id, _, _)| id)
            .filter(|id| {
                let avoid = self
                    .state
                    .agents
                    .get(id)
                    .and_then(|a| a.avoid_node.as_deref());
                self.state
                    .planned_node(id)
                    .is_none_or(|n| !cache.is_schedulable(n) || avoid == Some(n))
            })
            .collect()
    }

    /// Plans `agents` again, holding the rest of this job's allocations fixed.
    async fn replace(&mut self, cache: &ClusterCache, agents: &[String]) {
        let Some(base) = self.state.plan.clone() else {
            return;
        };
        let mut request = match self.request() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(job_id = %self.job_id, error = %e, "agents cannot be re-placed");
                return;
            }
        };
        request.tasks.retain(|t| agents.contains(&t.agent_id));
        let mut existing = match cache.existing(&self.store, &self.job_id).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(job_id = %self.job_id, error = %e, "could not read other jobs' plans; retrying");
                self.next_schedule_at = Instant::now() + RETRY;
                return;
            }
        };
        existing.extend(
            base.allocations
                .iter()
                .filter(|a| !agents.contains(&a.agent_id))
                .cloned()
                .map(|mut a| {
                    a.job_id.clone_from(&self.job_id);
                    a
                }),
        );
        let from: BTreeSet<&str> = agents
            .iter()
            .filter_map(|a| self.state.planned_node(a))
            .collect();
        // A rescheduled agent must land elsewhere than the node it failed on.
        let avoid: BTreeSet<&str> = agents
            .iter()
            .filter_map(|a| self.state.agents.get(a)?.avoid_node.as_deref())
            .collect();
        let candidates: Vec<_> = self
            .candidates(cache, &request)
            .await
            .into_iter()
            .filter(|c| !avoid.contains(c.name.as_str()))
            .collect();
        match scheduler::plan(&candidates, &existing, &request) {
            Ok(partial) => {
                let moves: Vec<String> = partial
                    .allocations
                    .iter()
                    .map(|a| match self.state.planned_node(&a.agent_id) {
                        Some(old) => format!("{} from {old} to {}", a.agent_id, a.node),
                        None => format!("{} to {}", a.agent_id, a.node),
                    })
                    .collect();
                let reason = format!(
                    "re-placed {} (planned node{} {} cannot take work)",
                    moves.join(", "),
                    if from.len() == 1 { "" } else { "s" },
                    from.into_iter().collect::<Vec<_>>().join(", ")
                );
                tracing::info!(job_id = %self.job_id, reason, "agents re-placed");
                let merged = merge(base, partial);
                self.record_plan(cache, &merged, Some(reason));
            }
            Err(e) => {
                tracing::info!(job_id = %self.job_id, reason = %e, "agents wait for placement");
                self.decide_now(JobCommand::RecordPlacementBlocked {
                    reason: e.to_string(),
                    agent_id: agents.first().cloned(),
                });
                self.next_schedule_at = Instant::now() + RETRY;
            }
        }
    }

    fn record_plan(&mut self, cache: &ClusterCache, plan: &Plan, reason: Option<String>) {
        let value = match serde_json::to_value(plan) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(job_id = %self.job_id, error = %e, "plan could not be encoded");
                return;
            }
        };
        if self.decide_now(JobCommand::RecordPlan {
            plan: value,
            reason,
        }) {
            cache.note_plan(&self.job_id, plan.allocations.clone());
        }
    }
}

/// `base` with the allocations of the agents in `partial` replaced (core-spec 7.6: partial
/// re-plans merge by agent id), totals recomputed.
fn merge(mut base: Plan, partial: Plan) -> Plan {
    for alloc in partial.allocations {
        match base
            .allocations
            .iter_mut()
            .find(|a| a.agent_id == alloc.agent_id)
        {
            Some(slot) => *slot = alloc,
            None => base.allocations.push(alloc),
        }
    }
    base.placement_count = base.allocations.len();
    base.requirements = base
        .allocations
        .iter()
        .fold(Requirements::default(), |r, a| Requirements {
            cpu_millis: r.cpu_millis + a.cpu_millis,
            memory_mb: r.memory_mb + a.memory_mb,
            disk_mb: r.disk_mb + a.disk_mb,
            gpu_count: r.gpu_count + u64::from(a.gpus),
        });
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::manifest::JobType;
    use crate::domain::scheduler::{Allocation, Strategy};

    fn alloc(agent: &str, node: &str, gpus: u32) -> Allocation {
        Allocation {
            agent_id: agent.into(),
            node: node.into(),
            cpu_millis: 100,
            gpus,
            ..Allocation::default()
        }
    }

    fn plan_of(allocations: Vec<Allocation>) -> Plan {
        Plan {
            status: "planned".into(),
            job_id: "j".into(),
            job_type: JobType::Batch,
            strategy: Strategy::Binpack,
            placement_count: allocations.len(),
            requirements: Requirements::default(),
            allocations,
            system_targets: vec![],
            skipped_nodes: vec![],
        }
    }

    #[test]
    fn a_partial_plan_replaces_its_agents_and_keeps_the_rest() {
        let base = plan_of(vec![alloc("a", "n1", 1), alloc("b", "n1", 0)]);
        let merged = merge(base, plan_of(vec![alloc("a", "n2", 1)]));
        let nodes: Vec<(&str, &str)> = merged
            .allocations
            .iter()
            .map(|a| (a.agent_id.as_str(), a.node.as_str()))
            .collect();
        assert_eq!(nodes, [("a", "n2"), ("b", "n1")]);
        assert_eq!(merged.placement_count, 2);
        assert_eq!(merged.requirements.cpu_millis, 200);
        assert_eq!(merged.requirements.gpu_count, 1);
    }
}
