//! The event envelope and every fact the runtime records about a job.
//!
//! Events are past-tense facts, encoded as MessagePack with field names kept
//! (`rmp_serde::to_vec_named`) so that adding an optional field stays readable by older
//! decoders; a breaking change bumps [`SCHEMA_VERSION`].
//!
//! Schema 2 (the lean history) stores only what nothing else says: the job id and the seq are
//! the stream key and the entry id, the type is the payload's tag, the event id is (job, seq)
//! (a batch's first entry keeps its append id for retry detection), and fields are one or two
//! letters with defaults left out. One built-in agent step is one [`JobEvent::AgentStepped`]
//! that names what was taken, the outcome and where each emit went; the messages themselves
//! are rebuilt by the fold from the message they answer, so a body is stored once. Schema 1
//! events still decode (the long field names are aliases) and fold as they always did: that is
//! the upcaster, and existing keyspaces keep working without a migration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::message::Message;
use super::service::{Health, HealthStatus, ServiceRecord};

/// Version of the envelope and payload schema written by this build.
/// Decoders refuse (and dead-letter) events with a newer version.
pub const SCHEMA_VERSION: u16 = 2;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One stored event: identity, ordering, provenance and the fact itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Identity of the event. Not stored (schema 2): a history entry's id is `<job>:<seq>`;
    /// the first event of a batch carries a fresh UUIDv7 in memory, which the append stores
    /// beside the entry so a retried batch is recognised.
    #[serde(default, skip_serializing)]
    pub event_id: String,
    /// The job whose history this event belongs to (the stream key; not stored).
    #[serde(default, skip_serializing)]
    pub job_id: String,
    /// Position in the job's history: gapless, starting at 1 (the entry id; not stored).
    #[serde(default, skip_serializing)]
    pub seq: u64,
    /// Name of the payload variant (the payload's tag; not stored twice).
    #[serde(default, skip_serializing)]
    pub event_type: String,
    /// Schema version the writer used.
    #[serde(rename = "v", alias = "schema_version")]
    pub schema_version: u16,
    /// Wall-clock time of the decision, milliseconds since the Unix epoch (UTC).
    #[serde(rename = "t", alias = "timestamp_ms")]
    pub timestamp_ms: i64,
    /// Lease epoch (fencing token) of the writer; 0 before any lease was taken.
    #[serde(
        rename = "e",
        alias = "epoch",
        default,
        skip_serializing_if = "is_zero"
    )]
    pub epoch: u64,
    /// Id of the command or event that caused this one.
    #[serde(
        rename = "c",
        alias = "causation_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub causation_id: Option<String>,
    /// Id that ties together everything done for one request or message chain.
    #[serde(
        rename = "r",
        alias = "correlation_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub correlation_id: Option<String>,
    /// The fact.
    #[serde(rename = "p", alias = "payload")]
    pub payload: JobEvent,
}

impl EventEnvelope {
    /// The envelope as one self-contained JSON object with the long field names (which
    /// decoding accepts as aliases): what exports and `job events --json` print. Unlike the
    /// stored form it says the job, seq, id and type, since it stands alone.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "event_id": self.event_id,
            "job_id": self.job_id,
            "seq": self.seq,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "timestamp_ms": self.timestamp_ms,
            "epoch": self.epoch,
            "causation_id": self.causation_id,
            "correlation_id": self.correlation_id,
            "payload": self.payload,
        })
    }
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
    LeaseAcquired {
        owner: String,
        epoch: u64,
        /// The owner is an in-process `run` (or `job recover`) of the CLI, not a serving node:
        /// once its lease lapses nothing comes back for the job, so any node may adopt it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        local_run: bool,
    },
    /// The owner gave the job up (shutdown, terminal state, an interrupted local run).
    LeaseReleased {
        owner: String,
        epoch: u64,
        /// Why, when the owner said (`local run interrupted`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
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
    /// The manifest's initial inputs were queued: how many went to each agent (per-node
    /// copies by their own id). The messages are rebuilt from the manifest by the fold
    /// (`seed_messages`, stamped with this event's time), so 10,000 inputs cost one event.
    InputsQueued { counts: BTreeMap<String, u32> },
    /// An agent took a message (the one in flight, else the head of its queue) and finished
    /// it: the outcome and where each emit went, in one event (schema 2).
    AgentStepped(StepRecord),
    /// A message was put on an agent's queue (schema 1 for every message; schema 2 only for
    /// the input a per-node copy gets when its node joins).
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
    /// Schema 1: an agent finished a message (schema 2 writes [`JobEvent::AgentStepped`]).
    /// `state` is its local state afterwards when the agent
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
    /// Schema 1: an agent reported something worth keeping (schema 2 keeps these as the
    /// step's `notes`).
    AgentEventRecorded {
        agent_id: String,
        name: String,
        payload: Value,
    },
    /// Schema 1: a message that could not be delivered or routed, kept with its reason
    /// (schema 2 keeps it in the step, as an emit with `dead` set).
    DeadLettered {
        agent_id: Option<String>,
        reason: String,
        message: Value,
    },
    /// A service instance the job provides was registered (core-spec 9.1): a job service
    /// when the job starts, an agent service when the agent starts on its node (again, with
    /// the new node, when it moves).
    ServiceRegistered { instance: ServiceRecord },
    /// The instance is gone: its agent stopped or moved, the job ended, its node was lost.
    ServiceDeregistered {
        service_id: String,
        service_name: String,
        reason: String,
    },
    /// The node hosting the instance saw its status change (appended only on a change).
    ServiceHealthChanged {
        service_id: String,
        service_name: String,
        status: HealthStatus,
        previous_status: HealthStatus,
        health: Health,
    },
    /// A rolling or canary update replaced these agents in place (normalised node specs of
    /// the new version); their next step runs the new spec, a step in flight is redone.
    AgentsReplaced {
        nodes: Vec<Value>,
        /// The new version's payloads, for these agents only.
        #[serde(default)]
        bundle: crate::domain::deployment::BundleRef,
        deployment: crate::domain::job::JobDeployment,
    },
    /// The deployment promoted `version`: its canary and candidate agents are primary now.
    AgentsPromoted {
        version: crate::domain::deployment::Version,
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
    /// The deployment that started the job (`None` for a plain submission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<crate::domain::job::JobDeployment>,
}

impl JobEvent {
    /// The fact's fields as people read them: what the payload's `data` holds, except that a
    /// whole step (stored with one-letter names) is spelled out.
    pub fn readable_data(&self) -> Value {
        if let JobEvent::AgentStepped(step) = self {
            return serde_json::json!({
                "agent_id": step.agent_id,
                "message_id": step.message_id,
                "state": step.state,
                "notes": step.notes.iter()
                    .map(|(name, payload)| serde_json::json!({"name": name, "payload": payload}))
                    .collect::<Vec<_>>(),
                "emits": step.emits.iter().map(|e| serde_json::json!({
                    "type": e.message_type,
                    "body": e.body,
                    "to": e.to,
                    "dead_letter_reason": e.dead,
                    "addressed_to": e.addressed,
                    "class": e.class,
                    "content_type": e.content_type,
                    "headers": e.headers,
                })).collect::<Vec<_>>(),
            });
        }
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("data").cloned())
            .unwrap_or(Value::Null)
    }
}

/// Payload of [`JobEvent::AgentStepped`]: one agent step, as small as it can be stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    #[serde(rename = "a")]
    pub agent_id: String,
    /// The message taken. Left out when it is the agent's message in flight or, with none in
    /// flight, the head of its queue (which is what the owner always takes).
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The agent's local state afterwards when it carries state explicitly (executors,
    /// modules); `None` for built-ins, whose state the fold re-derives from the message.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// Things the agent reported (`(name, payload)`, e.g. `aggregator_completed`).
    #[serde(rename = "n", default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<(String, Value)>,
    /// Each emit of the step, in order (its position is part of the derived message ids).
    #[serde(rename = "o", default, skip_serializing_if = "Vec::is_empty")]
    pub emits: Vec<Emitted>,
}

/// One emit of a step and where it went. The delivered messages are rebuilt by the fold
/// from the message the step answered (correlation, class, content type, headers inherited),
/// so only what differs is stored, and the body once however many agents receive it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Emitted {
    #[serde(rename = "t")]
    pub message_type: String,
    #[serde(rename = "b", default)]
    pub body: Value,
    /// Receiving agents (per-node copies by their own id); empty when dead-lettered.
    #[serde(rename = "to", default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Why the emit could not be delivered (it is a dead letter).
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub dead: Option<String>,
    /// The agent the emit named itself (`emit_to`), when it did.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub addressed: Option<String>,
    /// Overrides of what the message inherits.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(rename = "ct", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(rename = "h", default, skip_serializing_if = "Map::is_empty")]
    pub headers: Map<String, Value>,
    /// The files the delivered messages carry, when not the incoming message's.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<crate::domain::artifact::ArtifactRef>>,
}

impl Emitted {
    /// The dead letter's message as views and exports show it.
    pub fn dead_letter_message(&self) -> Value {
        serde_json::json!({ "type": self.message_type, "to": self.addressed, "body": self.body })
    }
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
            JobEvent::InputsQueued { .. } => "inputs_queued",
            JobEvent::AgentStepped(_) => "agent_stepped",
            JobEvent::MessageSent { .. } => "message_sent",
            JobEvent::AgentStepStarted { .. } => "agent_step_started",
            JobEvent::AgentStepFinished { .. } => "agent_step_finished",
            JobEvent::AgentStepFailed { .. } => "agent_step_failed",
            JobEvent::AgentEventRecorded { .. } => "agent_event_recorded",
            JobEvent::DeadLettered { .. } => "dead_lettered",
            JobEvent::ServiceRegistered { .. } => "service_registered",
            JobEvent::ServiceDeregistered { .. } => "service_deregistered",
            JobEvent::ServiceHealthChanged { .. } => "service_health_changed",
            JobEvent::AgentsReplaced { .. } => "agents_replaced",
            JobEvent::AgentsPromoted { .. } => "agents_promoted",
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

/// Decodes an envelope, checking the schema version before trusting the payload. Schema 1
/// envelopes (long field names, job id and seq inside) decode too.
pub fn decode(bytes: &[u8]) -> Result<EventEnvelope, DecodeError> {
    #[derive(Deserialize)]
    struct VersionProbe {
        #[serde(rename = "v", alias = "schema_version")]
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
    let mut env: EventEnvelope =
        rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    env.event_type = env.payload.type_name().to_string();
    Ok(env)
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
    if env.event_id.is_empty() {
        env.event_id = format!("{job_id}:{seq}");
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: JobEvent) -> EventEnvelope {
        EventEnvelope {
            event_id: "j:1".into(),
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
            JobEvent::InputsQueued {
                counts: [("dispatch".to_string(), 10_000)].into(),
            },
            JobEvent::AgentStepped(StepRecord {
                agent_id: "relay".into(),
                emits: vec![
                    Emitted {
                        message_type: "done".into(),
                        body: serde_json::json!({"i": 7}),
                        to: vec!["total".into()],
                        ..Default::default()
                    },
                    Emitted {
                        message_type: "lost".into(),
                        dead: Some("no edge".into()),
                        ..Default::default()
                    },
                ],
                notes: vec![(
                    "aggregator_completed".into(),
                    serde_json::json!({"count": 1}),
                )],
                ..Default::default()
            }),
        ];
        for event in events {
            let env = sample(event);
            assert_eq!(decode_stored("j", 1, &encode(&env)).unwrap(), env);
        }
    }

    /// A schema 1 envelope as the previous build wrote it: long names, everything inside.
    #[derive(Serialize)]
    struct V1Envelope {
        event_id: String,
        job_id: String,
        seq: u64,
        event_type: String,
        schema_version: u16,
        timestamp_ms: i64,
        epoch: u64,
        causation_id: Option<String>,
        correlation_id: Option<String>,
        payload: Value,
    }

    #[test]
    fn schema_1_envelopes_still_decode() {
        let v1 = V1Envelope {
            event_id: "0190-uuid".into(),
            job_id: "j".into(),
            seq: 3,
            event_type: "agent_step_finished".into(),
            schema_version: 1,
            timestamp_ms: 99,
            epoch: 4,
            causation_id: None,
            correlation_id: Some("corr".into()),
            payload: serde_json::json!({"type": "agent_step_finished",
                "data": {"agent_id": "a", "message_id": "m1", "state": null}}),
        };
        let bytes = rmp_serde::to_vec_named(&v1).unwrap();
        let env = decode_stored("j", 3, &bytes).unwrap();
        assert_eq!(env.event_id, "0190-uuid");
        assert_eq!((env.job_id.as_str(), env.seq, env.epoch), ("j", 3, 4));
        assert_eq!(env.schema_version, 1);
        assert_eq!(env.event_type, "agent_step_finished");
        assert_eq!(env.correlation_id.as_deref(), Some("corr"));
        assert_eq!(
            env.payload,
            JobEvent::AgentStepFinished {
                agent_id: "a".into(),
                message_id: "m1".into(),
                state: None
            }
        );
    }

    #[test]
    fn a_routed_step_is_small() {
        let env = sample(JobEvent::AgentStepped(StepRecord {
            agent_id: "relay".into(),
            emits: vec![Emitted {
                message_type: "done".into(),
                body: serde_json::json!({"i": 1234}),
                to: vec!["total".into()],
                ..Default::default()
            }],
            ..Default::default()
        }));
        let bytes = encode(&env);
        // Envelope, step and one delivered message; schema 1 spent ~400 bytes on each of the
        // three events this replaces.
        assert!(bytes.len() <= 80, "{} bytes", bytes.len());
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
