//! Archived histories in Redis: the raw entry pages an archive is built from, the small
//! pointer a finished job keeps once its history lives in a blob, and the one script that
//! swaps the hot keys for that pointer. The blob itself is not Redis's business (see
//! `runtime::history`).

use std::sync::LazyLock;

use redis::AsyncCommands;
use redis::streams::StreamRangeReply;

use super::history::seq_of;
use super::{Store, StoreError};
use crate::domain::job::JobStatus;

/// One stored history entry: its seq and the exact bytes of the stream entry's `e` field
/// (empty when the entry has none, which then fails to decode like any corrupt entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// Where a finished job's history went: the blob's digest and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRecord {
    /// SHA-256 (hex) of the archive blob.
    pub sha256: String,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Entries archived (equal to `last_seq`: histories are gapless from 1).
    pub entries: u64,
    /// Seq of the last archived entry.
    pub last_seq: u64,
    /// When the hot history was swapped for the archive (Unix ms).
    pub archived_at_ms: i64,
}

static ARCHIVE_JOB: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../../streams/archive_job.lua")));

fn field<T: std::str::FromStr>(
    map: &std::collections::HashMap<String, String>,
    key: &str,
    name: &str,
) -> Result<T, StoreError> {
    map.get(name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::CorruptView {
            key: key.to_string(),
            detail: format!("field {name} is missing or malformed"),
        })
}

impl Store {
    /// Raw entries `from..=to` (`to = None`: to the end), at most `count` of them.
    pub async fn raw_history_page(
        &self,
        job_id: &str,
        from: u64,
        to: Option<u64>,
        count: usize,
    ) -> Result<Vec<RawEntry>, StoreError> {
        let key = self.keys().job_events(job_id);
        let end = to.map_or("+".to_string(), |t| format!("{t}-0"));
        let reply: StreamRangeReply = self
            .conn()
            .xrange_count(&key, format!("{}-0", from.max(1)), &end, count)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| RawEntry {
                seq: seq_of(&entry.id),
                bytes: match entry.map.get("e") {
                    Some(redis::Value::BulkString(b)) => b.clone(),
                    _ => Vec::new(),
                },
            })
            .collect())
    }

    /// Entries in the hot history stream (0 when it is gone).
    pub async fn history_len(&self, job_id: &str) -> Result<u64, StoreError> {
        Ok(self.conn().xlen(self.keys().job_events(job_id)).await?)
    }

    /// The archive pointer of `job_id`, when its history has been archived.
    pub async fn archive_record(&self, job_id: &str) -> Result<Option<ArchiveRecord>, StoreError> {
        let key = self.keys().job_archive(job_id);
        let map: std::collections::HashMap<String, String> = self.conn().hgetall(&key).await?;
        if map.is_empty() {
            return Ok(None);
        }
        Ok(Some(ArchiveRecord {
            sha256: field(&map, &key, "sha256")?,
            size: field(&map, &key, "size")?,
            entries: field(&map, &key, "entries")?,
            last_seq: field(&map, &key, "last_seq")?,
            archived_at_ms: field(&map, &key, "archived_at_ms")?,
        }))
    }

    /// Records `record` and deletes the job's hot keys (history, results, lease, commands) in
    /// one script, only if the history still ends at `record.last_seq` with `record.entries`
    /// entries. False when it moved on or is already archived; nothing is changed then.
    pub async fn commit_archive(
        &self,
        job_id: &str,
        record: &ArchiveRecord,
    ) -> Result<bool, StoreError> {
        let k = self.keys();
        let mut inv = ARCHIVE_JOB.prepare_invoke();
        inv.key(k.job_events(job_id))
            .key(k.job_archive(job_id))
            .key(k.jobs_archived(k.shard_of(job_id)))
            .key(k.job_results(job_id))
            .key(k.job_lease(job_id))
            .key(k.job_lease_epoch(job_id))
            .key(k.job_commands(job_id))
            .arg(job_id)
            .arg(record.last_seq)
            .arg(record.entries)
            .arg(&record.sha256)
            .arg(record.size)
            .arg(record.archived_at_ms);
        let (done, _actual): (i64, u64) = inv.invoke_async(&mut self.conn()).await?;
        Ok(done == 1)
    }

    /// Finished jobs submitted at or before `before_ms` whose history is not archived yet,
    /// at most `limit`, oldest first within each status (a job finishes after it is submitted, so this is a
    /// superset of the jobs finished before `before_ms`; the caller checks the finish time).
    pub async fn archive_candidates(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let k = self.keys();
        let mut out = Vec::new();
        // Per shard: under Redis Cluster a pipeline must stay in one slot.
        for shard in k.shards() {
            let mut ids = Vec::new();
            for status in JobStatus::ALL.iter().filter(|s| s.is_terminal()) {
                let some: Vec<String> = self
                    .conn()
                    .zrangebyscore(k.jobs_by_status(shard, *status), "-inf", before_ms)
                    .await?;
                ids.extend(some);
            }
            if ids.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.sismember(k.jobs_archived(shard), id);
            }
            let archived: Vec<bool> = pipe.query_async(&mut self.conn()).await?;
            out.extend(
                ids.into_iter()
                    .zip(archived)
                    .filter(|(_, done)| !done)
                    .map(|(id, _)| id),
            );
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Every job whose history is archived, sorted (for `admin gc`).
    pub async fn archived_jobs(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for shard in self.keys().shards() {
            let some: Vec<String> = self
                .conn()
                .smembers(self.keys().jobs_archived(shard))
                .await?;
            ids.extend(some);
        }
        ids.sort();
        Ok(ids)
    }
}
