//! `MN_REDIS_MIN_REPLICAS_ACK`: writes that acknowledge something to a user wait for replicas.
//!
//! Redis replicates asynchronously: a master can confirm a write and die before any replica
//! has it, and the promoted replica then never saw it. With `MN_REDIS_MIN_REPLICAS_ACK=N` an
//! acknowledging write (an append: a submission, a step result; a lease acquisition) is sent
//! in one pipeline with `WAIT N timeout`, on the same connection: `WAIT` counts the replicas
//! that have everything this connection wrote so far. Fewer than N in time fails the call
//! with [`StoreError::NotReplicated`] (retryable), so the caller does not acknowledge, and its
//! retry is safe: a retried append is recognised as a DUPLICATE, a retried acquisition by the
//! same owner keeps its epoch.
//!
//! A `PUBLISH` to an unused channel goes between the write and the `WAIT`. It changes no data,
//! but Redis replicates it, which moves this connection's replication offset to the master's
//! current one. Without it a retry that finds the batch already there (written nothing now)
//! would `WAIT` only for this connection's older writes, not for the first attempt's.
//!
//! `WAIT` is not consensus: the replica that confirmed is not necessarily the one Sentinel
//! promotes. Sentinel prefers the replica with the most data, so with one replica (or N equal
//! to the number of replicas) a confirmed write survives a failover of the master alone.

use redis::FromRedisValue;

use super::{Store, StoreError};
use crate::config::{ConfigError, u64_var};

/// Replicated offsets move this channel; nobody subscribes.
const FENCE_CHANNEL: &str = "mirror_neuron:replica-ack";

/// How many replicas must confirm an acknowledged write, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAck {
    pub replicas: u32,
    pub timeout_ms: u64,
}

impl ReplicaAck {
    /// `MN_REDIS_MIN_REPLICAS_ACK` (default 0: off) and `MN_REDIS_REPLICA_ACK_TIMEOUT_MS`
    /// (default 1000).
    pub fn from_env() -> Result<Option<ReplicaAck>, ConfigError> {
        let n = u64_var("MN_REDIS_MIN_REPLICAS_ACK", 0)?;
        let replicas = u32::try_from(n).map_err(|_| ConfigError::Invalid {
            name: "MN_REDIS_MIN_REPLICAS_ACK",
            reason: format!("{n} is not a replica count"),
        })?;
        let timeout_ms = u64_var("MN_REDIS_REPLICA_ACK_TIMEOUT_MS", 1000)?;
        if timeout_ms == 0 {
            // WAIT with 0 waits forever: a dead replica would hang every write.
            return Err(ConfigError::Invalid {
                name: "MN_REDIS_REPLICA_ACK_TIMEOUT_MS",
                reason: "must be at least 1".into(),
            });
        }
        Ok((replicas > 0).then_some(ReplicaAck {
            replicas,
            timeout_ms,
        }))
    }
}

impl Store {
    /// Runs a script call like [`Store::eval`]; with `MN_REDIS_MIN_REPLICAS_ACK` set, waits
    /// for the replicas too, and fails with [`StoreError::NotReplicated`] when too few
    /// confirmed and `wrote(&reply)` (a refusal that wrote nothing need not wait).
    pub async fn eval_replicated<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        wrote: impl Fn(&T) -> bool,
    ) -> Result<T, StoreError> {
        let Some(ack) = self.replica_ack else {
            return self.eval(cmd).await;
        };
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone())
            .cmd("PUBLISH")
            .arg(FENCE_CHANNEL)
            .arg("")
            .ignore()
            .cmd("WAIT")
            .arg(ack.replicas)
            .arg(ack.timeout_ms);
        let (reply, acked): (T, i64) = self.eval_pipeline(&pipe).await?;
        if acked < i64::from(ack.replicas) && wrote(&reply) {
            tracing::warn!(
                acked,
                wanted = ack.replicas,
                "write not confirmed by enough replicas; not acknowledged"
            );
            return Err(StoreError::NotReplicated {
                acked,
                wanted: ack.replicas,
            });
        }
        Ok(reply)
    }
}
