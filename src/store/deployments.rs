//! Deployments in Redis: each deployment key's history on its own stream, appended with an
//! expected length (a rival writer makes the append fail; the caller reloads and decides
//! again), together with its view record and the controller's index in one script call.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use serde_json::Value;

use super::{Store, StoreError};
use crate::domain::deployment::{DeploymentEvent, DeploymentState, evolve, view};

impl Store {
    /// Appends `events` to a deployment key whose history is as long as `before` says, and
    /// writes the view of the state after them. Returns that state, or `None` when another
    /// writer appended first (nothing was written).
    pub async fn append_deployment(
        &self,
        before: &DeploymentState,
        events: &[DeploymentEvent],
        now_ms: i64,
    ) -> Result<Option<DeploymentState>, StoreError> {
        let after = events.iter().fold(before.clone(), evolve);
        let keys = self.keys();
        let key = &before.key;
        let (stream, views, active, ids) = (
            keys.deployment_events(key),
            keys.deployments_view(keys.shard_of(key)),
            keys.deployments_active(keys.shard_of(key)),
            keys.deployment_ids(keys.shard_of(key)),
        );
        let deployment_id = after
            .rollout
            .as_ref()
            .map_or(String::new(), |r| r.deployment_id.clone());
        let mut cmd = self
            .scripts()
            .deployment_append
            .evalsha(&[&stream, &views, &active, &ids]);
        cmd.arg(key)
            .arg(before.seq)
            .arg(view(&after).to_string())
            .arg(now_ms)
            .arg(deployment_id);
        for e in events {
            cmd.arg(e.type_name()).arg(e.to_json());
        }
        let (ok, _): (i64, u64) = self.eval(&cmd).await?;
        Ok((ok == 1).then_some(after))
    }

    /// A deployment key's state, folded from its history (empty state if it never existed).
    pub async fn load_deployment(&self, key: &str) -> Result<DeploymentState, StoreError> {
        Ok(self
            .deployment_events(key)
            .await?
            .iter()
            .fold(DeploymentState::new(key), evolve))
    }

    /// A deployment key's history, oldest first.
    pub async fn deployment_events(&self, key: &str) -> Result<Vec<DeploymentEvent>, StoreError> {
        let stream = self.keys().deployment_events(key);
        self.json_events(&stream, DeploymentEvent::from_json).await
    }

    /// A deployment key's view record.
    pub async fn deployment_view(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let k = self.keys();
        self.json_row(&k.deployments_view(k.shard_of(key)), key)
            .await
    }

    /// Every deployment key's view record, by key.
    pub async fn deployment_views(&self) -> Result<BTreeMap<String, Value>, StoreError> {
        self.json_rows(|s| self.keys().deployments_view(s)).await
    }

    /// The key a deployment id belongs to.
    pub async fn deployment_key_of(
        &self,
        deployment_id: &str,
    ) -> Result<Option<String>, StoreError> {
        // The id index lives in its key's shard, which the id does not name: ask each.
        for shard in self.keys().shards() {
            let key: Option<String> = self
                .conn()
                .hget(self.keys().deployment_ids(shard), deployment_id)
                .await?;
            if key.is_some() {
                return Ok(key);
            }
        }
        Ok(None)
    }

    /// Keys the controller still owes an action, with the ms of their last append, oldest
    /// first.
    pub async fn unsettled_deployments(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut rows: Vec<(String, f64)> = Vec::new();
        for shard in self.keys().shards() {
            let some: Vec<(String, f64)> = self
                .conn()
                .zrange_withscores(self.keys().deployments_active(shard), 0, limit as isize - 1)
                .await?;
            rows.extend(some);
        }
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        Ok(rows
            .into_iter()
            .take(limit)
            .map(|(k, s)| (k, s as i64))
            .collect())
    }

    /// Takes `key` off the controller's index, unless it was appended to since the
    /// controller saw it at `seen_ms` (then the new events still need acting on).
    pub async fn settle_deployment(&self, key: &str, seen_ms: i64) -> Result<bool, StoreError> {
        let mut cmd = self
            .scripts()
            .deployment_settle
            .evalsha(&[&self.keys().deployments_active(self.keys().shard_of(key))]);
        cmd.arg(key).arg(seen_ms);
        let removed: i64 = self.eval(&cmd).await?;
        Ok(removed == 1)
    }
}
