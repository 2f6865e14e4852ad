//! Running one bulk operation in the background: its items, its event stream, its counters.
//!
//! Event contract (what the published client reads): `sequence`, `type` (`item_started`,
//! `item_completed`, `item_deferred`, `operation_deferred`), `item_id` (a job id), `status`
//! (cancelled, cleared, recovered, skipped, dry_run, failed...), `error`. The operation-level
//! final event carries `operation_status`, never a bare success `status` without an item, or
//! the client would try to clean up an empty job id.

use serde_json::{Value, json};

use super::bulk;
use super::context::ApiContext;
use crate::domain::cluster::Action;
use crate::domain::view::iso_ms;
use crate::runtime::clock::now_ms;
use crate::runtime::cluster::{self, ops};

/// What one item ended as.
enum ItemEnd {
    Done(&'static str),
    Deferred(String),
    Failed(String),
}

/// A running operation: its record and next event sequence.
pub struct OperationRun {
    ctx: ApiContext,
    pub record: Value,
    sequence: u64,
}

impl OperationRun {
    pub fn new(ctx: ApiContext, id: &str, kind: &str, options: Value) -> OperationRun {
        let now = iso_ms(now_ms());
        let record = json!({
            "operation_id": id, "kind": kind, "status": "running", "options": options,
            "target_count": 0, "counters": {"total": 0, "finished": 0, "succeeded": 0, "deferred": 0, "failed": 0},
            "created_at": now, "updated_at": now,
        });
        OperationRun {
            ctx,
            record,
            sequence: 0,
        }
    }

    fn id(&self) -> String {
        self.record["operation_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn emit(&mut self, mut event: Value) {
        self.sequence += 1;
        event["sequence"] = json!(self.sequence);
        event["operation_id"] = json!(self.id());
        event["timestamp"] = json!(iso_ms(now_ms()));
        if let Err(e) = self
            .ctx
            .store
            .push_operation_event(&self.id(), self.sequence, &event)
            .await
        {
            tracing::warn!(error = %e, "cannot record operation event");
        }
    }

    async fn save(&mut self) {
        self.record["updated_at"] = json!(iso_ms(now_ms()));
        if let Err(e) = self.ctx.store.put_operation(&self.id(), &self.record).await {
            tracing::warn!(error = %e, "cannot save operation record");
        }
    }

    fn count(&mut self, key: &str) {
        let c = &mut self.record["counters"][key];
        *c = json!(c.as_u64().unwrap_or(0) + 1);
    }

    async fn item(&mut self, item: &str, end: ItemEnd) {
        self.emit(json!({"type": "item_started", "item_id": item, "status": "running"}))
            .await;
        self.count("finished");
        match end {
            ItemEnd::Done(status) => {
                self.count("succeeded");
                self.emit(json!({"type": "item_completed", "item_id": item, "status": status}))
                    .await;
            }
            ItemEnd::Deferred(reason) => {
                self.count("deferred");
                self.emit(json!({"type": "item_deferred", "item_id": item, "status": "deferred", "reason": reason})).await;
            }
            ItemEnd::Failed(error) => {
                self.count("failed");
                self.emit(json!({"type": "item_completed", "item_id": item, "status": "failed", "error": error})).await;
            }
        }
        self.save().await;
    }

    async fn targets(&mut self, items: &[String]) {
        self.record["target_count"] = json!(items.len());
        self.record["counters"]["total"] = json!(items.len());
        self.save().await;
    }

    /// Runs the operation to its end and records the outcome.
    pub async fn run(mut self) {
        self.save().await;
        let kind = self.record["kind"].as_str().unwrap_or_default().to_string();
        let options = self.record["options"].clone();
        let dry_run = options["dry_run"].as_bool().unwrap_or(false);
        let outcome = match kind.as_str() {
            "cancel_all_jobs" => self.cancel_all(dry_run).await,
            "clear_jobs" => self.clear(dry_run).await,
            "drain_node" => self.drain(&options, dry_run).await,
            "reconcile_node" => self.reconcile(dry_run).await,
            other => Err(format!("unknown operation kind {other:?}")),
        };
        let failed = self.record["counters"]["failed"].as_u64().unwrap_or(0);
        let deferred = self.record["counters"]["deferred"].as_u64().unwrap_or(0);
        let status = match outcome {
            Err(e) => {
                self.record["error"] = json!(e);
                "failed"
            }
            Ok(()) if deferred > 0 => "deferred",
            Ok(()) if failed > 0 => "completed_with_failures",
            Ok(()) => "completed",
        };
        if status == "deferred" {
            self.emit(json!({"type": "operation_deferred", "reason": "some items wait for work that arrives later"})).await;
        }
        self.record["status"] = json!(status);
        self.emit(json!({"type": "operation_finished", "operation_status": status}))
            .await;
        self.save().await;
    }

    async fn cancel_all(&mut self, dry_run: bool) -> Result<(), String> {
        let items = bulk::active_jobs(&self.ctx)
            .await
            .map_err(|e| e.message().to_string())?;
        self.each_job(items, dry_run, "cancelled", |ctx, id| async move {
            bulk::cancel_one(&ctx, &id).await
        })
        .await;
        Ok(())
    }

    async fn clear(&mut self, dry_run: bool) -> Result<(), String> {
        let items = bulk::terminal_jobs(&self.ctx)
            .await
            .map_err(|e| e.message().to_string())?;
        self.each_job(items, dry_run, "cleared", |ctx, id| async move {
            bulk::clear_one(&ctx, &id).await
        })
        .await;
        Ok(())
    }

    /// Applies `action` to every job (`Ok(true)` = done as `done_status`, `Ok(false)` = skipped),
    /// or only reports `dry_run` items.
    async fn each_job<F, Fut>(
        &mut self,
        items: Vec<String>,
        dry_run: bool,
        done_status: &'static str,
        action: F,
    ) where
        F: Fn(ApiContext, String) -> Fut,
        Fut: std::future::Future<Output = Result<bool, tonic::Status>>,
    {
        self.targets(&items).await;
        for id in items {
            let end = if dry_run {
                ItemEnd::Done("dry_run")
            } else {
                match action(self.ctx.clone(), id.clone()).await {
                    Ok(true) => ItemEnd::Done(done_status),
                    Ok(false) => ItemEnd::Done("skipped"),
                    Err(e) => ItemEnd::Failed(e.message().to_string()),
                }
            };
            self.item(&id, end).await;
        }
    }

    /// Starts the drain (a node command) and lists the jobs the node owns; each waits for the
    /// deadline, when the leader moves it, so each is reported deferred.
    async fn drain(&mut self, options: &Value, dry_run: bool) -> Result<(), String> {
        let node = options["node_name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or("drain_node needs options.node_name")?
            .to_string();
        let req = ops::DrainRequest {
            node,
            reason: options["reason"].as_str().map(String::from),
            deadline_ms: options["deadline_ms"]
                .as_u64()
                .filter(|d| *d > 0)
                .unwrap_or(ops::DEFAULT_DRAIN_DEADLINE_MS),
            dry_run,
            ignore_system_jobs: options["ignore_system_jobs"].as_bool().unwrap_or(true),
        };
        let result = ops::drain(&self.ctx.store, &req)
            .await
            .map_err(|e| e.to_string())?;
        let items: Vec<String> = result["actions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["job_id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        self.targets(&items).await;
        for id in items {
            let end = if dry_run {
                ItemEnd::Done("dry_run")
            } else {
                ItemEnd::Deferred(format!(
                    "runs on until the drain deadline ({}), then moves to another node",
                    result["drain"]["deadline_at"].as_str().unwrap_or("?")
                ))
            };
            self.item(&id, end).await;
        }
        Ok(())
    }

    /// Runs one reconciler sweep now (the leader's: lost nodes, orphaned jobs, due drains)
    /// and reports what it did per job; a dry run only says what it would do. Sweeps are
    /// idempotent commands, so one run from here besides the leader's is harmless.
    async fn reconcile(&mut self, dry_run: bool) -> Result<(), String> {
        let store = self.ctx.store.clone();
        let actions = if dry_run {
            cluster::what_to_do(&store).await
        } else {
            let cfg = cluster::ClusterConfig::from_env().map_err(|e| e.to_string())?;
            cluster::sweep(&store, self.ctx.node.name(), &cfg)
                .await
                .map(|r| r.actions)
        }
        .map_err(|e| e.to_string())?;
        let per_job: Vec<(String, &'static str)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Assign { job_id, .. } => Some((job_id.clone(), "assigned")),
                Action::Release { job_id, .. } => Some((job_id.clone(), "released")),
                Action::PauseForReview { job_id, .. } => {
                    Some((job_id.clone(), "paused_for_review"))
                }
                _ => None,
            })
            .collect();
        let items: Vec<String> = per_job.iter().map(|(j, _)| j.clone()).collect();
        self.targets(&items).await;
        for (job_id, what) in per_job {
            let end = ItemEnd::Done(if dry_run { "dry_run" } else { what });
            self.item(&job_id, end).await;
        }
        Ok(())
    }
}
