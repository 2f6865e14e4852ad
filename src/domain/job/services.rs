//! The job's side of the service registry (core-spec 9.1): which service events a command
//! produces. The instances themselves are built by the runtime (templates need the node).

use super::state::JobState;
use crate::domain::event::JobEvent;
use crate::domain::service::{Health, ServiceRecord};

/// Why instances go when the job ends.
pub const JOB_ENDED: &str = "job_ended";

/// Why an instance was deregistered before its agent's new registration.
pub const MOVED: &str = "agent_moved";

/// `service_registered` for each instance not registered as it is now; an instance that
/// moved to another node is deregistered from the old one first.
pub(super) fn register(state: &JobState, instances: &[ServiceRecord]) -> Vec<JobEvent> {
    let mut events = Vec::new();
    for i in instances {
        match state.services.get(&i.id) {
            Some(have)
                if have.node == i.node
                    && have.service == i.service
                    && have.agent_id == i.agent_id
                    && have.deployment_version == i.deployment_version
                    && have.deployment_role == i.deployment_role => {}
            Some(have) => {
                if have.node != i.node {
                    events.push(JobEvent::ServiceDeregistered {
                        service_id: have.id.clone(),
                        service_name: have.service.name.clone(),
                        reason: MOVED.into(),
                    });
                }
                events.push(JobEvent::ServiceRegistered {
                    instance: i.clone(),
                });
            }
            None => events.push(JobEvent::ServiceRegistered {
                instance: i.clone(),
            }),
        }
    }
    events
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
