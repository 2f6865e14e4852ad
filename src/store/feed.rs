//! The global feed and its consumer groups: read, reclaim, acknowledge, trim safely.
//!
//! A feed entry announces one append: job `j` now has events `f..=l`. Consumers read the
//! events from the job's history, which keeps the feed small and the append cheap.

use std::time::Duration;

use super::BlockingConn;
use redis::AsyncCommands;
use redis::streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions, StreamReadReply};

use super::{Shard, Store, StoreError};

/// How many undelivered entries `feed_backlog` counts at most (it only needs to tell
/// "caught up" from "behind", and a rough size).
pub const BACKLOG_SCAN_LIMIT: usize = 10_000;

/// One feed entry: which job advanced, over which seqs. `None` fields mean a malformed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// The feed's own stream id (what gets acknowledged).
    pub stream_id: String,
    pub job_id: Option<String>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

impl FeedEntry {
    /// The job and seq range, when the entry is well-formed.
    pub fn range(&self) -> Option<(&str, u64, u64)> {
        match (&self.job_id, self.first_seq, self.last_seq) {
            (Some(j), Some(f), Some(l))
                if f >= 1 && l >= f && crate::store::validate_job_id(j).is_ok() =>
            {
                Some((j, f, l))
            }
            _ => None,
        }
    }
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
    FeedEntry {
        job_id: field_str(&entry, "j"),
        first_seq: field_str(&entry, "f").and_then(|s| s.parse().ok()),
        last_seq: field_str(&entry, "l").and_then(|s| s.parse().ok()),
        stream_id: entry.id,
    }
}

/// Orders stream ids numerically (`ms-seq`).
pub(crate) fn id_key(id: &str) -> (u64, u64) {
    let mut parts = id.splitn(2, '-').map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The consumer group every projection worker joins (migration 0001 creates it).
pub const PROJECTION_GROUP: &str = "projections";

impl Store {
    /// Creates consumer group `group` on the feed if it does not exist. A new group starts at
    /// the beginning of the feed, so a consumer created late still sees every retained entry.
    pub async fn ensure_feed_group(&self, shard: Shard, group: &str) -> Result<(), StoreError> {
        let res: redis::RedisResult<()> = self
            .conn()
            .xgroup_create_mkstream(self.keys().feed(shard), group, "0")
            .await;
        match res {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// Reads up to `count` new entries for `consumer`, blocking up to `block` on `conn`
    /// (a dedicated connection from [`Store::blocking_conn`]).
    pub async fn read_feed_group(
        &self,
        conn: &mut BlockingConn,
        shard: Shard,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        let opts = StreamReadOptions::default()
            .group(group, consumer)
            .count(count)
            .block(block.as_millis() as usize);
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[self.keys().feed(shard)], &[">"], &opts)
            .await?;
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
        shard: Shard,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        start: &str,
        count: usize,
    ) -> Result<FeedRead, StoreError> {
        let opts = StreamAutoClaimOptions::default().count(count);
        let reply: redis::streams::StreamAutoClaimReply = self
            .conn()
            .xautoclaim_options(
                self.keys().feed(shard),
                group,
                consumer,
                min_idle.as_millis() as u64,
                start,
                opts,
            )
            .await?;
        Ok(FeedRead {
            entries: reply.claimed.into_iter().map(to_feed_entry).collect(),
            next_start: reply.next_stream_id,
            deleted: reply.deleted_ids,
        })
    }

    /// Acknowledges processed entries.
    pub async fn ack_feed(
        &self,
        shard: Shard,
        group: &str,
        ids: &[String],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: usize = self
            .conn()
            .xack(self.keys().feed(shard), group, ids)
            .await?;
        Ok(())
    }

    /// Removes feed entries every consumer group has acknowledged, optionally only those
    /// older than `upper_bound` (a stream id). Never drops an entry a group still needs.
    pub async fn trim_feed(
        &self,
        shard: Shard,
        upper_bound: Option<&str>,
    ) -> Result<TrimReport, StoreError> {
        let feed = self.keys().feed(shard);
        let mut cmd = self.scripts().trim_feed.evalsha(&[&feed]);
        cmd.arg(upper_bound.unwrap_or(""));
        let (trimmed, min_id): (u64, String) = self.eval(&cmd).await?;
        Ok(TrimReport { trimmed, min_id })
    }

    /// Entries of every feed shard not yet acknowledged by `group`.
    pub async fn feed_backlog(&self, group: &str) -> Result<u64, StoreError> {
        let mut total = 0;
        for shard in self.keys().shards() {
            total += self.feed_shard_backlog(shard, group).await?;
        }
        Ok(total)
    }

    /// Entries of one feed shard not yet acknowledged by `group`: pending plus not yet
    /// delivered (counted up to [`BACKLOG_SCAN_LIMIT`]). XINFO's `lag` is not used: Redis 7.0
    /// reports a stale lag after an AOF rewrite and a restart, which would never drain.
    pub async fn feed_shard_backlog(&self, shard: Shard, group: &str) -> Result<u64, StoreError> {
        let feed = self.keys().feed(shard);
        let groups: redis::streams::StreamInfoGroupsReply = self.conn().xinfo_groups(&feed).await?;
        let Some(g) = groups.groups.iter().find(|g| g.name == group) else {
            return Ok(0);
        };
        let undelivered: redis::streams::StreamRangeReply = self
            .conn()
            .xrange_count(
                &feed,
                format!("({}", g.last_delivered_id),
                "+",
                BACKLOG_SCAN_LIMIT,
            )
            .await?;
        Ok(g.pending as u64 + undelivered.ids.len() as u64)
    }

    /// Number of entries currently in the feed (all shards).
    pub async fn feed_len(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        for shard in self.keys().shards() {
            let n: u64 = self.conn().xlen(self.keys().feed(shard)).await?;
            total += n;
        }
        Ok(total)
    }

    /// Records an undecodable feed entry or history event (idempotent by `source`).
    pub async fn dead_letter_event(
        &self,
        job_id: Option<&str>,
        stream_id: &str,
        seq: Option<u64>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let source = match job_id {
            Some(j) => format!("job:{j}/{stream_id}"),
            None => format!("feed/{stream_id}"),
        };
        let record = serde_json::json!({
            "source": source,
            "stream_id": stream_id,
            "job_id": job_id,
            "seq": seq,
            "reason": reason,
        });
        let added: u64 = self
            .conn()
            .hset(
                self.keys().event_dead_letters(),
                &source,
                record.to_string(),
            )
            .await?;
        if added > 0 {
            crate::metrics::event_dead_lettered();
        }
        Ok(())
    }

    /// Every dead-lettered entry (feed entries and history events that could not be decoded).
    pub async fn event_dead_letters(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let map: std::collections::BTreeMap<String, String> = self
            .conn()
            .hgetall(self.keys().event_dead_letters())
            .await?;
        let mut rows: Vec<serde_json::Value> = map
            .into_values()
            .map(|json| serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json)))
            .collect();
        rows.sort_by_key(|r| id_key(r["stream_id"].as_str().unwrap_or("")));
        Ok(rows)
    }
}
