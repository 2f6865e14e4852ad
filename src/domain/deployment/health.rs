//! Whether a rollout's active batch is healthy, judged from the job's views: the new
//! version must be in place (the job started, or the agents replaced), the job running, and
//! then either the service checks of the new version's instances all passing
//! (`health_check: checks`, when the batch's agents declare services) or its agents free of
//! errors and pending restarts since the batch started (`agent_states`, and the fallback).

use super::next::HealthProbe;
use crate::domain::job::{JobStatus, source_of};
use crate::domain::manifest::Manifest;
use crate::domain::policy::HealthCheck;
use crate::domain::service::HealthStatus;
use crate::domain::view::{AgentView, JobView};

/// `Ok` when healthy, else why not (shown in the deployment's events and view).
pub fn batch_health(
    probe: &HealthProbe,
    job: Option<&JobView>,
    agents: &[AgentView],
    target: Option<&Manifest>,
) -> Result<(), String> {
    let id = &probe.job_id;
    let Some(job) = job else {
        return Err(format!("job {id} has not started yet"));
    };
    match job.status {
        Some(JobStatus::Running) => {}
        // A batch job deployed for the first time is healthy once it ran to the end.
        Some(JobStatus::Completed) if probe.whole_job => return Ok(()),
        Some(s) if s.is_terminal() => {
            let why = job
                .result
                .as_ref()
                .and_then(|r| r.get("error"))
                .and_then(|e| e.as_str())
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(format!("job {id} is {}{why}", s.as_str()));
        }
        Some(s) => return Err(format!("job {id} is {}", s.as_str())),
        None => return Err(format!("job {id} has not started yet")),
    }
    in_place(probe, job)?;
    let in_batch = |agent: &str| probe.whole_job || probe.agents.iter().any(|a| a == agent);
    let declares_services = target.is_some_and(|m| {
        (probe.whole_job && !m.services.is_empty())
            || m.nodes
                .iter()
                .any(|n| in_batch(&n.node_id) && !n.services.is_empty())
    });
    if probe.mode == HealthCheck::Checks && declares_services {
        return checks(probe, job, &in_batch);
    }
    agent_states(probe, agents, &in_batch)
}

/// The job runs the probe's version where the batch needs it.
fn in_place(probe: &HealthProbe, job: &JobView) -> Result<(), String> {
    let record = &job.deployment;
    let placed = if probe.whole_job {
        record
            .job
            .as_ref()
            .is_some_and(|d| d.version == probe.version)
    } else {
        probe.agents.iter().all(|a| {
            record
                .agents
                .get(a)
                .is_some_and(|d| d.version == probe.version)
        })
    };
    if placed {
        Ok(())
    } else {
        Err(format!(
            "version {} is not in place in job {} yet",
            probe.version, probe.job_id
        ))
    }
}

fn checks(
    probe: &HealthProbe,
    job: &JobView,
    in_batch: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let version = probe.version.to_string();
    let mut seen = 0;
    for r in job.services.values() {
        let ours = r.deployment_version.as_deref() == Some(version.as_str())
            && match r.source_agent_id.as_deref().or(r.agent_id.as_deref()) {
                Some(agent) => in_batch(source_of(agent)),
                None => probe.whole_job,
            };
        if !ours {
            continue;
        }
        seen += 1;
        if r.status != HealthStatus::Passing {
            let output = r
                .health
                .as_ref()
                .and_then(|h| h.checks.iter().find_map(|c| c.error.as_deref()))
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            return Err(format!(
                "service {} ({}) is {}{output}",
                r.service.name,
                r.id,
                r.status.as_str()
            ));
        }
    }
    if seen == 0 {
        return Err(format!(
            "no service instance of version {version} is registered yet"
        ));
    }
    Ok(())
}

fn agent_states(
    probe: &HealthProbe,
    agents: &[AgentView],
    in_batch: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    for a in agents.iter().filter(|a| in_batch(source_of(&a.agent_id))) {
        if a.status == "error" && a.updated_at_ms >= probe.started_at_ms {
            let error = a
                .last_error
                .as_ref()
                .map_or_else(String::new, |e| format!(": {e}"));
            return Err(format!("agent {} failed{error}", a.agent_id));
        }
        if a.next_attempt_at_ms.is_some() {
            return Err(format!("agent {} is waiting to restart", a.agent_id));
        }
    }
    Ok(())
}
