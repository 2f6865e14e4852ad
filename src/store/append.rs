//! The fenced, optimistic append (one Lua script: check epoch, check version, XADD job + feed).

use redis::Value;

use super::{Store, StoreError};
use crate::domain::event::{EventEnvelope, JobEvent, SCHEMA_VERSION, encode};

/// What a successful append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The events are now at `first..=last`.
    Appended { first: u64, last: u64 },
    /// The same batch (recognised by its first event id) was already there: a retry after a
    /// lost reply. Nothing was written twice.
    AlreadyAppended { first: u64, last: u64 },
}

impl AppendOutcome {
    /// The stream version after the append.
    pub fn last_seq(self) -> u64 {
        match self {
            AppendOutcome::Appended { last, .. } | AppendOutcome::AlreadyAppended { last, .. } => {
                last
            }
        }
    }
}

/// Why an append was refused. The first three are expected outcomes of concurrency.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Someone appended since the writer loaded the job. Caller: reload, decide again, retry.
    #[error("version conflict: expected {expected}, stream is at {actual}")]
    Conflict { expected: u64, actual: u64 },
    /// A newer lease epoch exists. Caller: stop acting for this job (it has a new owner).
    #[error("stale lease epoch {writer}: current epoch is {current}")]
    StaleEpoch { writer: u64, current: u64 },
    /// The writer used an epoch that was never issued. A bug in the caller.
    #[error("lease epoch {writer} was never issued (current epoch is {current})")]
    FutureEpoch { writer: u64, current: u64 },
    /// The events do not form a batch that follows `expected` (a bug in the caller).
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Wraps payloads into envelopes numbered after `expected`, stamped with `now_ms`. Only the
/// first gets an event id (a UUIDv7): a batch that starts with it is recognised if it is
/// retried; the rest are known by (job, seq) and carry none.
pub fn seal(
    job_id: &str,
    expected: u64,
    epoch: u64,
    now_ms: i64,
    causation_id: Option<&str>,
    correlation_id: Option<&str>,
    payloads: Vec<JobEvent>,
) -> Vec<EventEnvelope> {
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| EventEnvelope {
            event_id: if i == 0 {
                uuid::Uuid::now_v7().to_string()
            } else {
                String::new()
            },
            job_id: job_id.to_string(),
            seq: expected + 1 + i as u64,
            event_type: payload.type_name().to_string(),
            schema_version: SCHEMA_VERSION,
            timestamp_ms: now_ms,
            epoch,
            causation_id: causation_id.map(str::to_string),
            correlation_id: correlation_id.map(str::to_string),
            payload,
        })
        .collect()
}

impl Store {
    /// Appends `events` (sealed with seqs `expected+1..`) to the job's history, fenced by
    /// `epoch`, and mirrors them onto the feed, atomically.
    pub async fn append(
        &self,
        job_id: &str,
        expected: u64,
        epoch: u64,
        events: &[EventEnvelope],
    ) -> Result<AppendOutcome, AppendError> {
        check_batch(job_id, expected, epoch, events)?;
        let keys = self.keys();
        let (stream, epoch_key, feed, registry, archive) = (
            keys.job_events(job_id),
            keys.job_lease_epoch(job_id),
            keys.feed(keys.shard_of(job_id)),
            keys.jobs_registry(keys.shard_of(job_id)),
            keys.job_archive(job_id),
        );
        let mut cmd = self
            .scripts()
            .append
            .evalsha(&[&stream, &epoch_key, &feed, &registry, &archive]);
        cmd.arg(job_id).arg(expected).arg(epoch).arg(events.len());
        for env in events {
            cmd.arg(&env.event_id).arg(&env.event_type).arg(encode(env));
        }
        let started = std::time::Instant::now();
        let result = match self.eval_replicated(&cmd, |r: &Vec<Value>| wrote(r)).await {
            Ok(reply) => parse_reply(&reply),
            Err(e) => Err(e.into()),
        };
        crate::metrics::append_finished(events, started.elapsed(), outcome_label(&result));
        result
    }
}

/// True when the reply says the batch is in the stream (now or from an earlier try): only
/// then does `MN_REDIS_MIN_REPLICAS_ACK` hold the acknowledgement back until replicas have it.
fn wrote(reply: &[Value]) -> bool {
    parse_reply(reply).is_ok()
}

/// The `outcome` label of the append metrics.
fn outcome_label(result: &Result<AppendOutcome, AppendError>) -> &'static str {
    match result {
        Ok(AppendOutcome::Appended { .. }) => "appended",
        Ok(AppendOutcome::AlreadyAppended { .. }) => "duplicate",
        Err(AppendError::Conflict { .. }) => "conflict",
        Err(AppendError::StaleEpoch { .. }) => "stale_epoch",
        Err(_) => "error",
    }
}

fn check_batch(
    job_id: &str,
    expected: u64,
    epoch: u64,
    events: &[EventEnvelope],
) -> Result<(), AppendError> {
    if events.is_empty() {
        return Err(AppendError::InvalidBatch("no events".into()));
    }
    if events[0].event_id.is_empty() {
        return Err(AppendError::InvalidBatch(
            "the first event of a batch needs an id (retries are recognised by it)".into(),
        ));
    }
    for (i, env) in events.iter().enumerate() {
        let want = expected + 1 + i as u64;
        if env.seq != want || env.job_id != job_id || env.epoch != epoch {
            return Err(AppendError::InvalidBatch(format!(
                "event {} has job {} seq {} epoch {}, expected job {job_id} seq {want} epoch {epoch}",
                env.event_id, env.job_id, env.seq, env.epoch
            )));
        }
    }
    Ok(())
}

fn parse_reply(reply: &[Value]) -> Result<AppendOutcome, AppendError> {
    let word = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let num = |i: usize| -> Result<u64, AppendError> {
        match reply.get(i) {
            Some(Value::Int(n)) if *n >= 0 => Ok(*n as u64),
            other => Err(StoreError::Protocol {
                script: "append",
                detail: format!("{other:?}"),
            }
            .into()),
        }
    };
    let Some(status) = reply.first().map(word) else {
        return Err(StoreError::Protocol {
            script: "append",
            detail: "empty reply".into(),
        }
        .into());
    };
    match status.as_str() {
        "OK" => Ok(AppendOutcome::Appended {
            first: num(1)?,
            last: num(2)?,
        }),
        "DUPLICATE" => Ok(AppendOutcome::AlreadyAppended {
            first: num(1)?,
            last: num(2)?,
        }),
        "CONFLICT" => Err(AppendError::Conflict {
            expected: num(1)?,
            actual: num(2)?,
        }),
        "STALE_EPOCH" => Err(AppendError::StaleEpoch {
            writer: num(1)?,
            current: num(2)?,
        }),
        "FUTURE_EPOCH" => Err(AppendError::FutureEpoch {
            writer: num(1)?,
            current: num(2)?,
        }),
        other => Err(StoreError::Protocol {
            script: "append",
            detail: other.to_string(),
        }
        .into()),
    }
}
