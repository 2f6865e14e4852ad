//! Handing executor work between nodes: a work stream per node (read by the node's consumer
//! group), a results stream per job (read by whichever node owns the job), and an inbox per
//! node for the leader's commands.
//!
//! A work item is everything a node needs to run one step without reading the job: the agent's
//! spec, the message, the agent's state before the step, and where the bundle lives. It carries
//! the owner's lease epoch so a node can skip work whose owner has been replaced.

use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Value as RValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, StoreError};
use crate::domain::agents::StepOutcome;
use crate::domain::manifest::NodeSpec;
use crate::domain::message::Message;
use crate::domain::scheduler::Allocation;

/// Consumer group every node reads its own work stream with.
pub const WORK_GROUP: &str = "workers";

/// One step to run somewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    pub job_id: String,
    pub agent: NodeSpec,
    pub message: Message,
    pub prev_state: Value,
    pub attempt: u32,
    pub first_run: bool,
    /// The owner's lease epoch when it placed the work.
    pub epoch: u64,
    pub bundle_path: Option<String>,
    /// Archived payloads, for nodes that cannot see `bundle_path`.
    #[serde(default)]
    pub bundle_digest: Option<String>,
    /// How often this item was moved off a lost or drained node.
    #[serde(default)]
    pub moves: u32,
    /// What the scheduler allocated to this step (resources, device ids); the node hands it
    /// to the executor. Dropped when the item is moved to a node it was not planned for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<Allocation>,
    /// The allocation's GPUs, for CUDA_VISIBLE_DEVICES.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visible_gpus: Vec<String>,
    /// The deployment version the agent ran when the step was placed: once a deployment
    /// replaces the agent, the node stops the step (the owner redoes it under the new spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_version: Option<crate::domain::deployment::Version>,
}

/// What a node reports back for a work item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkResult {
    pub agent_id: String,
    pub message_id: String,
    pub attempt: u32,
    pub epoch: u64,
    /// The node that ran it.
    pub node: String,
    pub result: Result<StepOutcome, Value>,
}

/// A command from the leader to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum InboxCommand {
    /// Take the job's lease and run it.
    Assign { job_id: String },
    /// Stop running the job and give its lease back (drain deadline passed).
    Release { job_id: String },
}

fn decode<T: for<'de> Deserialize<'de>>(
    map: &std::collections::HashMap<String, RValue>,
) -> Option<T> {
    match map.get("w") {
        Some(RValue::BulkString(b)) => serde_json::from_slice(b).ok(),
        _ => None,
    }
}

fn encode<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Store {
    /// Creates a node's work group (idempotent).
    pub async fn ensure_work_group(&self, node: &str) -> Result<(), StoreError> {
        let res: redis::RedisResult<()> = self
            .conn()
            .xgroup_create_mkstream(self.keys().node_work(node), WORK_GROUP, "0")
            .await;
        match res {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    /// Places a work item on `node`'s stream.
    pub async fn dispatch_work(&self, node: &str, item: &WorkItem) -> Result<String, StoreError> {
        Ok(self
            .conn()
            .xadd(self.keys().node_work(node), "*", &[("w", encode(item))])
            .await?)
    }

    /// Reads work for `node`: `pending` re-reads what this consumer was given before (after a
    /// restart), otherwise new items, blocking up to `block`.
    pub async fn read_work(
        &self,
        conn: &mut super::BlockingConn,
        node: &str,
        consumer: &str,
        pending: bool,
        block: Duration,
        count: usize,
    ) -> Result<Vec<(String, Option<WorkItem>)>, StoreError> {
        let mut opts = StreamReadOptions::default()
            .group(WORK_GROUP, consumer)
            .count(count);
        if !pending {
            opts = opts.block(block.as_millis() as usize);
        }
        let id = if pending { "0" } else { ">" };
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[self.keys().node_work(node)], &[id], &opts)
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|e| (e.id.clone(), decode(&e.map)))
            .collect())
    }

    /// Marks a work item done and removes it from the stream.
    pub async fn ack_work(&self, node: &str, id: &str) -> Result<(), StoreError> {
        let key = self.keys().node_work(node);
        let mut pipe = redis::pipe();
        pipe.xack(&key, WORK_GROUP, &[id]).xdel(&key, &[id]);
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// Items on a node's work stream not yet done (queued or running).
    pub async fn pending_work(&self, node: &str) -> Result<u64, StoreError> {
        Ok(self.conn().xlen(self.keys().node_work(node)).await?)
    }

    /// [`Store::pending_work`] of several nodes, in one round trip.
    pub async fn pending_work_of(&self, nodes: &[String]) -> Result<Vec<u64>, StoreError> {
        if nodes.is_empty() {
            return Ok(vec![]);
        }
        self.pipelined(
            nodes,
            |n| self.keys().shard_of(n),
            |pipe, n| {
                pipe.xlen(self.keys().node_work(n));
            },
        )
        .await
    }

    /// Takes every unfinished item off `node`'s stream: those its consumer holds (XAUTOCLAIM)
    /// and those never delivered. The caller re-places them, then acks them here.
    pub async fn reclaim_work(
        &self,
        node: &str,
        claimer: &str,
    ) -> Result<Vec<(String, Option<WorkItem>)>, StoreError> {
        self.ensure_work_group(node).await?;
        let key = self.keys().node_work(node);
        let mut out = vec![];
        let mut start = "0-0".to_string();
        loop {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&key)
                .arg(WORK_GROUP)
                .arg(claimer)
                .arg(0)
                .arg(&start)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut self.conn())
                .await?;
            for e in reply.claimed {
                out.push((e.id.clone(), decode(&e.map)));
            }
            if reply.next_stream_id == "0-0" {
                break;
            }
            start = reply.next_stream_id;
        }
        let opts = StreamReadOptions::default()
            .group(WORK_GROUP, claimer)
            .count(10_000);
        let fresh: Option<StreamReadReply> =
            self.conn().xread_options(&[&key], &[">"], &opts).await?;
        for e in fresh.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            out.push((e.id.clone(), decode(&e.map)));
        }
        Ok(out)
    }

    /// Reports a work item's result to the job's owner.
    pub async fn push_result(&self, job_id: &str, result: &WorkResult) -> Result<(), StoreError> {
        let _: String = self
            .conn()
            .xadd(
                self.keys().job_results(job_id),
                "*",
                &[("w", encode(result))],
            )
            .await?;
        Ok(())
    }

    /// Results of `job_id` after stream id `after`, blocking up to `block` for the first.
    pub async fn read_results(
        &self,
        conn: &mut super::BlockingConn,
        job_id: &str,
        after: &str,
        block: Duration,
    ) -> Result<Vec<(String, Option<WorkResult>)>, StoreError> {
        read_after(conn, &self.keys().job_results(job_id), after, block, 1_000).await
    }

    /// Drops a finished job's results stream.
    pub async fn drop_results(&self, job_id: &str) -> Result<(), StoreError> {
        let _: () = self.conn().del(self.keys().job_results(job_id)).await?;
        Ok(())
    }

    /// Sends the leader's command to `node`.
    pub async fn send_to_node(&self, node: &str, command: &InboxCommand) -> Result<(), StoreError> {
        let _: String = self
            .conn()
            .xadd_maxlen(
                self.keys().node_inbox(node),
                redis::streams::StreamMaxlen::Approx(1_000),
                "*",
                &[("w", encode(command))],
            )
            .await?;
        Ok(())
    }

    /// Commands for `node` after stream id `after`, blocking up to `block`.
    pub async fn read_inbox(
        &self,
        conn: &mut super::BlockingConn,
        node: &str,
        after: &str,
        block: Duration,
    ) -> Result<Vec<(String, Option<InboxCommand>)>, StoreError> {
        read_after(conn, &self.keys().node_inbox(node), after, block, 100).await
    }
}

/// Entries of `key` after `after` (plain XREAD, no group), decoded; blocks up to `block`.
async fn read_after<T: for<'de> Deserialize<'de>>(
    conn: &mut super::BlockingConn,
    key: &str,
    after: &str,
    block: Duration,
    count: usize,
) -> Result<Vec<(String, Option<T>)>, StoreError> {
    let opts = StreamReadOptions::default()
        .block(block.as_millis() as usize)
        .count(count);
    let reply: Option<StreamReadReply> = conn.xread_options(&[key], &[after], &opts).await?;
    Ok(reply
        .into_iter()
        .flat_map(|r| r.keys)
        .flat_map(|k| k.ids)
        .map(|e| (e.id.clone(), decode(&e.map)))
        .collect())
}

impl Store {
    /// Whether `node`'s work stream still holds the item for this step (it is queued or
    /// running there), so a new owner can wait for it instead of running it again.
    pub async fn holds_work(
        &self,
        node: &str,
        job_id: &str,
        agent_id: &str,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        let reply: redis::streams::StreamRangeReply = self
            .conn()
            .xrange_count(self.keys().node_work(node), "-", "+", 100_000)
            .await?;
        Ok(reply.ids.iter().any(|e| {
            decode::<WorkItem>(&e.map).is_some_and(|w| {
                w.job_id == job_id
                    && w.agent.node_id == agent_id
                    && w.message.message_id == message_id
            })
        }))
    }
}
