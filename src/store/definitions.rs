//! Stable job definitions (the v2 "jobs"): a definition's changes are events on its own
//! stream, written together with its view in one script. Runs are ordinary jobs; a
//! definition's runs are indexed by start time.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use serde_json::Value;

use super::{Store, StoreError};

impl Store {
    fn definition_stream(&self, id: &str) -> String {
        self.keys().definition_events(id)
    }
    fn definitions_view(&self, id: &str) -> String {
        self.keys().definitions_view(self.keys().shard_of(id))
    }
    fn definition_runs(&self, id: &str) -> String {
        self.keys().definition_runs(id)
    }

    /// Records `event` for definition `id` and sets its view to `view` (`None` deletes it).
    /// `expected_len` guards against concurrent writers (`None` = unconditional).
    /// Returns false on a conflict.
    pub async fn append_definition(
        &self,
        id: &str,
        event_type: &str,
        event: &Value,
        view: Option<&Value>,
        expected_len: Option<u64>,
    ) -> Result<bool, StoreError> {
        let (stream, views) = (self.definition_stream(id), self.definitions_view(id));
        let mut cmd = self.scripts().definition_append.evalsha(&[&stream, &views]);
        cmd.arg(id)
            .arg(event_type)
            .arg(event.to_string())
            .arg(view.map_or(String::new(), Value::to_string))
            .arg(expected_len.map_or(String::new(), |n| n.to_string()));
        let (ok, _): (i64, u64) = self.eval(&cmd).await?;
        Ok(ok == 1)
    }

    /// Length of a definition's history (0 = never created).
    pub async fn definition_len(&self, id: &str) -> Result<u64, StoreError> {
        Ok(self.conn().xlen(self.definition_stream(id)).await?)
    }

    /// A definition's view.
    pub async fn definition(&self, id: &str) -> Result<Option<Value>, StoreError> {
        self.json_row(&self.definitions_view(id), id).await
    }

    /// Every definition view, by id.
    pub async fn definitions(&self) -> Result<BTreeMap<String, Value>, StoreError> {
        self.json_rows(|s| self.keys().definitions_view(s)).await
    }

    /// Indexes a run (job id) under its definition.
    pub async fn add_definition_run(
        &self,
        id: &str,
        run_id: &str,
        started_ms: i64,
    ) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .zadd(self.definition_runs(id), run_id, started_ms)
            .await?;
        Ok(())
    }

    /// A definition's run ids, newest first.
    pub async fn definition_runs_list(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn()
            .zrevrange(self.definition_runs(id), 0, -1)
            .await?)
    }
}
