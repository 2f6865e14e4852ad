//! Emitting an event: record it (once per idempotency key), then dispatch every active
//! trigger it matches. A repeated key re-runs the matching for the first event instead of
//! recording a new one, which finishes an emit that crashed half-way and starts nothing
//! twice (a trigger's run for an event has a deterministic job id).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::dispatch::{DispatchReport, start_pending};
use super::{ScheduleRunError, execute};
use crate::domain::schedule::{
    EmittedEvent, ScheduleCommand, ScheduleError, ScheduleEvent, run_job_id, validate_event_type,
};
use crate::runtime::clock::now_ms;
use crate::store::{EmitRecord, Store, StoreError};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_S: u64 = 24 * 3600;

/// What an emit did.
#[derive(Debug, Clone)]
pub struct EmitReport {
    pub event: EmittedEvent,
    /// The idempotency key had been used: `event` is the first event recorded with it.
    pub duplicate: bool,
    /// Triggers the event matched, by schedule id.
    pub matched: Vec<String>,
    /// `(schedule id, job id)` of each run started for the event.
    pub runs: Vec<(String, String)>,
    pub dispatch: DispatchReport,
}

impl EmitReport {
    /// The JSON the CLI and `EmitTriggerEvent` return (`event_id`, `status`, `schedule_id`,
    /// `job_id` are what the published client reads).
    pub fn to_json(&self) -> Value {
        let first = self.runs.first();
        json!({
            "event_id": self.event.event_id,
            "status": if self.duplicate { "duplicate" } else { "emitted" },
            "event": event_json(&self.event),
            "matched": self.matched,
            "dispatched": self.runs.len(),
            "runs": self.runs.iter().map(|(s, j)| json!({"schedule_id": s, "job_id": j})).collect::<Vec<_>>(),
            "schedule_id": first.map(|r| r.0.clone()),
            "job_id": first.map(|r| r.1.clone()),
            "skipped": self.dispatch.skipped,
            "failed": self.dispatch.failed,
        })
    }
}

/// The stored and listed shape of an event.
pub fn event_json(e: &EmittedEvent) -> Value {
    json!({
        "event_id": e.event_id,
        "event_type": e.event_type,
        "source": e.source,
        "payload": e.payload,
        "created_at": crate::domain::view::iso_ms(e.created_at_ms),
        "created_at_ms": e.created_at_ms,
    })
}

fn parse_event(v: &Value) -> Option<EmittedEvent> {
    Some(EmittedEvent {
        event_id: v.get("event_id")?.as_str()?.to_string(),
        event_type: v.get("event_type")?.as_str()?.to_string(),
        source: v.get("source")?.as_str()?.to_string(),
        payload: v.get("payload").cloned().unwrap_or(Value::Null),
        created_at_ms: v.get("created_at_ms")?.as_i64()?,
    })
}

/// Whether a trigger's view row names `event_type` (a string or a list of them).
fn listens_for(row: &Value, event_type: &str) -> bool {
    match &row["trigger"]["event_type"] {
        Value::String(t) => t == event_type,
        Value::Array(ts) => ts.iter().any(|t| t == event_type),
        _ => false,
    }
}

/// Emits an event and dispatches the triggers it matches.
pub async fn emit(
    store: &Store,
    event_type: &str,
    payload: Value,
    source: &str,
    idempotency_key: Option<&str>,
) -> Result<EmitReport, ScheduleRunError> {
    validate_event_type("event_type", event_type).map_err(ScheduleError::from)?;
    let event_id = match idempotency_key {
        Some(k) => format!("event_{}", &hex::encode(Sha256::digest(k.as_bytes()))[..16]),
        None => format!("event_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
    };
    let event = EmittedEvent {
        event_id,
        event_type: event_type.to_string(),
        source: if source.is_empty() { "runtime" } else { source }.to_string(),
        payload,
        created_at_ms: now_ms(),
    };
    let record = store
        .record_emitted(&event_json(&event), idempotency_key, IDEMPOTENCY_TTL_S)
        .await?;
    let (event, duplicate) = match record {
        EmitRecord::New(_) => (event, false),
        EmitRecord::Duplicate(first) => {
            let first = parse_event(&first).ok_or_else(|| StoreError::CorruptView {
                key: store
                    .keys()
                    .emit_idempotency(idempotency_key.unwrap_or_default()),
                detail: "not an emitted event".into(),
            })?;
            (first, true)
        }
    };
    let mut report = EmitReport {
        event,
        duplicate,
        matched: vec![],
        runs: vec![],
        dispatch: DispatchReport::default(),
    };
    for (id, row) in store.schedule_views().await? {
        // The view is a cheap first cut; the decider checks type, filters and status again.
        if row["kind"] != "event"
            || row["status"] != "active"
            || !listens_for(&row, &report.event.event_type)
        {
            continue;
        }
        // A trigger created after the first emit of a repeated key does not fire for it.
        let created = row["created_at_ms"].as_i64().unwrap_or(i64::MAX);
        if duplicate && created > report.event.created_at_ms {
            continue;
        }
        let ev = report.event.clone();
        let (state, events) = execute(store, &id, true, |_, previous_active| {
            ScheduleCommand::MatchEvent {
                event: ev.clone(),
                previous_active,
                now_ms: now_ms(),
            }
        })
        .await?;
        let run = run_job_id(&id, &format!("e-{}", report.event.event_id));
        let matched = events
            .iter()
            .any(|e| matches!(e, ScheduleEvent::TriggerMatched { .. }))
            || state.has_dispatch(&run);
        if !matched {
            continue;
        }
        report.matched.push(id.clone());
        for e in &events {
            match e {
                ScheduleEvent::Dispatched(_) => report.dispatch.dispatched += 1,
                ScheduleEvent::Skipped { count, .. } => report.dispatch.skipped += count,
                _ => {}
            }
        }
        start_pending(store, &state, &mut report.dispatch).await;
        if state.has_dispatch(&run) {
            report.runs.push((id.clone(), run));
        }
    }
    Ok(report)
}
