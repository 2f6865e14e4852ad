//! `evolve(state, event) -> state`: how each fact changes the job. Total and pure: it never
//! fails, so a history that was accepted once can always be folded again.

use super::lifecycle;
use super::state::{InFlight, JobState};
use crate::domain::agents::{self, Builtin};
use crate::domain::event::{EventEnvelope, JobEvent, StepRecord};
use crate::domain::message::Message;
use crate::domain::service::record;

/// Applies one stored event. Events at or below `state.seq` are ignored (idempotent replay).
pub fn evolve(mut state: JobState, envelope: &EventEnvelope) -> JobState {
    if envelope.seq != 0 && envelope.seq <= state.seq {
        return state;
    }
    state.seq = envelope.seq.max(state.seq);
    if state.job_id.is_empty() {
        state.job_id = envelope.job_id.clone();
    }
    state.updated_at_ms = envelope.timestamp_ms;
    apply(&mut state, &envelope.payload);
    state
}

/// Folds a whole history from scratch.
pub fn fold<'a>(job_id: &str, events: impl IntoIterator<Item = &'a EventEnvelope>) -> JobState {
    events.into_iter().fold(JobState::new(job_id), evolve)
}

fn apply(state: &mut JobState, event: &JobEvent) {
    match event {
        JobEvent::JobSubmitted(s) => {
            state.status = Some(super::JobStatus::Pending);
            state.graph_id = s.graph_id.clone();
            state.job_name = s.job_name.clone();
            state.graph = crate::domain::manifest::Manifest::from_normalised(&s.manifest).ok();
            state.bundle_path = s.bundle_path.clone();
            state.bundle_digest = s.bundle_digest.clone();
            state.submitted_at_ms = s.submitted_at_ms;
            state.deployment.job = s.deployment.clone();
        }
        JobEvent::JobStarted
        | JobEvent::JobResumed
        | JobEvent::JobPaused { .. }
        | JobEvent::JobCancelled { .. }
        | JobEvent::JobCompleted { .. }
        | JobEvent::JobFailed { .. } => {
            lifecycle::apply_status(event, &mut state.status, &mut state.result);
        }
        JobEvent::LeaseAcquired { .. } | JobEvent::LeaseReleased { .. } => {
            lifecycle::apply_lease(
                event,
                lifecycle::LeaseRecord {
                    owner: &mut state.lease_owner,
                    epoch: &mut state.lease_epoch,
                    local_run: &mut state.lease_owner_local_run,
                },
            );
        }
        JobEvent::ReliabilityResolved { reliability } => {
            state.reliability = Some(reliability.clone())
        }
        JobEvent::JobPlanned { plan, .. } => {
            state.plan = serde_json::from_value(plan.clone()).ok();
            state.scheduler = Some(plan.clone());
            state.placement_blocked = None;
        }
        JobEvent::JobPlacementBlocked { reason, .. } => {
            state.placement_blocked = Some(reason.clone())
        }
        JobEvent::MessageSent { message } => deliver(state, message.clone()),
        JobEvent::InputsQueued { .. } => {
            // The inputs are the manifest's, rebuilt as the decider counted them.
            let seeds = state
                .graph
                .as_ref()
                .map(|m| super::seed_messages(&state.job_id, m, state.updated_at_ms))
                .unwrap_or_default();
            for message in super::copies::fan_out(state, seeds) {
                deliver(state, message);
            }
        }
        JobEvent::AgentStepped(step) => stepped(state, step),
        JobEvent::AgentStepStarted {
            agent_id,
            message_id,
            attempt,
            node,
        } => {
            let agent = state.agent_mut(agent_id);
            agent.eligible_at_ms = None;
            // A retry or a redo after a crash: the same message stays in flight, in its place.
            if let Some(f) = agent
                .inflight
                .iter_mut()
                .find(|f| &f.message.message_id == message_id)
            {
                f.attempt = *attempt;
                f.node.clone_from(node);
            } else if let Some(message) = agent
                .queue
                .iter()
                .position(|m| &m.message_id == message_id)
                .and_then(|p| agent.queue.remove(p))
            {
                agent.inflight.push(InFlight {
                    message,
                    attempt: *attempt,
                    node: node.clone(),
                });
            }
        }
        JobEvent::AgentStepFinished {
            agent_id,
            message_id,
            state: new_state,
        } => {
            let JobState { agents, graph, .. } = state;
            let agent = agents.entry(agent_id.clone()).or_default();
            let finished = agent.land(message_id);
            match (new_state, finished) {
                (Some(s), _) => agent.state = s.clone(),
                // A built-in agent: re-derive its state from the message it handled.
                (None, Some(f)) => {
                    let node = graph.as_ref().and_then(|m| m.node(agent_id));
                    if let Some((kind, node)) =
                        node.and_then(|n| Builtin::of(n.agent_type).map(|k| (k, n)))
                    {
                        agents::apply(kind, &node.config, &mut agent.state, &f.message);
                    }
                }
                (None, None) => {}
            }
            agent.processed += 1;
        }
        JobEvent::AgentStepFailed {
            agent_id,
            message_id,
            error,
            will_retry,
            ..
        } => {
            let agent = state.agent_mut(agent_id);
            agent.failed_attempts += 1;
            agent.last_error = Some(error.clone());
            if !will_retry {
                agent.land(message_id);
            }
        }
        JobEvent::AgentRestartScheduled {
            agent_id,
            eligible_at_ms,
            reason,
            ..
        } => {
            let at = state.updated_at_ms;
            let agent = state.agent_mut(agent_id);
            super::restart::remember(&mut agent.restarts, at, reason);
            agent.eligible_at_ms = Some(*eligible_at_ms);
        }
        JobEvent::AgentRescheduleScheduled {
            agent_id,
            eligible_at_ms,
            avoid_node,
            reason,
            ..
        } => {
            let at = state.updated_at_ms;
            let agent = state.agent_mut(agent_id);
            super::restart::remember(&mut agent.reschedules, at, reason);
            agent.eligible_at_ms = Some(*eligible_at_ms);
            agent.avoid_node = avoid_node.clone();
        }
        JobEvent::DeadLettered {
            agent_id, reason, ..
        } => super::quiescence::remember_dead_letter(state, agent_id.as_deref(), reason),
        JobEvent::AgentEventRecorded { .. } => {}
        JobEvent::ServiceRegistered { instance } => {
            record::registered(&mut state.services, instance)
        }
        JobEvent::ServiceDeregistered { service_id, .. } => {
            record::deregistered(&mut state.services, service_id)
        }
        JobEvent::ServiceHealthChanged {
            service_id, health, ..
        } => {
            let at = state.updated_at_ms;
            record::health_changed(&mut state.services, service_id, health, at)
        }
        JobEvent::AgentsReplaced {
            nodes,
            bundle,
            deployment,
        } => super::deployment::apply_replaced(state, nodes, bundle, deployment),
        JobEvent::AgentsPromoted { version } => state.deployment.promoted(*version),
    }
}

/// Puts a message on its receiver's queue.
fn deliver(state: &mut JobState, message: Message) {
    super::copies::remember_input(state, &message);
    state.agent_mut(&message.to).queue.push_back(message);
}

/// One whole step: the agent takes its message (the one in flight, else its queue's head),
/// its state moves on, and every emit is delivered, rebuilt from the message it answers.
fn stepped(state: &mut JobState, step: &StepRecord) {
    let at_ms = state.updated_at_ms;
    let JobState { agents, graph, .. } = state;
    let agent = agents.entry(step.agent_id.clone()).or_default();
    let wanted = |m: &Message| {
        step.message_id
            .as_ref()
            .is_none_or(|id| &m.message_id == id)
    };
    // The message the step named, else the oldest in flight, else the queue's head.
    let flying = agent.inflight.iter().position(|f| wanted(&f.message));
    let taken = match flying {
        Some(p) => Some(agent.inflight.remove(p).message),
        None if agent.inflight.is_empty() && agent.queue.front().is_some_and(wanted) => {
            agent.queue.pop_front()
        }
        None => None,
    };
    agent.eligible_at_ms = None;
    agent.processed += 1;
    let Some(incoming) = taken else {
        // Not what the decider saw (it never writes this): keep the fold total.
        return;
    };
    match &step.state {
        Some(s) => agent.state = s.clone(),
        None => {
            let node = graph.as_ref().and_then(|m| m.node(&step.agent_id));
            if let Some((kind, node)) = node.and_then(|n| Builtin::of(n.agent_type).map(|k| (k, n)))
            {
                agents::apply(kind, &node.config, &mut agent.state, &incoming);
            }
        }
    }
    for (index, emit) in step.emits.iter().enumerate() {
        if let Some(reason) = &emit.dead {
            super::quiescence::remember_dead_letter(state, Some(&step.agent_id), reason);
        }
        for receiver in &emit.to {
            let message =
                super::step::delivered(&incoming, &step.agent_id, index, emit, receiver, at_ms);
            deliver(state, message);
        }
    }
}
