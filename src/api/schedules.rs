//! The v1 schedule, trigger and event RPCs (`CreateSchedule` ... `ListTriggerEvents`):
//! decode the client's JSON strings, call `runtime::schedules`, and answer with the
//! schedule's view row (`schedule_id`, `id`, `status`, `job_id`: what the client reads).

use serde_json::{Value, json};
use tonic::Status;

use super::context::ApiContext;
use super::pb::job_v1::*;
use super::{status, upload};
use crate::domain::schedule::ScheduleCommand;
use crate::runtime::clock::now_ms;
use crate::runtime::schedules::{self, ScheduleRunError, execute, view_of};

/// Rows `ListTriggerEvents` returns when the client asks for the server default.
const DEFAULT_EVENTS_LIMIT: usize = 100;
/// gRPC metadata that makes an emit idempotent (the v1 request has no field for it).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Parses a JSON-object field of a request; empty means `{}`.
pub(super) fn object(field: &str, text: &str) -> Result<Value, Status> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Status::invalid_argument(format!(
            "{field} must be a JSON object"
        ))),
        Err(e) => Err(Status::invalid_argument(format!(
            "{field} is not valid JSON: {e}"
        ))),
    }
}

/// Any JSON value (empty means absent).
fn any(field: &str, text: &str) -> Result<Option<Value>, Status> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| Status::invalid_argument(format!("{field} is not valid JSON: {e}")))
}

async fn control(ctx: &ApiContext, id: &str, command: ScheduleCommand) -> Result<Value, Status> {
    let (state, _) = execute(&ctx.store, id, false, |_, _| command.clone())
        .await
        .map_err(|e| status::schedule(&e))?;
    Ok(view_of(&state))
}

pub async fn create(ctx: &ApiContext, req: CreateScheduleRequest) -> Result<Value, Status> {
    let bundle = upload::materialise(&ctx.bundles_dir, &req.manifest_json, &req.payloads).await?;
    let mut spec = object("schedule_json", &req.schedule_json)?;
    // No schedule given: the manifest's own `schedule` object, as the original did.
    if spec.as_object().is_some_and(|o| o.is_empty())
        && let Some(s) = bundle.raw.get("schedule").filter(|s| s.is_object())
    {
        spec = s.clone();
    }
    let source = object("source_json", &req.source_json)?;
    let state = schedules::create(&ctx.store, &bundle, &spec, source)
        .await
        .map_err(|e| status::schedule(&e))?;
    Ok(view_of(&state))
}

pub async fn update(ctx: &ApiContext, req: ScheduleActionRequest) -> Result<Value, Status> {
    let attrs = object("attrs_json", &req.attrs_json)?;
    let state = schedules::update(&ctx.store, &req.schedule_id, &attrs)
        .await
        .map_err(|e| status::schedule(&e))?;
    Ok(view_of(&state))
}

pub async fn get(ctx: &ApiContext, schedule_id: &str) -> Result<Value, Status> {
    schedules::validate_schedule_id(schedule_id).map_err(|e| status::schedule(&e))?;
    ctx.store
        .schedule_view(schedule_id)
        .await
        .map_err(|e| status::store(&e))?
        .ok_or_else(|| Status::not_found(format!("schedule {schedule_id} was not found")))
}

/// `query_json` filters: `kind`, `status`, `enabled` (absent = any).
pub async fn list(ctx: &ApiContext, query_json: &str) -> Result<Value, Status> {
    let q = object("query_json", query_json)?;
    let rows: Vec<Value> = ctx
        .store
        .schedule_views()
        .await
        .map_err(|e| status::store(&e))?
        .into_values()
        .filter(|v| {
            ["kind", "status", "enabled"].iter().all(|k| {
                q.get(*k)
                    .is_none_or(|want| want.is_null() || &v[*k] == want)
            })
        })
        .collect();
    Ok(json!({ "data": rows, "count": rows.len() }))
}

pub async fn pause(ctx: &ApiContext, req: ScheduleActionRequest) -> Result<Value, Status> {
    let reason = Some(req.reason).filter(|r| !r.is_empty());
    control(
        ctx,
        &req.schedule_id,
        ScheduleCommand::Pause {
            reason,
            now_ms: now_ms(),
        },
    )
    .await
}

pub async fn resume(ctx: &ApiContext, req: ScheduleActionRequest) -> Result<Value, Status> {
    control(
        ctx,
        &req.schedule_id,
        ScheduleCommand::Resume { now_ms: now_ms() },
    )
    .await
}

pub async fn delete(ctx: &ApiContext, req: ScheduleActionRequest) -> Result<Value, Status> {
    let reason = Some(req.reason).filter(|r| !r.is_empty());
    control(
        ctx,
        &req.schedule_id,
        ScheduleCommand::Delete {
            reason,
            now_ms: now_ms(),
        },
    )
    .await
}

/// `DispatchSchedule` (`mn schedule run-now`): a manual run, owned by this node at once.
pub async fn dispatch(ctx: &ApiContext, req: DispatchScheduleRequest) -> Result<Value, Status> {
    let payload = any("payload_json", &req.payload_json)?;
    let (state, job_id, report) = schedules::run_now(&ctx.store, &req.schedule_id, payload)
        .await
        .map_err(|e| status::schedule(&e))?;
    if let Some((_, error)) = report.failed.first() {
        return Err(Status::failed_precondition(format!(
            "the run was recorded but cannot start: {error}"
        )));
    }
    for job in &report.started {
        ctx.node.own(job);
    }
    let mut v = view_of(&state);
    v["job_id"] = json!(job_id);
    v["dispatch_status"] = json!("submitted");
    Ok(v)
}

pub async fn emit(
    ctx: &ApiContext,
    req: EmitTriggerEventRequest,
    idempotency_key: Option<String>,
) -> Result<Value, Status> {
    let payload = any("payload_json", &req.payload_json)?.unwrap_or(json!({}));
    let source = if req.source.is_empty() {
        "api"
    } else {
        req.source.as_str()
    };
    let report = schedules::emit(
        &ctx.store,
        &req.event_type,
        payload,
        source,
        idempotency_key.as_deref(),
    )
    .await
    .map_err(|e| status::schedule(&e))?;
    for job in &report.dispatch.started {
        ctx.node.own(job);
    }
    Ok(report.to_json())
}

pub async fn list_events(ctx: &ApiContext, limit: i32) -> Result<Value, Status> {
    let limit = if limit <= 0 {
        DEFAULT_EVENTS_LIMIT
    } else {
        limit as usize
    };
    let events = ctx
        .store
        .emitted_events(limit)
        .await
        .map_err(|e| status::store(&e))?;
    Ok(json!({ "data": events, "count": events.len() }))
}

/// Maps a runtime error for callers outside this module (v2 `CreateJobSchedule`).
pub fn error(e: &ScheduleRunError) -> Status {
    status::schedule(e)
}
