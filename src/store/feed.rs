//! The global feed and its consumer groups: read, reclaim, acknowledge, trim safely.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions, StreamReadReply};

use super::history::seq_of;
use super::{Store, StoreError};
use crate::domain::event::{DecodeError, EventEnvelope, decode};

/// One feed entry: which job and seq it announces, and the event itself.
#[derive(Debug)]
pub struct FeedEntry {
    /// The feed's own stream id (what gets acknowledged).
    pub stream_id: String,
    pub job_id: String,
    pub seq: u64,
    pub event: Result<EventEnvelope, DecodeError>,
}

/// The result of a reclaim pass.
#[derive(Debug, Default)]
pub struct FeedRead {
    pub entries: Vec<FeedEntry>,
    /// Where the next XAUTOCLAIM scan starts ("0-0" when the scan wrapped around).
    pub next_start: String,
    /// Pending ids whose entries were trimmed away (already removed from the PEL by Redis).
    pub deleted: Vec<String>,
}

/// What a trim did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrimReport {
    pub trimmed: u64,
    /// Entries older than this id were removed ("" when nothing could be decided).
    pub min_id: String,
}

fn field_str(entry: &StreamId, name: &str) -> Option<String> {
    match entry.map.get(name) {
        Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn to_feed_entry(entry: StreamId) -> FeedEntry {
    let job_id = field_str(&entry, "j").unwrap_or_default();
    let seq = field_str(&entry, "s").and_then(|s| s.parse().ok()).unwrap_or(0);
    let event = match entry.map.get("e") {
        Some(redis::Value::BulkString(bytes)) => decode(bytes),
        _ => Err(DecodeError::Corrupt("feed entry has no event field".into())),
    };
    FeedEntry { stream_id: entry.id, job_id, seq, event }
}

impl Store {
    /// Creates consumer group `group` on the feed if it does not exist. A new group starts at
    /// the beginning of the feed, so a projection created late still sees every retained event.
    pub async fn ensure_feed_group(&self, group: &str) -> Result<(), StoreError> {
        let res: redis::RedisResult<()> =
            self.conn().xgroup_create_mkstream(self.keys().feed(), group, "0").await;
        match res {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// Reads up to `count` new entries for `consumer`, blocking up to `block` on `conn`
    /// (a dedicated connection from [`Store::blocking_conn`]).
    pub async fn read_feed_group(
        &self,
        conn: &mut MultiplexedConnection,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        let opts = StreamReadOptions::default()
            .group(group, consumer)
            .count(count)
            .block(block.as_millis() as usize);
        let reply: Option<StreamReadReply> = conn.xread_options(&[self.keys().feed()], &[">"], &opts).await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(to_feed_entry)
            .collect())
    }

    /// Takes over entries pending longer than `min_idle` in `group` (their consumer died or
    /// stalled), scanning from `start`.
    pub async fn reclaim_feed(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: &str,
        count: usize,
    ) -> Result<FeedRead, StoreError> {
        let opts = StreamAutoClaimOptions::default().count(count);
        let reply: redis::streams::StreamAutoClaimReply = self
            .conn()
            .xautoclaim_options(self.keys().feed(), group, consumer, min_idle.as_millis() as u64, start, opts)
            .await?;
        Ok(FeedRead {
            entries: reply.claimed.into_iter().map(to_feed_entry).collect(),
            next_start: reply.next_stream_id,
            deleted: reply.deleted_ids,
        })
    }

    /// Acknowledges processed entries.
    pub async fn ack_feed(&self, group: &str, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: usize = self.conn().xack(self.keys().feed(), group, ids).await?;
        Ok(())
    }

    /// Removes feed entries every consumer group has acknowledged, optionally only those
    /// older than `upper_bound` (a stream id). Never drops an entry a group still needs.
    pub async fn trim_feed(&self, upper_bound: Option<&str>) -> Result<TrimReport, StoreError> {
        let feed = self.keys().feed();
        let mut cmd = self.scripts().trim_feed.evalsha(&[&feed]);
        cmd.arg(upper_bound.unwrap_or(""));
        let (trimmed, min_id): (u64, String) = self.eval(&cmd).await?;
        Ok(TrimReport { trimmed, min_id })
    }

    /// Entries of the feed not yet acknowledged by `group`: pending plus not yet delivered.
    pub async fn feed_backlog(&self, group: &str) -> Result<u64, StoreError> {
        let groups: redis::streams::StreamInfoGroupsReply = self.conn().xinfo_groups(self.keys().feed()).await?;
        Ok(groups
            .groups
            .iter()
            .find(|g| g.name == group)
            .map_or(0, |g| g.pending as u64 + g.lag.unwrap_or(0) as u64))
    }

    /// Number of entries currently in the feed.
    pub async fn feed_len(&self) -> Result<u64, StoreError> {
        Ok(self.conn().xlen(self.keys().feed()).await?)
    }

    /// Records an undecodable feed entry in the feed's dead-letter view (idempotent by id).
    pub async fn dead_letter_feed_entry(&self, entry: &FeedEntry, reason: &str) -> Result<(), StoreError> {
        let record = serde_json::json!({
            "stream_id": entry.stream_id,
            "job_id": entry.job_id,
            "seq": entry.seq,
            "reason": reason,
        });
        let _: () = self
            .conn()
            .hset(self.keys().feed_dead_letters(), &entry.stream_id, record.to_string())
            .await?;
        Ok(())
    }

    /// The feed's dead letters (undecodable entries), oldest stream id first.
    pub async fn feed_dead_letters(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let map: std::collections::BTreeMap<String, String> =
            self.conn().hgetall(self.keys().feed_dead_letters()).await?;
        let mut rows: Vec<(u64, serde_json::Value)> = map
            .into_iter()
            .map(|(id, json)| {
                let v = serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json));
                (seq_of(&id), v)
            })
            .collect();
        rows.sort_by_key(|(k, _)| *k);
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }
}
