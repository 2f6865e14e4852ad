//! Our events in the JSON vocabulary the published client reads from `StreamEvents`
//! (`type` names of the original runtime where one exists; `dead_letter` rows with
//! `agent_id`, `reason`, `timestamp`, `message`; every object has `"version": 1`).
//!
//! | our event | `type` |
//! |---|---|
//! | job_submitted | job_pending |
//! | job_started | job_running |
//! | job_paused / job_resumed / job_cancelled / job_completed / job_failed | same |
//! | lease_acquired / lease_released | job_lease_acquired / job_lease_released |
//! | message_sent | message_sent |
//! | agent_step_started | agent_message_received |
//! | agent_stepped (schema 2: a whole step) | agent_step_finished, with `emitted` and `notes` |
//! | inputs_queued | inputs_queued, with `counts` per agent |
//! | agent_step_finished / agent_step_failed | same |
//! | agent_event_recorded | the agent's event name (e.g. aggregator_received) |
//! | dead_lettered | dead_letter |

use serde_json::{Map, Value, json};

use crate::domain::event::{EventEnvelope, JobEvent};
use crate::domain::view::iso_ms;

/// The events as the client sees them: one per envelope, except that a whole step also
/// yields a `dead_letter` row for each emit that could not be delivered.
pub fn to_json_events(env: &EventEnvelope) -> Vec<Value> {
    let mut out = vec![to_json(env)];
    if let JobEvent::AgentStepped(step) = &env.payload {
        for emit in step.emits.iter().filter(|e| e.dead.is_some()) {
            let mut row = Map::new();
            row.insert("type".into(), Value::from("dead_letter"));
            row.insert("job_id".into(), Value::String(env.job_id.clone()));
            row.insert("seq".into(), Value::from(env.seq));
            row.insert("timestamp".into(), json!(iso_ms(env.timestamp_ms)));
            row.insert("agent_id".into(), Value::String(step.agent_id.clone()));
            row.insert("reason".into(), json!(emit.dead));
            row.insert("message".into(), emit.dead_letter_message());
            row.insert("version".into(), Value::from(1));
            out.push(Value::Object(row));
        }
    }
    out
}

/// The event as the client sees it.
pub fn to_json(env: &EventEnvelope) -> Value {
    let (kind, fields): (String, Value) = match &env.payload {
        JobEvent::JobSubmitted(s) => (
            "job_pending".into(),
            json!({"graph_id": s.graph_id, "job_name": s.job_name}),
        ),
        JobEvent::JobStarted => ("job_running".into(), json!({})),
        JobEvent::JobPaused { reason } => ("job_paused".into(), json!({"reason": reason})),
        JobEvent::JobResumed => ("job_resumed".into(), json!({})),
        JobEvent::JobCancelled { reason } => ("job_cancelled".into(), json!({"reason": reason})),
        JobEvent::JobCompleted { result } => (
            "job_completed".into(),
            json!({"result": result, "agent_id": result.get("agent_id")}),
        ),
        JobEvent::JobFailed { result } => (
            "job_failed".into(),
            json!({"result": result, "agent_id": result.get("agent_id"), "reason": result.get("reason")}),
        ),
        JobEvent::LeaseAcquired {
            owner,
            epoch,
            local_run,
        } => (
            "job_lease_acquired".into(),
            json!({"node": owner, "lease_epoch": epoch, "local_run": local_run}),
        ),
        JobEvent::LeaseReleased {
            owner,
            epoch,
            reason,
        } => (
            "job_lease_released".into(),
            json!({"node": owner, "lease_epoch": epoch, "reason": reason}),
        ),
        JobEvent::InputsQueued { counts } => ("inputs_queued".into(), json!({"counts": counts})),
        JobEvent::AgentStepped(step) => (
            "agent_step_finished".into(),
            json!({
                "agent_id": step.agent_id,
                "notes": step.notes.iter().map(|(name, payload)| json!({"name": name, "payload": payload})).collect::<Vec<_>>(),
                "emitted": step.emits.iter().map(|e| json!({
                    "type": e.message_type, "to": e.to, "dead_letter_reason": e.dead,
                })).collect::<Vec<_>>(),
            }),
        ),
        JobEvent::MessageSent { message } => (
            "message_sent".into(),
            json!({"agent_id": message.to, "message": message.summary()}),
        ),
        JobEvent::AgentStepStarted {
            agent_id,
            message_id,
            attempt,
            node,
        } => (
            "agent_message_received".into(),
            json!({"agent_id": agent_id, "message_id": message_id, "attempt": attempt, "node": node}),
        ),
        JobEvent::AgentRestartScheduled {
            agent_id,
            message_id,
            attempt,
            delay_ms,
            eligible_at_ms,
            reason,
            deferred,
            policy,
        } => (
            if *deferred {
                "agent_restart_deferred"
            } else {
                "agent_restart_scheduled"
            }
            .into(),
            json!({"agent_id": agent_id, "message_id": message_id, "attempt": attempt,
                   "delay_ms": delay_ms, "next_eligible_at": iso_ms(*eligible_at_ms),
                   "reason": reason, "restart_policy": policy}),
        ),
        JobEvent::AgentRescheduleScheduled {
            agent_id,
            message_id,
            attempt,
            delay_ms,
            eligible_at_ms,
            avoid_node,
            reason,
        } => (
            "agent_reschedule_scheduled".into(),
            json!({"agent_id": agent_id, "message_id": message_id, "attempt": attempt,
                   "delay_ms": delay_ms, "next_eligible_at": iso_ms(*eligible_at_ms),
                   "failed_node": avoid_node, "reason": reason}),
        ),
        JobEvent::ReliabilityResolved { reliability } => {
            ("reliability_resolved".into(), reliability.clone())
        }
        JobEvent::JobPlanned { plan, reason } => (
            "job_planned".into(),
            json!({"plan": plan, "reason": reason}),
        ),
        JobEvent::JobPlacementBlocked { reason, agent_id } => (
            "job_placement_blocked".into(),
            json!({"reason": reason, "agent_id": agent_id}),
        ),
        JobEvent::AgentStepFinished {
            agent_id,
            message_id,
            ..
        } => (
            "agent_step_finished".into(),
            json!({"agent_id": agent_id, "message_id": message_id}),
        ),
        JobEvent::AgentStepFailed {
            agent_id,
            message_id,
            attempt,
            error,
            will_retry,
        } => (
            "agent_step_failed".into(),
            json!({"agent_id": agent_id, "message_id": message_id, "attempt": attempt, "error": error, "will_retry": will_retry}),
        ),
        JobEvent::AgentEventRecorded {
            agent_id,
            name,
            payload,
        } => (
            name.clone(),
            json!({"agent_id": agent_id, "payload": payload}),
        ),
        JobEvent::DeadLettered {
            agent_id,
            reason,
            message,
        } => (
            "dead_letter".into(),
            json!({"agent_id": agent_id, "reason": reason, "message": message}),
        ),
        JobEvent::ServiceRegistered { instance } => (
            "service_registered".into(),
            json!({"service_id": instance.id, "service_name": instance.service.name,
                   "agent_id": instance.agent_id, "node": instance.node,
                   "status": instance.status.as_str()}),
        ),
        JobEvent::ServiceDeregistered {
            service_id,
            service_name,
            reason,
        } => (
            "service_deregistered".into(),
            json!({"service_id": service_id, "service_name": service_name, "reason": reason}),
        ),
        JobEvent::ServiceHealthChanged {
            service_id,
            service_name,
            status,
            previous_status,
            health,
        } => (
            "service_health_changed".into(),
            json!({"service_id": service_id, "service_name": service_name,
                   "status": status.as_str(), "previous_status": previous_status.as_str(),
                   "health": health}),
        ),
        JobEvent::AgentsReplaced {
            nodes,
            bundle,
            deployment,
        } => (
            "agents_replaced".into(),
            json!({"agent_ids": nodes.iter().filter_map(|n| n.get("node_id")).collect::<Vec<_>>(),
                   "bundle": bundle, "deployment": deployment}),
        ),
        JobEvent::AgentsPromoted { version } => {
            ("agents_promoted".into(), json!({"version": version}))
        }
    };
    let mut out = Map::new();
    out.insert("type".into(), Value::String(kind));
    out.insert("job_id".into(), Value::String(env.job_id.clone()));
    out.insert("seq".into(), Value::from(env.seq));
    out.insert("event_id".into(), Value::String(env.event_id.clone()));
    out.insert("timestamp".into(), json!(iso_ms(env.timestamp_ms)));
    if let Value::Object(f) = fields {
        out.extend(f);
    }
    out.insert("version".into(), Value::from(1));
    Value::Object(out)
}

/// A keep-alive for followers.
pub fn heartbeat(job_id: &str, now_ms: i64) -> Value {
    json!({"type": "stream_heartbeat", "job_id": job_id, "timestamp": iso_ms(now_ms), "version": 1})
}
