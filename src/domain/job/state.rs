//! The decider's state: everything about a job that decisions depend on, folded from history.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::status::JobStatus;
use crate::domain::manifest::Manifest;
use crate::domain::message::Message;
use crate::domain::scheduler::Plan;

/// A job's state as of `seq`. `status == None` means the job has no history yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub job_id: String,
    /// Last applied sequence number (the stream version a writer must expect).
    pub seq: u64,
    pub status: Option<JobStatus>,
    pub graph_id: String,
    pub job_name: String,
    /// The manifest of `job_submitted`, parsed (routing needs it); `None` if it cannot be
    /// read. Only the parsed form is kept: a manifest with 10,000 inputs held twice costs
    /// megabytes per job.
    #[serde(skip)]
    pub graph: Option<Manifest>,
    pub bundle_path: Option<String>,
    /// Payloads archived in Redis under this digest.
    #[serde(default)]
    pub bundle_digest: Option<String>,
    pub submitted_at_ms: i64,
    pub updated_at_ms: i64,
    pub result: Option<Value>,
    /// Current lease holder and its epoch, as recorded by `LeaseAcquired`.
    pub lease_owner: Option<String>,
    pub lease_epoch: u64,
    /// `lease_owner` is an in-process run of the CLI (see `JobEvent::LeaseAcquired`).
    #[serde(default)]
    pub lease_owner_local_run: bool,
    /// The recovery policy resolved when the job started (`ReliabilityResolved`).
    pub reliability: Option<Value>,
    /// The scheduler's plan as last recorded (`JobPlanned`); `None` until planned.
    #[serde(default)]
    pub scheduler: Option<Value>,
    /// `scheduler` read as a [`Plan`]; `None` when absent or unreadable.
    #[serde(skip)]
    pub plan: Option<Plan>,
    /// Why the job cannot be placed now (`JobPlacementBlocked`); cleared by the next plan.
    #[serde(default)]
    pub placement_blocked: Option<String>,
    /// Per-node jobs: the first message each copied agent was given (as addressed to the
    /// agent), so a copy added when a node joins gets the same input as its siblings.
    #[serde(default)]
    pub copy_inputs: BTreeMap<String, crate::domain::message::Message>,
    /// Messages that could not be delivered, and the first few of them (to explain why a
    /// batch job that can no longer move failed).
    #[serde(default)]
    pub dead_letters: u64,
    #[serde(default)]
    pub dead_letter_samples: Vec<super::DeadLetterSample>,
    /// Per-agent runtime state: queues, the message in flight, local state.
    pub agents: BTreeMap<String, AgentRuntime>,
    /// Registered service instances by id (core-spec 9.1): what the job must deregister
    /// when it ends, and what the monitor of each node checks.
    #[serde(default)]
    pub services: crate::domain::service::record::Registry,
    /// The deployment version and role of the job and of agents replaced in place.
    #[serde(default)]
    pub deployment: super::DeploymentRecord,
}

/// What the runtime keeps for one agent between steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentRuntime {
    /// Messages delivered and not yet taken (FIFO).
    pub queue: VecDeque<Message>,
    /// The messages being processed, oldest first, each with its attempt number; redone
    /// after a crash. At most one unless the executor sets `config.concurrency`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub inflight: Vec<InFlight>,
    /// The agent's own state (aggregator bodies, executor `next_state`, counters).
    pub state: Value,
    pub processed: u64,
    pub failed_attempts: u64,
    pub last_error: Option<Value>,
    /// Restarts scheduled under the restart policy (its sliding window).
    #[serde(default)]
    pub restarts: Vec<crate::domain::policy::Attempt>,
    /// Reschedules scheduled under the reschedule policy.
    #[serde(default)]
    pub reschedules: Vec<crate::domain::policy::Attempt>,
    /// A restart or reschedule waits until then before the step runs again.
    #[serde(default)]
    pub eligible_at_ms: Option<i64>,
    /// A rescheduled step must run somewhere else than here.
    #[serde(default)]
    pub avoid_node: Option<String>,
}

/// A message an agent has started and not finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub message: Message,
    pub attempt: u32,
    /// Where the attempt runs, when it was placed on a node.
    #[serde(default)]
    pub node: Option<String>,
}

impl AgentRuntime {
    /// The message `message_id` if it is in flight.
    pub fn in_flight(&self, message_id: &str) -> Option<&InFlight> {
        self.inflight
            .iter()
            .find(|f| f.message.message_id == message_id)
    }

    /// Takes `message_id` out of flight, if it was.
    pub fn land(&mut self, message_id: &str) -> Option<InFlight> {
        let pos = self
            .inflight
            .iter()
            .position(|f| f.message.message_id == message_id)?;
        Some(self.inflight.remove(pos))
    }

    /// Nothing queued, in flight or waiting for a restart.
    pub fn is_quiet(&self) -> bool {
        self.queue.is_empty() && self.inflight.is_empty() && self.eligible_at_ms.is_none()
    }
}

/// States written before per-agent concurrency hold one message in flight (or null).
fn one_or_many<'de, D>(de: D) -> Result<Vec<InFlight>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<InFlight>),
        One(Box<InFlight>),
    }
    Ok(match Option::<OneOrMany>::deserialize(de)? {
        None => vec![],
        Some(OneOrMany::One(f)) => vec![*f],
        Some(OneOrMany::Many(v)) => v,
    })
}

impl JobState {
    /// An empty state for a job id (before any event).
    pub fn new(job_id: impl Into<String>) -> Self {
        JobState {
            job_id: job_id.into(),
            ..Default::default()
        }
    }

    /// True once the job reached completed, failed or cancelled.
    pub fn is_terminal(&self) -> bool {
        self.status.is_some_and(JobStatus::is_terminal)
    }

    /// The node the plan puts `agent_id` on.
    pub fn planned_node(&self, agent_id: &str) -> Option<&str> {
        self.plan.as_ref().and_then(|p| {
            p.allocations
                .iter()
                .find(|a| a.agent_id == agent_id)
                .map(|a| a.node.as_str())
        })
    }

    /// How many messages `agent_id` may have in flight: its executor's `config.concurrency`
    /// (per-node copies share their agent's), else one.
    pub fn concurrency(&self, agent_id: &str) -> usize {
        self.graph
            .as_ref()
            .and_then(|m| m.node(super::copies::source_of(agent_id)))
            .map_or(1, |n| n.concurrency.limit.max(1) as usize)
    }

    /// The runtime entry for an agent, created on first use.
    pub fn agent_mut(&mut self, agent_id: &str) -> &mut AgentRuntime {
        self.agents.entry(agent_id.to_string()).or_default()
    }
}
