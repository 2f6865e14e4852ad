//! The job record JSON the published client reads (`GetJob.job_json`, list rows), built from
//! the read views only.

use serde_json::{Value, json};

use crate::domain::view::{AgentView, JobView};

/// A list row: what `mn job list` / `unfinished` read.
pub fn row(view: &JobView) -> Value {
    json!({
        "job_id": view.job_id,
        "graph_id": view.graph_id,
        "job_name": view.job_name,
        "job_type": view.job_type,
        "status": view.status.map(|s| s.as_str()),
        "submitted_at": view.submitted_at,
        "updated_at": view.updated_at.clone().or_else(|| view.submitted_at.clone()),
        "recovery_status": "normal",
        "recovery_requires_review": false,
    })
}

/// A row of the cluster overview (`GetSystemSummary`): the list row plus its dead letters.
pub fn summary_row(view: &JobView) -> Value {
    let mut v = row(view);
    v["dead_letters"] = json!(view.dead_letters);
    v
}

/// The full record: the row plus result, lease, counters and agents.
pub fn record(view: &JobView, agents: &[AgentView]) -> Value {
    let mut v = row(view);
    let extra = json!({
        "result": view.result,
        "lease_owner": view.lease_owner,
        "lease_epoch": view.lease_epoch,
        "last_event": view.last_event,
        "last_seq": view.last_seq,
        "scheduler": view.scheduler,
        "placement_blocked": view.placement_blocked,
        "deployment": view.deployment.job.as_ref().map(|d| d.context()),
        "counters": {
            "agents": view.agent_count,
            "messages_sent": view.messages_sent,
            "steps_finished": view.steps_finished,
            "steps_failed": view.steps_failed,
            "dead_letters": view.dead_letters,
        },
        "agents": agents.iter().map(|a| json!({
            "agent_id": a.agent_id,
            "status": a.status,
            "queued": a.queued,
            "mailbox_depth": a.queued,
            "inflight_message_id": a.inflight_message_id,
            "inflight_message_ids": a.inflight_message_ids,
            "processed": a.processed,
            "failed_attempts": a.failed_attempts,
            "last_error": a.last_error,
            "deployment_version": view
                .deployment
                .of_agent(crate::domain::job::source_of(&a.agent_id))
                .map(|d| d.version),
        })).collect::<Vec<_>>(),
    });
    if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
        base.extend(more);
    }
    v
}
