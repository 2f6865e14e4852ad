//! The JSON row of a schedule that `list`/`status` and the gRPC API return. Keys follow the
//! original's record (`schedule_id`, `kind`, `status`, `next_run_at`, `dispatches`, ...) so
//! the published clients print something familiar.

use serde_json::{Value, json};

use super::state::ScheduleState;
use crate::domain::view::iso_ms;

/// The view of a schedule (newest dispatch first).
pub fn view(state: &ScheduleState) -> Value {
    let spec = &state.spec_value;
    let status = state.status.map_or("unknown", |s| s.as_str());
    let dispatches: Vec<Value> = state
        .recent
        .iter()
        .rev()
        .map(|r| {
            let d = &r.dispatch;
            json!({
                "dispatch_id": d.dispatch_id,
                "job_id": d.job_id,
                "status": r.status,
                "reason": d.reason,
                "scheduled_for": d.scheduled_for_ms.and_then(iso_ms),
                "decided_at": iso_ms(d.decided_at_ms),
                "event_id": d.event.as_ref().map(|e| e.event_id.clone()),
                "error": r.error,
            })
        })
        .collect();
    let c = &state.counters;
    let mut v = json!({
        "schedule_id": state.schedule_id,
        "id": state.schedule_id,
        "name": spec.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or(&state.job_name),
        "kind": spec.get("kind"),
        "status": status,
        "enabled": status == "active",
        "graph_id": state.graph_id,
        "job_name": state.job_name,
        "bundle_path": state.bundle_path,
        "source": state.source,
        "schedule": spec,
        "next_run_at": state.next_due_ms.and_then(iso_ms),
        "next_run_at_ms": state.next_due_ms,
        "job_id": state.last_job_id(),
        "last_skip": state.last_skip,
        "spec_error": state.spec_error,
        "counters": {
            "dispatched": c.dispatched, "missed": c.missed, "blocked": c.overlap_skipped,
            "failed": c.failed, "events_matched": c.events_matched,
        },
        "dispatches": dispatches,
        "created_at": iso_ms(state.created_at_ms),
        "created_at_ms": state.created_at_ms,
        "updated_at": iso_ms(state.updated_at_ms),
        "seq": state.seq,
    });
    if let (Some(row), Some(spec)) = (v.as_object_mut(), spec.as_object()) {
        for key in [
            "crons",
            "timezone",
            "run_at",
            "trigger",
            "missed_policy",
            "catchup_limit",
            "prohibit_overlap",
        ] {
            if let Some(value) = spec.get(key) {
                let value = match (key, value.as_i64()) {
                    ("run_at", Some(ms)) => json!(iso_ms(ms)),
                    _ => value.clone(),
                };
                row.insert(key.to_string(), value);
            }
        }
    }
    v
}
