//! Where `schedule`, `trigger` and `event` commands act: the local store (in this process),
//! or a server (`--target`) through the same v1 RPCs the published client uses. Both answer
//! with the same JSON rows, so the commands print the same either way.

use std::path::PathBuf;

use serde_json::{Value, json};
use tonic::Request;

use super::remote::{connect, failed, parse};
use crate::api::client::{Client, read_bundle};
use crate::api::pb::job_v1 as v1;
use crate::api::schedules::IDEMPOTENCY_HEADER;
use crate::domain::schedule::ScheduleCommand;
use crate::runtime::Backend;
use crate::runtime::bundle::load_bundle;
use crate::runtime::clock::now_ms;
use crate::runtime::schedules::{self, execute, view_of};
use crate::store::Store;

/// The local store or a server.
pub(super) enum Place {
    Local(Store),
    /// Boxed: a client is twice the size of a store handle, and there is one per command.
    Remote(Box<Client>),
}

/// An operator action on a schedule.
pub(super) enum Action {
    Pause(Option<String>),
    Resume,
    Delete(Option<String>),
}

pub(super) type Boxed<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<i32>> + 'a>>;

/// Runs `f` against the server at `target`, or else against the local store.
pub(super) async fn with_place(
    target: Option<&str>,
    f: impl for<'a> FnOnce(&'a mut Place) -> Boxed<'a>,
) -> anyhow::Result<i32> {
    if let Some(t) = target {
        let mut place = Place::Remote(Box::new(connect(t).await?));
        return f(&mut place).await;
    }
    let backend = Backend::open().await?;
    let mut place = Place::Local(backend.store.clone());
    let code = f(&mut place).await;
    backend.close().await;
    code
}

fn result(r: tonic::Response<v1::ScheduleResponse>) -> anyhow::Result<Value> {
    parse(&r.into_inner().result_json)
}

fn rows(v: Value) -> Vec<Value> {
    match v {
        Value::Object(mut o) => match o.remove("data") {
            Some(Value::Array(a)) => a,
            _ => vec![],
        },
        Value::Array(a) => a,
        _ => vec![],
    }
}

fn action_request(id: &str, reason: Option<String>) -> v1::ScheduleActionRequest {
    v1::ScheduleActionRequest {
        schedule_id: id.to_string(),
        attrs_json: String::new(),
        reason: reason.unwrap_or_default(),
        version: 1,
    }
}

impl Place {
    /// Creates a schedule running the bundle at `bundle`; returns its row.
    pub async fn create(
        &mut self,
        bundle: PathBuf,
        spec: Value,
        source: Value,
    ) -> anyhow::Result<Value> {
        match self {
            Place::Local(store) => {
                let bundle = tokio::task::spawn_blocking(move || load_bundle(&bundle)).await??;
                Ok(view_of(
                    &schedules::create(store, &bundle, &spec, source).await?,
                ))
            }
            Place::Remote(c) => {
                let (manifest_json, payloads) = read_bundle(&bundle)?;
                let req = v1::CreateScheduleRequest {
                    manifest_json,
                    payloads,
                    schedule_json: spec.to_string(),
                    source_json: source.to_string(),
                    version: 1,
                };
                c.check_size("the bundle upload", &req).map_err(failed)?;
                result(c.jobs.create_schedule(req).await.map_err(failed)?)
            }
        }
    }

    /// Schedule rows, filtered by kind and status.
    pub async fn list(
        &mut self,
        kind: Option<&str>,
        status: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        let all = match self {
            Place::Local(store) => store.schedule_views().await?.into_values().collect(),
            Place::Remote(c) => {
                let query = json!({ "kind": kind, "status": status });
                let req = v1::ListSchedulesRequest {
                    query_json: query.to_string(),
                    version: 1,
                };
                rows(result(c.jobs.list_schedules(req).await.map_err(failed)?)?)
            }
        };
        Ok(all
            .into_iter()
            .filter(|v: &Value| {
                kind.is_none_or(|k| v["kind"] == k) && status.is_none_or(|s| v["status"] == s)
            })
            .collect())
    }

    /// One schedule's row.
    pub async fn get(&mut self, id: &str) -> anyhow::Result<Value> {
        match self {
            Place::Local(store) => {
                schedules::validate_schedule_id(id)?;
                store
                    .schedule_view(id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("schedule {id} was not found"))
            }
            Place::Remote(c) => {
                let req = v1::GetScheduleRequest {
                    schedule_id: id.to_string(),
                    version: 1,
                };
                result(c.jobs.get_schedule(req).await.map_err(failed)?)
            }
        }
    }

    /// Pauses, resumes or deletes; returns the row after.
    pub async fn act(&mut self, id: &str, action: Action) -> anyhow::Result<Value> {
        match self {
            Place::Local(store) => {
                let now = now_ms();
                let command = match action {
                    Action::Pause(reason) => ScheduleCommand::Pause {
                        reason,
                        now_ms: now,
                    },
                    Action::Resume => ScheduleCommand::Resume { now_ms: now },
                    Action::Delete(reason) => ScheduleCommand::Delete {
                        reason,
                        now_ms: now,
                    },
                };
                let (state, _) = execute(store, id, false, |_, _| command.clone()).await?;
                Ok(view_of(&state))
            }
            Place::Remote(c) => {
                let answer = match action {
                    Action::Pause(reason) => {
                        c.jobs.pause_schedule(action_request(id, reason)).await
                    }
                    Action::Resume => c.jobs.resume_schedule(action_request(id, None)).await,
                    Action::Delete(reason) => {
                        c.jobs.delete_schedule(action_request(id, reason)).await
                    }
                };
                result(answer.map_err(failed)?)
            }
        }
    }

    /// Starts a run now; the row carries the run's `job_id`.
    pub async fn run_now(&mut self, id: &str, payload: Option<Value>) -> anyhow::Result<Value> {
        match self {
            Place::Local(store) => {
                let (state, job_id, report) = schedules::run_now(store, id, payload).await?;
                if let Some((_, error)) = report.failed.first() {
                    anyhow::bail!("the run was recorded but cannot start: {error}");
                }
                let mut v = view_of(&state);
                v["job_id"] = json!(job_id);
                Ok(v)
            }
            Place::Remote(c) => {
                let req = v1::DispatchScheduleRequest {
                    schedule_id: id.to_string(),
                    payload_json: payload.map_or(String::new(), |p| p.to_string()),
                    reason: "manual".into(),
                    version: 1,
                };
                result(c.jobs.dispatch_schedule(req).await.map_err(failed)?)
            }
        }
    }

    /// Emits an event; the answer lists the triggers it matched and the runs it started.
    pub async fn emit(
        &mut self,
        event_type: &str,
        payload: Value,
        source: &str,
        key: Option<&str>,
    ) -> anyhow::Result<Value> {
        match self {
            Place::Local(store) => Ok(schedules::emit(store, event_type, payload, source, key)
                .await?
                .to_json()),
            Place::Remote(c) => {
                let mut req = Request::new(v1::EmitTriggerEventRequest {
                    event_type: event_type.to_string(),
                    payload_json: payload.to_string(),
                    source: source.to_string(),
                    version: 1,
                });
                if let Some(k) = key {
                    let value = k.parse().map_err(|_| {
                        anyhow::anyhow!("--idempotency-key must be printable ASCII")
                    })?;
                    req.metadata_mut().insert(IDEMPOTENCY_HEADER, value);
                }
                result(c.jobs.emit_trigger_event(req).await.map_err(failed)?)
            }
        }
    }

    /// Emitted events, newest first.
    pub async fn events(&mut self, limit: usize) -> anyhow::Result<Vec<Value>> {
        match self {
            Place::Local(store) => Ok(store.emitted_events(limit).await?),
            Place::Remote(c) => {
                let req = v1::ListTriggerEventsRequest {
                    limit: limit.min(i32::MAX as usize) as i32,
                    version: 1,
                };
                Ok(rows(result(
                    c.jobs.list_trigger_events(req).await.map_err(failed)?,
                )?))
            }
        }
    }

    /// A schedule's history (local only: the v1 API has no call for it).
    pub async fn history(&mut self, id: &str) -> anyhow::Result<Vec<Value>> {
        match self {
            Place::Local(store) => {
                schedules::validate_schedule_id(id)?;
                let events = store.schedule_history(id).await?;
                if events.is_empty() {
                    anyhow::bail!("schedule {id} was not found");
                }
                Ok(events)
            }
            Place::Remote(_) => anyhow::bail!(
                "a schedule's history is not served over gRPC; run this next to the server's Redis (MN_REDIS_URL)"
            ),
        }
    }
}
