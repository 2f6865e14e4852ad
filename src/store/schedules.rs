//! Schedules and emitted events in Redis: each schedule's history on its own stream,
//! appended with an expected length (a rival writer makes the append fail, and the caller
//! reloads and decides again), together with its view row and due-index score in one
//! script call; emitted events on a capped stream, deduplicated by idempotency key.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use redis::streams::StreamRangeReply;
use serde_json::Value;

use super::{Store, StoreError};
use crate::domain::schedule::{ScheduleEvent, ScheduleState, evolve, view};

/// How many emitted events are kept (approximately).
pub const EMITTED_EVENTS_KEPT: u64 = 1000;

/// Whether an emitted event was recorded now or had been recorded under its key before.
#[derive(Debug, Clone, PartialEq)]
pub enum EmitRecord {
    /// First time: the event as given.
    New(Value),
    /// The key was used before: the first event recorded with it.
    Duplicate(Value),
}

use super::json_rows::{corrupt, field};

impl Store {
    /// Appends `events` to a schedule whose history is as long as `state_before` says, and writes
    /// the view and due score of the state after them. Returns the state after, or `None`
    /// when another writer appended first (nothing was written).
    pub async fn append_schedule(
        &self,
        state_before: &ScheduleState,
        events: &[ScheduleEvent],
    ) -> Result<Option<ScheduleState>, StoreError> {
        let id = &state_before.schedule_id;
        let after = events.iter().fold(state_before.clone(), evolve);
        let keys = self.keys();
        let (stream, views, due) = (
            keys.schedule_events(id),
            keys.schedules_view(keys.shard_of(id)),
            keys.schedules_due(keys.shard_of(id)),
        );
        let deleted = after.status == Some(crate::domain::schedule::ScheduleStatus::Deleted);
        let mut cmd = self
            .scripts()
            .schedule_append
            .evalsha(&[&stream, &views, &due]);
        cmd.arg(id)
            .arg(state_before.seq)
            .arg(if deleted {
                String::new()
            } else {
                view(&after).to_string()
            })
            .arg(after.due_score().map_or(String::new(), |s| s.to_string()));
        for e in events {
            cmd.arg(e.type_name()).arg(e.to_json());
        }
        let (ok, _): (i64, u64) = self.eval(&cmd).await?;
        Ok((ok == 1).then_some(after))
    }

    /// A schedule's state, folded from its history (empty state if it never existed).
    pub async fn load_schedule(&self, schedule_id: &str) -> Result<ScheduleState, StoreError> {
        let key = self.keys().schedule_events(schedule_id);
        let events = self.json_events(&key, ScheduleEvent::from_json).await?;
        Ok(events.iter().fold(ScheduleState::new(schedule_id), evolve))
    }

    /// A schedule's history as JSON events (`{"type", "data"}`), oldest first.
    pub async fn schedule_history(&self, schedule_id: &str) -> Result<Vec<Value>, StoreError> {
        let key = self.keys().schedule_events(schedule_id);
        let reply: StreamRangeReply = self.conn().xrange_all(&key).await?;
        Ok(reply
            .ids
            .iter()
            .filter_map(|e| field(&e.map, "e"))
            .filter_map(|j| serde_json::from_str(&j).ok())
            .collect())
    }

    /// A schedule's view row.
    pub async fn schedule_view(&self, schedule_id: &str) -> Result<Option<Value>, StoreError> {
        let k = self.keys();
        self.json_row(&k.schedules_view(k.shard_of(schedule_id)), schedule_id)
            .await
    }

    /// Every schedule's view row, by id.
    pub async fn schedule_views(&self) -> Result<BTreeMap<String, Value>, StoreError> {
        self.json_rows(|s| self.keys().schedules_view(s)).await
    }

    /// Ids of schedules due at or before `now_ms`, most overdue first, at most `limit`.
    pub async fn due_schedules(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        // Each shard's most overdue, then the most overdue of those.
        let mut due: Vec<(String, f64)> = Vec::new();
        for shard in self.keys().shards() {
            let some: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(self.keys().schedules_due(shard))
                .arg("-inf")
                .arg(now_ms)
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .arg("WITHSCORES")
                .query_async(&mut self.conn())
                .await?;
            due.extend(some);
        }
        due.sort_by(|a, b| a.1.total_cmp(&b.1));
        Ok(due.into_iter().take(limit).map(|(id, _)| id).collect())
    }

    /// Records an emitted event unless `idempotency_key` was used within `ttl_s` seconds.
    pub async fn record_emitted(
        &self,
        event: &Value,
        idempotency_key: Option<&str>,
        ttl_s: u64,
    ) -> Result<EmitRecord, StoreError> {
        let keys = self.keys();
        let (stream, idem) = (
            keys.emitted_events(),
            keys.emit_idempotency(idempotency_key.unwrap_or("-")),
        );
        let mut cmd = self.scripts().emit_event.evalsha(&[&stream, &idem]);
        cmd.arg(event.to_string())
            .arg(ttl_s.max(1))
            .arg(EMITTED_EVENTS_KEPT)
            .arg(if idempotency_key.is_some() { "1" } else { "0" });
        let (new, json): (i64, String) = self.eval(&cmd).await?;
        let value: Value = serde_json::from_str(&json).map_err(|e| corrupt(idem, e))?;
        Ok(if new == 1 {
            EmitRecord::New(value)
        } else {
            EmitRecord::Duplicate(value)
        })
    }

    /// Emitted events, newest first, at most `limit`.
    pub async fn emitted_events(&self, limit: usize) -> Result<Vec<Value>, StoreError> {
        let reply: StreamRangeReply = self
            .conn()
            .xrevrange_count(self.keys().emitted_events(), "+", "-", limit)
            .await?;
        Ok(reply
            .ids
            .iter()
            .filter_map(|e| field(&e.map, "e"))
            .filter_map(|j| serde_json::from_str(&j).ok())
            .collect())
    }
}
