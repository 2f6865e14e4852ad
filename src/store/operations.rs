//! Bulk operations (cancel all, clear, drain, reconcile): a record (view) plus an event
//! stream per operation, so a client can replay from any sequence and follow to the end.

use redis::AsyncCommands;
use redis::streams::StreamRangeReply;
use serde_json::Value;

use super::{Store, StoreError};

impl Store {
    fn operations_view(&self) -> String {
        format!("{}:operations", self.keys().namespace())
    }
    fn operation_stream(&self, id: &str) -> String {
        format!("{}:operation:{{{id}}}:events", self.keys().namespace())
    }

    /// Writes an operation's record.
    pub async fn put_operation(&self, id: &str, record: &Value) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .hset(self.operations_view(), id, record.to_string())
            .await?;
        Ok(())
    }

    /// An operation's record.
    pub async fn operation(&self, id: &str) -> Result<Option<Value>, StoreError> {
        let json: Option<String> = self.conn().hget(self.operations_view(), id).await?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| StoreError::CorruptView {
                key: self.operations_view(),
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    /// Appends an event; its `sequence` is its position in the stream (from 1).
    pub async fn push_operation_event(
        &self,
        id: &str,
        sequence: u64,
        event: &Value,
    ) -> Result<(), StoreError> {
        let _: String = self
            .conn()
            .xadd(
                self.operation_stream(id),
                format!("{sequence}-0"),
                &[("e", event.to_string())],
            )
            .await?;
        Ok(())
    }

    /// Events with a sequence greater than `after`.
    pub async fn operation_events(&self, id: &str, after: u64) -> Result<Vec<Value>, StoreError> {
        let reply: StreamRangeReply = self
            .conn()
            .xrange(self.operation_stream(id), format!("({after}-0"), "+")
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|e| match e.map.get("e") {
                Some(redis::Value::BulkString(b)) => serde_json::from_slice(b).ok(),
                _ => None,
            })
            .collect())
    }

    /// Resource limits (`{cpu,gpu,memory,disk}` percentages).
    pub async fn resource_limits(&self) -> Result<Option<Value>, StoreError> {
        let json: Option<String> = self
            .conn()
            .get(format!("{}:resource:limits", self.keys().namespace()))
            .await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    pub async fn set_resource_limits(&self, limits: &Value) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .set(
                format!("{}:resource:limits", self.keys().namespace()),
                limits.to_string(),
            )
            .await?;
        Ok(())
    }
}
