//! The event envelope and every fact the runtime records about a job.
//!
//! Events are past-tense facts. They are encoded as MessagePack with field names kept
//! (`rmp_serde::to_vec_named`) so that adding an optional field stays readable by older
//! decoders; a breaking change bumps [`SCHEMA_VERSION`] and gets a migration.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::message::Message;

/// Version of the envelope and payload schema written by this build.
/// Decoders refuse (and dead-letter) events with a newer version.
pub const SCHEMA_VERSION: u16 = 1;

/// One stored event: identity, ordering, provenance and the fact itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Globally unique id (UUIDv7); a retried append carrying the same id is recognised.
    pub event_id: String,
    /// The job whose history this event belongs to.
    pub job_id: String,
    /// Position in the job's history: gapless, starting at 1.
    pub seq: u64,
    /// Name of the payload variant, duplicated here so tools can filter without decoding it.
    pub event_type: String,
    /// Schema version the writer used.
    pub schema_version: u16,
    /// Wall-clock time of the decision, milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    /// Lease epoch (fencing token) of the writer; 0 before any lease was taken.
    pub epoch: u64,
    /// Id of the command or event that caused this one.
    pub causation_id: Option<String>,
    /// Id that ties together everything done for one request or message chain.
    pub correlation_id: Option<String>,
    /// The fact.
    pub payload: JobEvent,
}

/// The facts of a job's life. Variants are named in the past tense.
// Events are built once and moved into an envelope; boxing the big variants would only make
// every match noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum JobEvent {
    /// A validated bundle was accepted; the job exists from here on.
    JobSubmitted(JobSubmitted),
    /// The owner started the agents and seeded the entrypoints.
    JobStarted,
    /// An operator paused the job; agents keep queueing messages but do not process them.
    JobPaused { reason: Option<String> },
    /// The job runs again; queued messages are processed.
    JobResumed,
    /// Terminal: stopped on request.
    JobCancelled { reason: String },
    /// Terminal: an agent completed the job.
    JobCompleted { result: Value },
    /// Terminal: unrecoverable error.
    JobFailed { result: Value },
    /// A runtime node became the job's owner with a new fencing epoch.
    LeaseAcquired { owner: String, epoch: u64 },
    /// The owner gave the job up (shutdown, terminal state).
    LeaseReleased { owner: String, epoch: u64 },
    /// The agent's failed step runs again after `delay_ms` (its restart policy allowed it;
    /// `deferred` when the policy's window was full and the restart waits for it to free).
    AgentRestartScheduled {
        agent_id: String,
        message_id: String,
        attempt: u32,
        delay_ms: u64,
        eligible_at_ms: i64,
        reason: String,
        deferred: bool,
        policy: Value,
    },
    /// Restarts are spent; the step moves to another node (not `avoid_node`) after `delay_ms`.
    AgentRescheduleScheduled {
        agent_id: String,
        message_id: String,
        attempt: u32,
        delay_ms: u64,
        eligible_at_ms: i64,
        avoid_node: Option<String>,
        reason: String,
    },
    /// The recovery policy the job gets on this cluster (core-spec 6.8), resolved when an
    /// owner starts it: requested and effective policy and what was observed.
    ReliabilityResolved { reliability: Value },
    /// Where the job's executors run (core-spec 7.6): the scheduler's plan, persisted whole.
    /// Recorded when an owner starts the job on a cluster, and again (whole, merged) when an
    /// agent is re-placed because its planned node went away; `reason` says why then.
    JobPlanned {
        plan: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Nothing in the cluster can take the job (or one re-placed agent) now; the explanation
    /// names the requirement and the closest node. The job waits and planning is retried.
    JobPlacementBlocked {
        reason: String,
        /// The agent being re-placed; `None` when the whole job could not be planned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
    },
    /// A message was put on an agent's queue.
    MessageSent { message: Message },
    /// An agent took the next message off its queue; the message is now in flight.
    AgentStepStarted {
        agent_id: String,
        message_id: String,
        attempt: u32,
        /// The node the step was placed on (executor work); `None` when it runs in the owner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// An agent finished a message. `state` is its local state afterwards when the agent
    /// carries state explicitly (executors, modules); `None` for built-ins, whose state
    /// replay re-derives from the message (so events stay small however much they collect).
    AgentStepFinished {
        agent_id: String,
        message_id: String,
        state: Option<Value>,
    },
    /// An agent's step failed; `will_retry` says whether the message stays in flight.
    AgentStepFailed {
        agent_id: String,
        message_id: String,
        attempt: u32,
        error: Value,
        will_retry: bool,
    },
    /// An agent reported something worth keeping (e.g. `aggregator_received`).
    AgentEventRecorded {
        agent_id: String,
        name: String,
        payload: Value,
    },
    /// A message that could not be delivered or routed, kept with its reason.
    DeadLettered {
        agent_id: Option<String>,
        reason: String,
        message: Value,
    },
}

/// Payload of [`JobEvent::JobSubmitted`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSubmitted {
    pub graph_id: String,
    pub job_name: String,
    /// The normalised manifest, kept whole so the job can be rebuilt from history alone.
    pub manifest: Value,
    /// Where the bundle lives on the submitting machine (payload scripts are read from there).
    pub bundle_path: Option<String>,
    pub submitted_at_ms: i64,
    /// Content address of the payloads archived in Redis, so any node can run the steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_digest: Option<String>,
}

impl JobEvent {
    /// The stable snake_case name of the variant, as stored in the envelope and the feed.
    pub fn type_name(&self) -> &'static str {
        match self {
            JobEvent::JobSubmitted(_) => "job_submitted",
            JobEvent::JobStarted => "job_started",
            JobEvent::JobPaused { .. } => "job_paused",
            JobEvent::JobResumed => "job_resumed",
            JobEvent::JobCancelled { .. } => "job_cancelled",
            JobEvent::JobCompleted { .. } => "job_completed",
            JobEvent::JobFailed { .. } => "job_failed",
            JobEvent::LeaseAcquired { .. } => "lease_acquired",
            JobEvent::LeaseReleased { .. } => "lease_released",
            JobEvent::ReliabilityResolved { .. } => "reliability_resolved",
            JobEvent::AgentRestartScheduled { .. } => "agent_restart_scheduled",
            JobEvent::AgentRescheduleScheduled { .. } => "agent_reschedule_scheduled",
            JobEvent::JobPlanned { .. } => "job_planned",
            JobEvent::JobPlacementBlocked { .. } => "job_placement_blocked",
            JobEvent::MessageSent { .. } => "message_sent",
            JobEvent::AgentStepStarted { .. } => "agent_step_started",
            JobEvent::AgentStepFinished { .. } => "agent_step_finished",
            JobEvent::AgentStepFailed { .. } => "agent_step_failed",
            JobEvent::AgentEventRecorded { .. } => "agent_event_recorded",
            JobEvent::DeadLettered { .. } => "dead_lettered",
        }
    }

    /// True for the three events after which nothing else may be appended.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobEvent::JobCancelled { .. }
                | JobEvent::JobCompleted { .. }
                | JobEvent::JobFailed { .. }
        )
    }
}

/// Why bytes read from a stream could not become an [`EventEnvelope`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid envelope (corrupt, truncated or foreign).
    #[error("corrupt event: {0}")]
    Corrupt(String),
    /// Written by a newer build; this one must not guess at its meaning.
    #[error("event schema version {found} is newer than supported version {supported}")]
    UnknownVersion { found: u16, supported: u16 },
}

/// Encodes an envelope as named-field MessagePack.
pub fn encode(envelope: &EventEnvelope) -> Vec<u8> {
    // Serialising plain data with string keys cannot fail; an error here is a bug in a type above.
    rmp_serde::to_vec_named(envelope).expect("event envelopes always serialise")
}

/// Decodes an envelope, checking the schema version before trusting the payload.
pub fn decode(bytes: &[u8]) -> Result<EventEnvelope, DecodeError> {
    #[derive(Deserialize)]
    struct VersionProbe {
        schema_version: u16,
    }
    let probe: VersionProbe =
        rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if probe.schema_version > SCHEMA_VERSION {
        return Err(DecodeError::UnknownVersion {
            found: probe.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Corrupt(e.to_string()))
}

/// Decodes an entry as stored in a job's stream: the stream key says the job and the entry id
/// the seq, so the stored bytes need not repeat them. Use this (not [`decode`]) for anything
/// read from a history, an archive or a history page sent over gRPC.
pub fn decode_stored(job_id: &str, seq: u64, bytes: &[u8]) -> Result<EventEnvelope, DecodeError> {
    let mut env = decode(bytes)?;
    if env.job_id.is_empty() {
        env.job_id = job_id.to_string();
    }
    if env.seq == 0 {
        env.seq = seq;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: JobEvent) -> EventEnvelope {
        EventEnvelope {
            event_id: "e1".into(),
            job_id: "j".into(),
            seq: 1,
            event_type: payload.type_name().into(),
            schema_version: SCHEMA_VERSION,
            timestamp_ms: 5,
            epoch: 0,
            causation_id: None,
            correlation_id: Some("c".into()),
            payload,
        }
    }

    #[test]
    fn round_trips_every_shape() {
        let events = vec![
            JobEvent::JobStarted,
            JobEvent::JobCompleted {
                result: serde_json::json!({"a": [1, 2.5, null, "x"]}),
            },
            JobEvent::JobPaused { reason: None },
            // Optional fields left out on the wire must decode to `None`.
            JobEvent::JobPlanned {
                plan: serde_json::json!({"status": "planned", "placements": []}),
                reason: None,
            },
            JobEvent::JobPlanned {
                plan: Value::Null,
                reason: Some("node b lost".into()),
            },
            JobEvent::JobPlacementBlocked {
                reason: "agent w needs 1 gpu".into(),
                agent_id: None,
            },
            JobEvent::JobPlacementBlocked {
                reason: "x".into(),
                agent_id: Some("w".into()),
            },
            JobEvent::AgentStepFailed {
                agent_id: "a".into(),
                message_id: "m".into(),
                attempt: 2,
                error: Value::Null,
                will_retry: true,
            },
        ];
        for event in events {
            let env = sample(event);
            assert_eq!(decode(&encode(&env)).unwrap(), env);
        }
    }

    #[test]
    fn newer_schema_is_refused_not_guessed() {
        let mut env = sample(JobEvent::JobStarted);
        env.schema_version = SCHEMA_VERSION + 1;
        match decode(&encode(&env)) {
            Err(DecodeError::UnknownVersion { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
            other => panic!("expected UnknownVersion, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(
            decode(b"\xc1\xff not msgpack"),
            Err(DecodeError::Corrupt(_))
        ));
    }
}
