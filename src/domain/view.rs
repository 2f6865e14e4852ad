//! Read views (projections) as pure folds of events. The projection workers and
//! `admin rebuild-projections` both use these functions, so live and rebuilt views agree.
//!
//! Views depend only on event contents (never on the wall clock or on when they were applied).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::event::{EventEnvelope, JobEvent, StepRecord};
use crate::domain::job::{JobStatus, lifecycle};
use crate::domain::service::ServiceRecord;
use crate::domain::service::record;

/// What `job inspect` / `GetJob` / `job list` show about a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: String,
    pub graph_id: String,
    pub job_name: String,
    /// `batch`, `service`, `system` or `sysbatch`, from the manifest.
    #[serde(default)]
    pub job_type: String,
    /// `None` only for a view that has seen no `job_submitted` yet.
    pub status: Option<JobStatus>,
    pub submitted_at: Option<String>,
    pub updated_at: Option<String>,
    pub submitted_at_ms: i64,
    pub updated_at_ms: i64,
    pub result: Option<Value>,
    /// Sequence of the last event applied; the projection skips anything at or below it.
    pub last_seq: u64,
    pub last_event: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_epoch: u64,
    /// `lease_owner` is an in-process run of the CLI (see `JobEvent::LeaseAcquired`).
    #[serde(default)]
    pub lease_owner_local_run: bool,
    /// Recovery policy and what the cluster looked like when the job started.
    #[serde(default)]
    pub reliability: Option<Value>,
    /// The scheduler's plan (core-spec 7.6): per agent the node, resources and device ids.
    #[serde(default)]
    pub scheduler: Option<Value>,
    /// Why the job cannot be placed right now; cleared when a plan is recorded.
    #[serde(default)]
    pub placement_blocked: Option<String>,
    pub agent_count: usize,
    pub messages_sent: u64,
    pub steps_finished: u64,
    pub steps_failed: u64,
    pub dead_letters: u64,
    /// The job's registered service instances by id: the service registry is the union of
    /// these over active jobs (core-spec 9.1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, ServiceRecord>,
    /// The deployment version and role of the job and of agents replaced in place.
    #[serde(
        default,
        skip_serializing_if = "crate::domain::job::DeploymentRecord::is_empty"
    )]
    pub deployment: crate::domain::job::DeploymentRecord,
}

/// Per-agent row of a job (`job agents`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent_id: String,
    /// `idle`, `queued`, `running` or `error`.
    pub status: String,
    pub queued: u64,
    /// The oldest message in flight.
    pub inflight_message_id: Option<String>,
    /// Every message in flight, oldest first (several with `config.concurrency`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inflight_message_ids: Vec<String>,
    /// The node running the message in flight, when it was placed on one.
    #[serde(default)]
    pub node: Option<String>,
    pub processed: u64,
    pub failed_attempts: u64,
    /// Restarts and reschedules scheduled by the lifecycle policies.
    #[serde(default)]
    pub restarts: u64,
    #[serde(default)]
    pub reschedules: u64,
    /// When a scheduled restart or reschedule may run.
    #[serde(default)]
    pub next_attempt_at_ms: Option<i64>,
    pub last_error: Option<Value>,
    pub last_event: Option<String>,
    pub updated_at_ms: i64,
}

/// One entry of a job's dead-letter view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterView {
    pub seq: u64,
    pub agent_id: Option<String>,
    pub reason: String,
    pub message: Value,
    pub timestamp_ms: i64,
}

/// The views of one job, as loaded by a projection worker: the job row, the agent rows
/// touched by the batch, and the dead letters the batch added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobProjection {
    pub job: JobView,
    pub agents: BTreeMap<String, AgentView>,
    pub new_dead_letters: Vec<DeadLetterView>,
}

/// Agent ids whose rows an event changes (so a worker loads only those).
pub fn agents_touched(event: &JobEvent) -> Vec<&str> {
    match event {
        JobEvent::MessageSent { message } => vec![&message.to],
        JobEvent::InputsQueued { counts } => counts.keys().map(String::as_str).collect(),
        JobEvent::AgentStepped(step) => std::iter::once(step.agent_id.as_str())
            .chain(
                step.emits
                    .iter()
                    .flat_map(|e| e.to.iter().map(String::as_str)),
            )
            .collect(),
        JobEvent::AgentStepStarted { agent_id, .. }
        | JobEvent::AgentStepFinished { agent_id, .. }
        | JobEvent::AgentStepFailed { agent_id, .. }
        | JobEvent::AgentRestartScheduled { agent_id, .. }
        | JobEvent::AgentRescheduleScheduled { agent_id, .. }
        | JobEvent::AgentEventRecorded { agent_id, .. } => vec![agent_id],
        _ => vec![],
    }
}

/// Formats milliseconds since the epoch as ISO-8601 UTC with milliseconds.
pub fn iso_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

impl JobProjection {
    /// Applies one event. Returns false (and changes nothing) when the event is not newer
    /// than the view: that is what makes redelivery harmless.
    pub fn apply(&mut self, env: &EventEnvelope) -> bool {
        if env.seq <= self.job.last_seq {
            return false;
        }
        let job = &mut self.job;
        job.job_id.clone_from(&env.job_id);
        job.last_seq = env.seq;
        job.last_event = Some(env.event_type.clone());
        job.updated_at_ms = env.timestamp_ms;
        job.updated_at = iso_ms(env.timestamp_ms);
        self.apply_job(&env.payload);
        match &env.payload {
            JobEvent::InputsQueued { counts } => {
                for (agent_id, n) in counts {
                    self.row(agent_id).queued += u64::from(*n);
                    self.row(agent_id).refresh_status();
                }
            }
            JobEvent::AgentStepped(step) => self.apply_step(env, step),
            payload => {
                for agent_id in agents_touched(payload) {
                    apply_agent(self.row(agent_id), env);
                }
            }
        }
        for agent_id in agents_touched(&env.payload) {
            let row = self.row(agent_id);
            row.last_event = Some(env.event_type.clone());
            row.updated_at_ms = env.timestamp_ms;
        }
        if let JobEvent::DeadLettered {
            agent_id,
            reason,
            message,
        } = &env.payload
        {
            self.new_dead_letters.push(DeadLetterView {
                seq: env.seq,
                agent_id: agent_id.clone(),
                reason: reason.clone(),
                message: message.clone(),
                timestamp_ms: env.timestamp_ms,
            });
        }
        true
    }

    fn row(&mut self, agent_id: &str) -> &mut AgentView {
        self.agents
            .entry(agent_id.to_string())
            .or_insert_with(|| AgentView {
                agent_id: agent_id.to_string(),
                status: "idle".into(),
                ..Default::default()
            })
    }

    /// A whole step: the agent's message leaves its queue (or its flight), each delivered
    /// message joins its receiver's queue, and each undeliverable one is a dead letter.
    fn apply_step(&mut self, env: &EventEnvelope, step: &StepRecord) {
        let row = self.row(&step.agent_id);
        // The step's message: the one it names, else the oldest in flight, else the queue's.
        let landed = match &step.message_id {
            Some(id) => row.land(id),
            None => match row.inflight_ids().first().cloned() {
                Some(id) => row.land(&id),
                None => false,
            },
        };
        if !landed {
            row.queued = row.queued.saturating_sub(1);
        }
        row.next_attempt_at_ms = None;
        row.processed += 1;
        row.last_error = None;
        row.refresh_status();
        for emit in &step.emits {
            for receiver in &emit.to {
                let row = self.row(receiver);
                row.queued += 1;
                row.refresh_status();
            }
            if let Some(reason) = &emit.dead {
                self.new_dead_letters.push(DeadLetterView {
                    seq: env.seq,
                    agent_id: Some(step.agent_id.clone()),
                    reason: reason.clone(),
                    message: emit.dead_letter_message(),
                    timestamp_ms: env.timestamp_ms,
                });
            }
        }
    }

    /// Steps over a history entry that could not be decoded (it was dead-lettered), so the
    /// view's seq keeps pace with the history. Rebuilds do the same, so views still agree.
    pub fn skip_undecodable(&mut self, seq: u64) {
        self.job.last_seq = self.job.last_seq.max(seq);
    }

    fn apply_job(&mut self, event: &JobEvent) {
        let job = &mut self.job;
        match event {
            JobEvent::JobSubmitted(s) => {
                job.status = Some(JobStatus::Pending);
                job.graph_id.clone_from(&s.graph_id);
                job.job_name.clone_from(&s.job_name);
                job.submitted_at_ms = s.submitted_at_ms;
                job.submitted_at = iso_ms(s.submitted_at_ms);
                job.deployment.job = s.deployment.clone();
                job.job_type = s
                    .manifest
                    .get("job_type")
                    .and_then(Value::as_str)
                    .unwrap_or("batch")
                    .to_string();
                job.agent_count = s
                    .manifest
                    .get("nodes")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
            }
            JobEvent::JobStarted
            | JobEvent::JobResumed
            | JobEvent::JobPaused { .. }
            | JobEvent::JobCancelled { .. }
            | JobEvent::JobCompleted { .. }
            | JobEvent::JobFailed { .. } => {
                lifecycle::apply_status(event, &mut job.status, &mut job.result);
            }
            JobEvent::LeaseAcquired { .. } | JobEvent::LeaseReleased { .. } => {
                lifecycle::apply_lease(
                    event,
                    lifecycle::LeaseRecord {
                        owner: &mut job.lease_owner,
                        epoch: &mut job.lease_epoch,
                        local_run: &mut job.lease_owner_local_run,
                    },
                );
            }
            JobEvent::MessageSent { .. } => job.messages_sent += 1,
            JobEvent::InputsQueued { counts } => {
                job.messages_sent += counts.values().map(|n| u64::from(*n)).sum::<u64>()
            }
            JobEvent::AgentStepped(step) => {
                job.steps_finished += 1;
                for emit in &step.emits {
                    job.messages_sent += emit.to.len() as u64;
                    job.dead_letters += u64::from(emit.dead.is_some());
                }
            }
            JobEvent::AgentStepFinished { .. } => job.steps_finished += 1,
            JobEvent::AgentStepFailed { .. } => job.steps_failed += 1,
            JobEvent::DeadLettered { .. } => job.dead_letters += 1,
            JobEvent::ReliabilityResolved { reliability } => {
                job.reliability = Some(reliability.clone())
            }
            JobEvent::JobPlanned { plan, .. } => {
                job.scheduler = Some(plan.clone());
                job.placement_blocked = None;
            }
            JobEvent::JobPlacementBlocked { reason, .. } => {
                job.placement_blocked = Some(reason.clone())
            }
            JobEvent::ServiceRegistered { instance } => {
                record::registered(&mut job.services, instance)
            }
            JobEvent::ServiceDeregistered { service_id, .. } => {
                record::deregistered(&mut job.services, service_id)
            }
            JobEvent::ServiceHealthChanged {
                service_id, health, ..
            } => {
                let at = job.updated_at_ms;
                record::health_changed(&mut job.services, service_id, health, at)
            }
            JobEvent::AgentsReplaced {
                nodes,
                bundle,
                deployment,
            } => job.deployment.replaced(nodes, bundle, deployment),
            JobEvent::AgentsPromoted { version } => job.deployment.promoted(*version),
            JobEvent::AgentStepStarted { .. }
            | JobEvent::AgentEventRecorded { .. }
            | JobEvent::AgentRestartScheduled { .. }
            | JobEvent::AgentRescheduleScheduled { .. } => {}
        }
    }
}

fn apply_agent(row: &mut AgentView, env: &EventEnvelope) {
    match &env.payload {
        JobEvent::MessageSent { .. } => row.queued += 1,
        JobEvent::AgentStepStarted {
            message_id, node, ..
        } => {
            row.node = node.clone();
            // A retry of a message already in flight does not come off the queue again.
            if !row.inflight_ids().contains(message_id) {
                row.queued = row.queued.saturating_sub(1);
                row.inflight_message_ids.push(message_id.clone());
                row.inflight_message_id = row.inflight_message_ids.first().cloned();
            }
        }
        JobEvent::AgentStepFinished { message_id, .. } => {
            row.land(message_id);
            row.processed += 1;
            row.last_error = None;
        }
        JobEvent::AgentStepFailed {
            message_id,
            error,
            will_retry,
            ..
        } => {
            row.failed_attempts += 1;
            row.last_error = Some(error.clone());
            if !will_retry {
                row.land(message_id);
            }
        }
        JobEvent::AgentRestartScheduled { eligible_at_ms, .. } => {
            row.restarts += 1;
            row.next_attempt_at_ms = Some(*eligible_at_ms);
        }
        JobEvent::AgentRescheduleScheduled { eligible_at_ms, .. } => {
            row.reschedules += 1;
            row.next_attempt_at_ms = Some(*eligible_at_ms);
        }
        _ => {}
    }
    if matches!(env.payload, JobEvent::AgentStepStarted { .. }) {
        row.next_attempt_at_ms = None;
    }
    row.refresh_status();
}

impl AgentView {
    /// The messages in flight (a view stored before the list existed has only the one id).
    fn inflight_ids(&mut self) -> &Vec<String> {
        if self.inflight_message_ids.is_empty()
            && let Some(id) = &self.inflight_message_id
        {
            self.inflight_message_ids.push(id.clone());
        }
        &self.inflight_message_ids
    }

    /// Takes `message_id` out of flight; returns whether it was in flight.
    fn land(&mut self, message_id: &str) -> bool {
        self.inflight_ids();
        let before = self.inflight_message_ids.len();
        self.inflight_message_ids.retain(|id| id != message_id);
        self.inflight_message_id = self.inflight_message_ids.first().cloned();
        self.inflight_message_ids.len() < before
    }

    /// The status word follows from the counts: running, queued, error or idle.
    fn refresh_status(&mut self) {
        self.status = if self.inflight_message_id.is_some() {
            "running"
        } else if self.queued > 0 {
            "queued"
        } else if self.last_error.is_some() {
            "error"
        } else {
            "idle"
        }
        .to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::SCHEMA_VERSION;

    fn env(seq: u64, payload: JobEvent) -> EventEnvelope {
        EventEnvelope {
            event_id: format!("e{seq}"),
            job_id: "j".into(),
            seq,
            event_type: payload.type_name().into(),
            schema_version: SCHEMA_VERSION,
            timestamp_ms: 10,
            epoch: 1,
            causation_id: None,
            correlation_id: None,
            payload,
        }
    }

    #[test]
    fn the_view_shows_the_plan_and_why_placement_is_blocked_until_planned() {
        let mut p = JobProjection::default();
        p.apply(&env(
            1,
            JobEvent::JobPlacementBlocked {
                reason: "agent w needs 1 gpu".into(),
                agent_id: None,
            },
        ));
        assert_eq!(
            p.job.placement_blocked.as_deref(),
            Some("agent w needs 1 gpu")
        );
        let plan = serde_json::json!({"status": "planned", "placements": []});
        p.apply(&env(
            2,
            JobEvent::JobPlanned {
                plan: plan.clone(),
                reason: None,
            },
        ));
        assert_eq!(p.job.scheduler, Some(plan));
        assert_eq!(p.job.placement_blocked, None);
        assert_eq!(p.job.last_event.as_deref(), Some("job_planned"));
    }
}
