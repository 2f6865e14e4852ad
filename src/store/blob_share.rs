//! Sharing blobs between nodes that do not share a disk, through Redis.
//!
//! Each node announces the blobs it holds (`{ns}:blob:<sha256>:holders`, a set of node names).
//! A node that needs a blob it lacks appends a request to a holder's request stream
//! (`{ns}:node:{N}:blob_requests`) naming the digest and a fresh reply id; the holder's `serve`
//! pushes the bytes (or why not) to the short-lived list `{ns}:blob_reply:<id>`, which the
//! requester BLPOPs with a timeout. The requester verifies the digest; nothing here trusts it.

use std::time::Duration;

use super::BlockingConn;
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};

use super::{Store, StoreError};

/// How long an unanswered reply list may live (a requester that gave up never pops it).
const REPLY_TTL_S: i64 = 60;
/// Requests kept on a node's stream (old ones are useless: their requesters gave up).
const REQUESTS_KEPT: usize = 1000;
/// First byte of a reply: the blob's bytes follow, or an error message does.
const TAG_BYTES: u8 = 1;
const TAG_REFUSED: u8 = 0;

/// A request read from a node's request stream (fields are unchecked outside input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRequest {
    pub sha256: String,
    pub reply_id: String,
    /// The asking node, for logs.
    pub from: String,
}

/// A holder's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobAnswer {
    Bytes(Vec<u8>),
    /// The holder could not send it (no longer stored, corrupt, bad request): why.
    Refused(String),
}

/// A reply id is 32 lower-case hex digits, so a forged request cannot name another key.
pub fn is_reply_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Store {
    /// Records that `node` holds each of `digests`.
    pub async fn announce_blobs(&self, node: &str, digests: &[String]) -> Result<(), StoreError> {
        if digests.is_empty() {
            return Ok(());
        }
        let _: Vec<i64> = self
            .pipelined(
                digests,
                |d| self.keys().shard_of(d),
                |pipe, d| {
                    pipe.sadd(self.keys().blob_holders(d), node);
                },
            )
            .await?;
        Ok(())
    }

    /// Records that `node` no longer holds `digest` (after removing it).
    pub async fn forget_blob(&self, node: &str, digest: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .srem(self.keys().blob_holders(digest), node)
            .await?;
        Ok(())
    }

    /// The nodes that announced holding `digest`, sorted.
    pub async fn blob_holders(&self, digest: &str) -> Result<Vec<String>, StoreError> {
        let mut nodes: Vec<String> = self
            .conn()
            .smembers(self.keys().blob_holders(digest))
            .await?;
        nodes.sort();
        Ok(nodes)
    }

    /// Asks `holder` for `digest` and waits up to `wait` for its answer; `None` on no answer.
    pub async fn request_blob(
        &self,
        holder: &str,
        digest: &str,
        from: &str,
        wait: Duration,
    ) -> Result<Option<BlobAnswer>, StoreError> {
        let reply_id = uuid::Uuid::new_v4().simple().to_string();
        let reply_key = self.keys().blob_reply(&reply_id);
        // Blocking on the shared connection would stall every other command.
        let mut conn = self.blocking_conn(wait).await?;
        let _: String = self
            .conn()
            .xadd_maxlen(
                self.keys().node_blob_requests(holder),
                redis::streams::StreamMaxlen::Approx(REQUESTS_KEPT),
                "*",
                &[("sha256", digest), ("reply", &reply_id), ("from", from)],
            )
            .await?;
        let popped: Option<(String, Vec<u8>)> =
            conn.blpop(&reply_key, wait.as_secs_f64().max(0.1)).await?;
        Ok(popped.map(|(_, raw)| decode_answer(&raw)))
    }

    /// Reads requests addressed to `node` after stream id `after`, blocking up to `block`.
    pub async fn read_blob_requests(
        &self,
        conn: &mut BlockingConn,
        node: &str,
        after: &str,
        block: Duration,
    ) -> Result<Vec<(String, BlobRequest)>, StoreError> {
        let opts = StreamReadOptions::default()
            .block(block.as_millis() as usize)
            .count(16);
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[self.keys().node_blob_requests(node)], &[after], &opts)
            .await?;
        let field = |m: &std::collections::HashMap<String, redis::Value>, k: &str| match m.get(k) {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|e| {
                let req = BlobRequest {
                    sha256: field(&e.map, "sha256"),
                    reply_id: field(&e.map, "reply"),
                    from: field(&e.map, "from"),
                };
                (e.id, req)
            })
            .collect())
    }

    /// Pushes an answer to the requester's reply list (which expires if nobody pops it).
    /// A reply id that is not one this code makes is ignored.
    pub async fn answer_blob(&self, reply_id: &str, answer: &BlobAnswer) -> Result<(), StoreError> {
        if !is_reply_id(reply_id) {
            return Ok(());
        }
        let key = self.keys().blob_reply(reply_id);
        let mut pipe = redis::pipe();
        pipe.rpush(&key, encode_answer(answer))
            .ignore()
            .expire(&key, REPLY_TTL_S)
            .ignore();
        let () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }
}

fn encode_answer(answer: &BlobAnswer) -> Vec<u8> {
    match answer {
        BlobAnswer::Bytes(b) => {
            let mut out = Vec::with_capacity(b.len() + 1);
            out.push(TAG_BYTES);
            out.extend_from_slice(b);
            out
        }
        BlobAnswer::Refused(why) => {
            let mut out = vec![TAG_REFUSED];
            out.extend_from_slice(why.as_bytes());
            out
        }
    }
}

fn decode_answer(raw: &[u8]) -> BlobAnswer {
    match raw.split_first() {
        Some((&TAG_BYTES, rest)) => BlobAnswer::Bytes(rest.to_vec()),
        Some((&TAG_REFUSED, rest)) => {
            BlobAnswer::Refused(String::from_utf8_lossy(rest).into_owned())
        }
        _ => BlobAnswer::Refused("the holder sent an answer this build cannot read".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_and_reply_ids_are_checked() {
        for a in [
            BlobAnswer::Bytes(vec![]),
            BlobAnswer::Bytes(b"\x00\x01data".to_vec()),
            BlobAnswer::Refused("gone".into()),
        ] {
            assert_eq!(decode_answer(&encode_answer(&a)), a);
        }
        assert!(matches!(decode_answer(b""), BlobAnswer::Refused(_)));
        assert!(is_reply_id(&uuid::Uuid::new_v4().simple().to_string()));
        for bad in ["", "x", "../../k", &"A".repeat(32), &"a".repeat(33)] {
            assert!(!is_reply_id(bad), "{bad}");
        }
    }
}
