//! Reading a job's history from its stream (entry id `<seq>-0`).

use redis::AsyncCommands;
use redis::streams::StreamRangeReply;

use super::{Store, StoreError};
use crate::domain::event::{DecodeError, EventEnvelope, decode_stored};
use crate::domain::job::{JobState, evolve};

/// Entries fetched per XRANGE round trip.
const PAGE: usize = 1000;

/// One history entry: its stream id and the decoded event, or why it could not be decoded.
#[derive(Debug)]
pub struct HistoryItem {
    pub stream_id: String,
    pub seq: u64,
    pub event: Result<EventEnvelope, DecodeError>,
}

/// Seq of an entry id `<seq>-0`.
pub(crate) fn seq_of(stream_id: &str) -> u64 {
    stream_id
        .split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

impl Store {
    /// Reads events `from..=to` (inclusive seqs; `to = None` for "to the end").
    pub async fn history(
        &self,
        job_id: &str,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        let key = self.keys().job_events(job_id);
        let mut conn = self.conn();
        let mut out = Vec::new();
        let mut start = from.max(1);
        let end = to.map_or("+".to_string(), |t| format!("{t}-0"));
        loop {
            let reply: StreamRangeReply = conn
                .xrange_count(&key, format!("{start}-0"), &end, PAGE)
                .await?;
            let n = reply.ids.len();
            for entry in reply.ids {
                let seq = seq_of(&entry.id);
                let mut event = match entry.map.get("e") {
                    Some(redis::Value::BulkString(bytes)) => decode_stored(job_id, seq, bytes),
                    _ => Err(DecodeError::Corrupt("entry has no event field".into())),
                };
                // The first event of a batch keeps the id it was appended with.
                if let (Ok(env), Some(redis::Value::BulkString(id))) =
                    (event.as_mut(), entry.map.get("b"))
                {
                    env.event_id = String::from_utf8_lossy(id).into_owned();
                }
                start = seq + 1;
                out.push(HistoryItem {
                    stream_id: entry.id,
                    seq,
                    event,
                });
            }
            if n < PAGE {
                return Ok(out);
            }
        }
    }

    /// Folds the job's whole history into the decider state. Undecodable entries are skipped
    /// (and logged) but still count for the version, so appends keep working.
    pub async fn load_state(&self, job_id: &str) -> Result<JobState, StoreError> {
        // Page by page: a long history is never held decoded in memory at once.
        let mut state = JobState::new(job_id);
        loop {
            let from = state.seq + 1;
            let page = self
                .history(job_id, from, Some(from + PAGE as u64 - 1))
                .await?;
            let n = page.len();
            for item in page {
                match &item.event {
                    Ok(env) => state = evolve(state, env),
                    Err(e) => {
                        tracing::warn!(job_id, stream_id = %item.stream_id, error = %e, "skipping undecodable event")
                    }
                }
                state.seq = state.seq.max(item.seq);
            }
            if n < PAGE {
                return Ok(state);
            }
        }
    }

    /// The current version (last seq) of a job's history; 0 when it has none.
    pub async fn version(&self, job_id: &str) -> Result<u64, StoreError> {
        let key = self.keys().job_events(job_id);
        let reply: StreamRangeReply = self.conn().xrevrange_count(&key, "+", "-", 1).await?;
        Ok(reply.ids.first().map_or(0, |e| seq_of(&e.id)))
    }

    /// Every job id that has a history.
    pub async fn job_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = Vec::new();
        for shard in self.keys().shards() {
            let some: Vec<String> = self
                .conn()
                .smembers(self.keys().jobs_registry(shard))
                .await?;
            ids.extend(some);
        }
        ids.sort();
        Ok(ids)
    }
}
