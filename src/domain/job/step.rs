//! Deciding agent steps: taking a message off a queue, and turning a step's outcome into
//! events (routing each emitted message along the manifest's edges, or dead-lettering it).

use serde_json::{Map, Value, json};

use super::error::DomainError;
use super::state::JobState;
use super::status::JobStatus;
use crate::domain::agents::{Emit, StepOutcome};
use crate::domain::event::{Emitted, JobEvent, StepRecord};
use crate::domain::manifest::Manifest;
use crate::domain::message::Message;
use crate::domain::routing::{route, route_context};

/// `BeginStep`: the message at the head of the agent's queue (or the one already in flight,
/// for a redo after a crash) becomes in flight.
pub fn begin(
    state: &JobState,
    agent_id: &str,
    message_id: &str,
    attempt: u32,
    node: Option<String>,
) -> Result<Vec<JobEvent>, DomainError> {
    let status = state.status.ok_or(DomainError::NotFound)?;
    if status != JobStatus::Running {
        return Err(DomainError::WrongStatus {
            action: "start a step of",
            status,
        });
    }
    let agent = state
        .agents
        .get(agent_id)
        .ok_or_else(|| DomainError::UnknownAgent(agent_id.to_string()))?;
    // A message already in flight may begin again (a retry, a redo after a crash); a new
    // one must be the head of the queue, and only while the agent has room for another.
    let is_inflight = agent.in_flight(message_id).is_some();
    let is_head = agent.inflight.len() < state.concurrency(agent_id)
        && agent
            .queue
            .front()
            .is_some_and(|m| m.message_id == message_id);
    if !(is_inflight || is_head) {
        return Err(DomainError::NotInFlight {
            agent_id: agent_id.into(),
            message_id: message_id.into(),
        });
    }
    Ok(vec![JobEvent::AgentStepStarted {
        agent_id: agent_id.into(),
        message_id: message_id.into(),
        attempt,
        node,
    }])
}

fn inflight<'a>(
    state: &'a JobState,
    agent_id: &str,
    message_id: &str,
) -> Result<&'a Message, DomainError> {
    state
        .agents
        .get(agent_id)
        .and_then(|a| a.in_flight(message_id))
        .map(|f| &f.message)
        .ok_or_else(|| DomainError::NotInFlight {
            agent_id: agent_id.into(),
            message_id: message_id.into(),
        })
}

/// The message a step of `agent_id` takes: the one in flight (begun, for executors and
/// modules), else the head of the queue (a built-in step begins and ends in one event).
fn taken<'a>(
    state: &'a JobState,
    agent_id: &str,
    message_id: &str,
) -> Result<&'a Message, DomainError> {
    let agent = state.agents.get(agent_id);
    let next = agent.and_then(|a| match a.in_flight(message_id) {
        Some(f) => Some(&f.message),
        None if a.inflight.is_empty() => a.queue.front(),
        None => None,
    });
    next.filter(|m| m.message_id == message_id)
        .ok_or_else(|| DomainError::NotInFlight {
            agent_id: agent_id.into(),
            message_id: message_id.into(),
        })
}

/// `FinishStep`: one [`JobEvent::AgentStepped`] with the outcome and where each emit goes
/// (routed along the manifest's edges, or dead-lettered), then the completion if asked.
/// Allowed while running or paused (work in flight when a pause arrived still lands).
pub fn finish(
    state: &JobState,
    manifest: &Manifest,
    agent_id: &str,
    message_id: &str,
    outcome: &StepOutcome,
) -> Result<Vec<JobEvent>, DomainError> {
    let status = state.status.ok_or(DomainError::NotFound)?;
    if status.is_terminal() || status == JobStatus::Pending {
        return Err(DomainError::WrongStatus {
            action: "finish a step of",
            status,
        });
    }
    let incoming = taken(state, agent_id, message_id)?;
    let incoming_json = json!({
        "body": incoming.body, "headers": incoming.headers, "type": incoming.message_type,
        "class": incoming.class, "from": incoming.from, "to": incoming.to,
    });
    // Conditions see the agent's state: the new one when the step carries it, else the
    // state the built-in agent decided from.
    let null = Value::Null;
    let before = state.agents.get(agent_id).map_or(&null, |a| &a.state);
    let agent_state = outcome.state.as_ref().unwrap_or(before);
    let emits = outcome
        .emits
        .iter()
        .map(|emit| route_emit(state, manifest, &incoming_json, agent_state, agent_id, emit))
        .collect();
    // The record names its message only when the fold could not tell which one it is (the
    // oldest in flight, else the head of the queue): concurrent steps land in any order.
    let implied = state
        .agents
        .get(agent_id)
        .and_then(|a| match a.inflight.first() {
            Some(f) => Some(&f.message),
            None => a.queue.front(),
        });
    let named = implied.is_none_or(|m| m.message_id != message_id);
    let mut events = vec![JobEvent::AgentStepped(StepRecord {
        agent_id: agent_id.into(),
        message_id: named.then(|| message_id.to_string()),
        state: outcome.state.clone(),
        notes: outcome.events.clone(),
        emits,
    })];
    if let Some(output) = &outcome.complete {
        events.push(JobEvent::JobCompleted {
            result: json!({ "agent_id": agent_id, "output": output }),
        });
    }
    Ok(events)
}

/// `FailStep`: records a failed attempt; when it will not be retried the job fails with an
/// error envelope naming the agent.
pub fn fail(
    state: &JobState,
    agent_id: &str,
    message_id: &str,
    attempt: u32,
    error: &Value,
    will_retry: bool,
    now_ms: i64,
) -> Result<Vec<JobEvent>, DomainError> {
    let status = state.status.ok_or(DomainError::NotFound)?;
    if status.is_terminal() {
        return Err(DomainError::WrongStatus {
            action: "fail a step of",
            status,
        });
    }
    inflight(state, agent_id, message_id)?;
    let failed = |will_retry| JobEvent::AgentStepFailed {
        agent_id: agent_id.into(),
        message_id: message_id.into(),
        attempt,
        error: error.clone(),
        will_retry,
    };
    if will_retry {
        return Ok(vec![failed(true)]);
    }
    let agent = state
        .agents
        .get(agent_id)
        .ok_or_else(|| DomainError::UnknownAgent(agent_id.to_string()))?;
    let next = super::restart::after_failure(state, agent, agent_id, message_id, error, now_ms);
    // The message stays in flight while a restart or a reschedule is pending.
    let again = next.iter().any(|e| {
        matches!(
            e,
            JobEvent::AgentRestartScheduled { .. } | JobEvent::AgentRescheduleScheduled { .. }
        )
    });
    let mut events = vec![failed(again)];
    events.extend(next);
    Ok(events)
}

/// Routes one emit: the agents it goes to (each per-node copy of a copied agent), or why it
/// is a dead letter.
fn route_emit(
    state: &JobState,
    manifest: &Manifest,
    incoming_json: &Value,
    agent_state: &Value,
    from: &str,
    emit: &Emit,
) -> Emitted {
    let mut out = Emitted {
        message_type: emit.message_type.clone(),
        body: emit.body.clone(),
        to: vec![],
        dead: None,
        addressed: emit.to.clone(),
        class: emit.class.clone(),
        content_type: emit.content_type.clone(),
        headers: emit.headers.clone(),
        artifacts: emit.artifacts.clone(),
    };
    let targets: Vec<String> = match &emit.to {
        Some(to) if manifest.node(to).is_some() => vec![to.clone()],
        Some(to) => {
            out.dead = Some(format!("emit_to names unknown agent {to:?}"));
            return out;
        }
        None => {
            let ctx = route_context(incoming_json, &emit.body, agent_state);
            // A per-node copy (`work@node-a`) routes as its agent does.
            let source = super::copies::source_of(from);
            let decision = route(manifest, source, &emit.message_type, &ctx);
            if decision.targets.is_empty() {
                out.dead = Some(decision.no_match_reason().unwrap_or_else(|| {
                    format!(
                        "no edge from {from:?} for message type {:?}",
                        emit.message_type
                    )
                }));
                return out;
            }
            decision.targets.into_iter().map(|t| t.to_node).collect()
        }
    };
    out.to = targets
        .iter()
        .flat_map(|t| super::copies::receivers(state, t))
        .collect();
    out
}

/// The message a step's emit becomes for one receiver, rebuilt from the message the step
/// answered: it inherits correlation, class, content type and headers (the emit overrides
/// them), and gets a deterministic id, so the fold rebuilds exactly what was decided.
pub(super) fn delivered(
    incoming: &Message,
    from: &str,
    index: usize,
    emit: &Emitted,
    receiver: &str,
    now_ms: i64,
) -> Message {
    let mut headers: Map<String, Value> = incoming.headers.clone();
    headers.extend(emit.headers.clone());
    // A per-node copy's message is its agent's with the node appended (see `copies`).
    let (agent, node) = match receiver.split_once('@') {
        Some((agent, node)) => (agent, Some(node)),
        None => (receiver, None),
    };
    let base = derive_id(&incoming.message_id, from, index, agent);
    Message {
        message_id: node.map_or_else(|| base.clone(), |n| format!("{base}@{n}")),
        job_id: incoming.job_id.clone(),
        from: from.to_string(),
        to: receiver.to_string(),
        message_type: emit.message_type.clone(),
        class: emit.class.clone().unwrap_or_else(|| incoming.class.clone()),
        correlation_id: incoming
            .correlation_id
            .clone()
            .or_else(|| Some(incoming.message_id.clone())),
        causation_id: Some(incoming.message_id.clone()),
        content_type: emit
            .content_type
            .clone()
            .unwrap_or_else(|| incoming.content_type.clone()),
        content_encoding: incoming.content_encoding.clone(),
        headers,
        body: emit.body.clone(),
        artifacts: emit
            .artifacts
            .clone()
            .unwrap_or_else(|| incoming.artifacts.clone()),
        stream: incoming.stream.clone(),
        timestamp_ms: now_ms,
    }
}

/// FNV-1a over the causal path: short, stable, and unique per (parent, sender, emit, target).
fn derive_id(parent: &str, from: &str, index: usize, to: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parent
        .bytes()
        .chain([0])
        .chain(from.bytes())
        .chain([0])
        .chain(index.to_le_bytes())
        .chain(to.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("m{hash:016x}")
}
