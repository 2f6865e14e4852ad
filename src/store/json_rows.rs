//! JSON kept in Redis by the small aggregates (schedules, deployments): a view hash of JSON
//! rows, and history streams whose entries hold one JSON event under `e`.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use redis::streams::StreamRangeReply;
use serde_json::Value;

use super::{Shard, Store, StoreError};

/// The text of a stream entry's field.
pub(super) fn field(
    map: &std::collections::HashMap<String, redis::Value>,
    key: &str,
) -> Option<String> {
    match map.get(key) {
        Some(redis::Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

pub(super) fn corrupt(key: String, detail: impl ToString) -> StoreError {
    StoreError::CorruptView {
        key,
        detail: detail.to_string(),
    }
}

impl Store {
    /// One JSON row of a view hash.
    pub(super) async fn json_row(&self, hash: &str, id: &str) -> Result<Option<Value>, StoreError> {
        let json: Option<String> = self.conn().hget(hash, id).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt(hash.to_string(), e)))
            .transpose()
    }

    /// Every JSON row of a view hash kept per shard (`hash` names the shard's key), by id.
    pub(super) async fn json_rows(
        &self,
        hash: impl Fn(Shard) -> String,
    ) -> Result<BTreeMap<String, Value>, StoreError> {
        let mut out = BTreeMap::new();
        for shard in self.keys().shards() {
            let key = hash(shard);
            let rows: BTreeMap<String, String> = self.conn().hgetall(&key).await?;
            for (id, j) in rows {
                let v = serde_json::from_str(&j).map_err(|e| corrupt(key.clone(), e))?;
                out.insert(id, v);
            }
        }
        Ok(out)
    }

    /// The JSON events of a history stream, oldest first, each parsed by `parse`.
    pub(super) async fn json_events<T, E: ToString>(
        &self,
        stream: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Vec<T>, StoreError> {
        let reply: StreamRangeReply = self.conn().xrange_all(stream).await?;
        reply
            .ids
            .iter()
            .map(|entry| {
                let at = || format!("{stream}/{}", entry.id);
                let json =
                    field(&entry.map, "e").ok_or_else(|| corrupt(at(), "entry has no event"))?;
                parse(&json).map_err(|e| corrupt(at(), e))
            })
            .collect()
    }
}
