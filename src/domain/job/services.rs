//! The job's side of the service registry (core-spec 9.1): which service events a command
//! produces. The instances themselves are built by the runtime (templates need the node).

use super::state::JobState;
use crate::domain::event::JobEvent;
use crate::domain::service::{Health, ServiceRecord};

/// Why instances go when the job ends.
pub const JOB_ENDED: &str = "job_ended";

/// `service_registered` for each instance not registered as it is now.
pub(super) fn register(state: &JobState, instances: &[ServiceRecord]) -> Vec<JobEvent> {
    instances
        .iter()
        .filter(|i| {
            state.services.get(&i.id).is_none_or(|have| {
                have.node != i.node || have.service != i.service || have.agent_id != i.agent_id
            })
        })
        .map(|i| JobEvent::ServiceRegistered {
            instance: i.clone(),
        })
        .collect()
}

/// `service_deregistered` for each id still registered.
pub(super) fn deregister(state: &JobState, ids: &[String], reason: &str) -> Vec<JobEvent> {
    ids.iter()
        .filter_map(|id| state.services.get(id))
        .map(|r| JobEvent::ServiceDeregistered {
            service_id: r.id.clone(),
            service_name: r.service.name.clone(),
            reason: reason.to_string(),
        })
        .collect()
}

/// `service_health_changed` when the status moved; the same status records nothing (the
/// monitor re-checks every few seconds and the history keeps only changes).
pub(super) fn health(state: &JobState, service_id: &str, health: &Health) -> Vec<JobEvent> {
    match state.services.get(service_id) {
        Some(r) if r.status != health.status => vec![JobEvent::ServiceHealthChanged {
            service_id: r.id.clone(),
            service_name: r.service.name.clone(),
            status: health.status,
            previous_status: r.status,
            health: health.clone(),
        }],
        _ => Vec::new(),
    }
}

/// Puts the deregistration of every instance before a terminal event in `events`.
pub(super) fn deregister_on_end(state: &JobState, mut events: Vec<JobEvent>) -> Vec<JobEvent> {
    let Some(at) = events.iter().position(JobEvent::is_terminal) else {
        return events;
    };
    let ids: Vec<String> = state.services.keys().cloned().collect();
    let gone = deregister(state, &ids, JOB_ENDED);
    events.splice(at..at, gone);
    events
}
