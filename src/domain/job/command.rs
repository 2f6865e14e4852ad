//! Commands: what someone asks of a job. The decider turns them into events or refuses.

use serde_json::Value;

use super::JobDeployment;
use crate::domain::agents::StepOutcome;
use crate::domain::deployment::{BundleRef, Version};
use crate::domain::service::{Health, ServiceRecord};

/// A request to change a job. Time is an input (`now_ms`), never read from a clock here.
#[derive(Debug, Clone, PartialEq)]
pub enum JobCommand {
    /// Create the job from a validated, normalised manifest.
    Submit {
        graph_id: String,
        job_name: String,
        manifest: Value,
        bundle_path: Option<String>,
        /// Digest of the payloads archived in Redis (see `runtime::bundle_archive`).
        bundle_digest: Option<String>,
        /// The deployment starting the job, if one is.
        deployment: Option<JobDeployment>,
        now_ms: i64,
    },
    /// Record that `owner` now holds the job's lease at `epoch`; `local_run` when the owner is
    /// an in-process run of the CLI rather than a serving node.
    AcquireLease {
        owner: String,
        epoch: u64,
        local_run: bool,
    },
    /// Give the lease up, saying why.
    ReleaseLease {
        owner: String,
        reason: Option<String>,
    },
    /// Start the job: it becomes running and the manifest's initial inputs are queued.
    Start,
    /// Operator pause.
    Pause { reason: Option<String> },
    /// Operator resume.
    Resume,
    /// Operator cancel.
    Cancel { reason: String },
    /// An agent (or the runtime on its behalf) completes the job.
    Complete { result: Value },
    /// The job failed for good.
    Fail { result: Value },
    /// An agent takes a message (the head of its queue, or the one in flight on a redo).
    BeginStep {
        agent_id: String,
        message_id: String,
        attempt: u32,
        /// Where the step runs, when it is placed on a node.
        node: Option<String>,
    },
    /// Record the recovery policy resolved for this job.
    RecordReliability { reliability: Value },
    /// Record the scheduler's plan (whole; a re-placement sends the merged plan).
    RecordPlan { plan: Value, reason: Option<String> },
    /// Record that the job (or one agent being re-placed) cannot be placed now.
    RecordPlacementBlocked {
        reason: String,
        agent_id: Option<String>,
    },
    /// An agent finished a message with this outcome.
    FinishStep {
        agent_id: String,
        message_id: String,
        outcome: StepOutcome,
    },
    /// An agent's attempt at a message failed.
    FailStep {
        agent_id: String,
        message_id: String,
        attempt: u32,
        error: Value,
        /// The caller retries by itself; no policy decision is made.
        will_retry: bool,
        now_ms: i64,
    },
    /// Register service instances (already resolved); an instance registered the same way
    /// already is skipped, one whose node or declaration changed is registered again.
    RegisterServices { instances: Vec<ServiceRecord> },
    /// Deregister these instances (the ones still registered), saying why.
    DeregisterServices { ids: Vec<String>, reason: String },
    /// A node's monitor checked an instance; recorded only when its status changed.
    RecordServiceHealth { service_id: String, health: Health },
    /// A rolling or canary update replaces these agents (normalised node specs of the new
    /// version) in place; `bundle` holds the new version's payloads (those agents run them;
    /// the others keep the job's).
    ReplaceAgents {
        nodes: Vec<Value>,
        bundle: BundleRef,
        deployment: JobDeployment,
    },
    /// The deployment promoted `version`: its canaries and candidates become primary.
    PromoteAgents { version: Version },
}

impl JobCommand {
    /// Short imperative name, used in logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            JobCommand::Submit { .. } => "submit",
            JobCommand::AcquireLease { .. } => "acquire_lease",
            JobCommand::ReleaseLease { .. } => "release_lease",
            JobCommand::Start => "start",
            JobCommand::Pause { .. } => "pause",
            JobCommand::Resume => "resume",
            JobCommand::Cancel { .. } => "cancel",
            JobCommand::Complete { .. } => "complete",
            JobCommand::Fail { .. } => "fail",
            JobCommand::RecordReliability { .. } => "record_reliability",
            JobCommand::RecordPlan { .. } => "record_plan",
            JobCommand::RecordPlacementBlocked { .. } => "record_placement_blocked",
            JobCommand::BeginStep { .. } => "begin_step",
            JobCommand::FinishStep { .. } => "finish_step",
            JobCommand::FailStep { .. } => "fail_step",
            JobCommand::RegisterServices { .. } => "register_services",
            JobCommand::DeregisterServices { .. } => "deregister_services",
            JobCommand::RecordServiceHealth { .. } => "record_service_health",
            JobCommand::ReplaceAgents { .. } => "replace_agents",
            JobCommand::PromoteAgents { .. } => "promote_agents",
        }
    }
}
