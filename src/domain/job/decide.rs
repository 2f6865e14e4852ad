//! `decide(state, command) -> events`: the job's rules. Pure: no I/O, no clock, no randomness.

use super::command::JobCommand;
use super::copies;
use super::error::DomainError;
use super::services;
use super::state::JobState;
use super::status::JobStatus;
use super::step;
use crate::domain::event::{JobEvent, JobSubmitted};

/// Decides which events a command produces against the current state, or refuses it.
/// An empty list means "already so" (e.g. resume a running job): nothing to append.
///
/// However the job ends, its service instances are deregistered in the same batch, before
/// the terminal event (nothing may follow that one).
pub fn decide(state: &JobState, command: &JobCommand) -> Result<Vec<JobEvent>, DomainError> {
    let events = decide_command(state, command)?;
    Ok(services::deregister_on_end(state, events))
}

fn decide_command(state: &JobState, command: &JobCommand) -> Result<Vec<JobEvent>, DomainError> {
    let Some(status) = state.status else {
        return match command {
            JobCommand::Submit {
                graph_id,
                job_name,
                manifest,
                bundle_path,
                bundle_digest,
                deployment,
                now_ms,
            } => Ok(vec![JobEvent::JobSubmitted(JobSubmitted {
                graph_id: graph_id.clone(),
                job_name: job_name.clone(),
                manifest: manifest.clone(),
                bundle_path: bundle_path.clone(),
                submitted_at_ms: *now_ms,
                bundle_digest: bundle_digest.clone(),
                deployment: deployment.clone(),
            })]),
            _ => Err(DomainError::NotFound),
        };
    };
    let wrong = |action| Err(DomainError::WrongStatus { action, status });
    match command {
        JobCommand::Submit { .. } => Err(DomainError::AlreadyExists),
        JobCommand::AcquireLease {
            owner,
            epoch,
            local_run,
        } => {
            if status.is_terminal() {
                return wrong("acquire the lease of");
            }
            if *epoch <= state.lease_epoch {
                return Err(DomainError::StaleLease {
                    offered: *epoch,
                    recorded: state.lease_epoch,
                });
            }
            Ok(vec![JobEvent::LeaseAcquired {
                owner: owner.clone(),
                epoch: *epoch,
                local_run: *local_run,
            }])
        }
        JobCommand::ReleaseLease { owner, reason } => {
            if state.lease_owner.as_deref() != Some(owner.as_str()) {
                return Ok(vec![]);
            }
            Ok(vec![JobEvent::LeaseReleased {
                owner: owner.clone(),
                epoch: state.lease_epoch,
                reason: reason.clone(),
            }])
        }
        JobCommand::Start => match status {
            JobStatus::Pending => {
                let mut events = vec![JobEvent::JobStarted];
                // The inputs are rebuilt from the manifest by the fold; the event says how
                // many each agent got, so views can count them without the manifest.
                let mut counts = std::collections::BTreeMap::<String, u32>::new();
                if let Some(m) = state.graph.as_ref() {
                    for (agent, n) in super::seeds::seed_counts(m) {
                        if n == 0 {
                            continue;
                        }
                        for receiver in copies::receivers(state, &agent) {
                            *counts.entry(receiver).or_default() += n;
                        }
                    }
                }
                if !counts.is_empty() {
                    events.push(JobEvent::InputsQueued { counts });
                }
                Ok(events)
            }
            _ => wrong("start"),
        },
        JobCommand::Pause { reason } => match status {
            JobStatus::Running => Ok(vec![JobEvent::JobPaused {
                reason: reason.clone(),
            }]),
            _ => wrong("pause"),
        },
        JobCommand::Resume => match status {
            JobStatus::Paused => Ok(vec![JobEvent::JobResumed]),
            JobStatus::Running => Ok(vec![]),
            _ => wrong("resume"),
        },
        JobCommand::Cancel { reason } => match status {
            s if s.is_terminal() => wrong("cancel"),
            _ => Ok(vec![JobEvent::JobCancelled {
                reason: reason.clone(),
            }]),
        },
        JobCommand::Complete { result } => match status {
            JobStatus::Running | JobStatus::Paused => Ok(vec![JobEvent::JobCompleted {
                result: result.clone(),
            }]),
            _ => wrong("complete"),
        },
        JobCommand::Fail { result } => match status {
            s if s.is_terminal() => wrong("fail"),
            _ => Ok(vec![JobEvent::JobFailed {
                result: result.clone(),
            }]),
        },
        JobCommand::BeginStep {
            agent_id,
            message_id,
            attempt,
            node,
        } => step::begin(state, agent_id, message_id, *attempt, node.clone()),
        JobCommand::RecordReliability { reliability } => {
            if state.status.is_none() {
                return Err(DomainError::NotFound);
            }
            if state.reliability.as_ref() == Some(reliability) {
                Ok(vec![])
            } else {
                Ok(vec![JobEvent::ReliabilityResolved {
                    reliability: reliability.clone(),
                }])
            }
        }
        JobCommand::RecordPlan { plan, reason } => {
            if status.is_terminal() {
                return wrong("plan");
            }
            if state.scheduler.as_ref() == Some(plan) {
                return Ok(vec![]);
            }
            let mut events = vec![JobEvent::JobPlanned {
                plan: plan.clone(),
                reason: reason.clone(),
            }];
            // A running per-node job that gains copies (a node joined) seeds them.
            if status != JobStatus::Pending
                && let (Some(manifest), Ok(new)) = (
                    state.graph.as_ref(),
                    serde_json::from_value::<crate::domain::scheduler::Plan>(plan.clone()),
                )
            {
                let seeds = super::seed_messages(&state.job_id, manifest, state.updated_at_ms);
                events.extend(copies::seeds_for_new_copies(state, &new, &seeds));
            }
            Ok(events)
        }
        JobCommand::RecordPlacementBlocked { reason, agent_id } => {
            if status.is_terminal() {
                return wrong("block the placement of");
            }
            // Once per blocked spell: the owner retries planning every few seconds and the
            // explanation drifts as load changes; the history keeps the first one.
            if state.placement_blocked.is_some() {
                return Ok(vec![]);
            }
            Ok(vec![JobEvent::JobPlacementBlocked {
                reason: reason.clone(),
                agent_id: agent_id.clone(),
            }])
        }
        JobCommand::FinishStep {
            agent_id,
            message_id,
            outcome,
        } => {
            let manifest = state
                .graph
                .as_ref()
                .ok_or(DomainError::UnreadableManifest)?;
            step::finish(state, manifest, agent_id, message_id, outcome)
        }
        JobCommand::FailStep {
            agent_id,
            message_id,
            attempt,
            error,
            will_retry,
            now_ms,
        } => step::fail(
            state,
            agent_id,
            message_id,
            *attempt,
            error,
            *will_retry,
            *now_ms,
        ),
        JobCommand::RegisterServices { instances } => {
            if status.is_terminal() {
                return wrong("register services of");
            }
            Ok(services::register(state, instances))
        }
        JobCommand::DeregisterServices { ids, reason } => {
            Ok(services::deregister(state, ids, reason))
        }
        JobCommand::RecordServiceHealth { service_id, health } => {
            if status.is_terminal() {
                return wrong("record service health of");
            }
            Ok(services::health(state, service_id, health))
        }
        JobCommand::ReplaceAgents {
            nodes,
            bundle,
            deployment,
        } => super::deployment::replace(state, nodes, bundle, deployment),
        JobCommand::PromoteAgents { version } => super::deployment::promote(state, *version),
    }
}
