//! Following a job on a server through outages: `run --wait --target` must not exit 1 because
//! Redis (or the server's connection to it) went away for a moment while the job went on.
//!
//! A stream that breaks with a retryable status is opened again after a backoff, and the
//! events already shown are skipped (a job's history is append-only, so the first `seen`
//! events of the new stream are the ones already shown). Reads of the final view retry the
//! same way. Giving up takes [`OUTAGE_LIMIT`] without a single successful read.

use std::time::{Duration, Instant};

use serde_json::Value;
use tonic::Code;

use super::remote::{failed, parse};
use crate::api::client::Client;
use crate::api::pb::observability::StreamEventsRequest;

/// How long an outage may last before the wait gives up.
const OUTAGE_LIMIT: Duration = Duration::from_secs(120);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Statuses that say "not now" rather than "no": the server or its Redis is unreachable, a
/// call was cut, or a write lost a race.
fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Aborted
    )
}

/// Backoff state for one outage.
struct Outage {
    started: Instant,
    next: Duration,
    announced: bool,
}

impl Outage {
    fn new() -> Outage {
        Outage {
            started: Instant::now(),
            next: FIRST_BACKOFF,
            announced: false,
        }
    }

    /// Waits before the next try, or hands the error back once the outage is too long.
    async fn wait_or_give_up(&mut self, status: tonic::Status) -> anyhow::Result<()> {
        if !retryable(&status) || self.started.elapsed() > OUTAGE_LIMIT {
            return Err(failed(status));
        }
        if !self.announced {
            eprintln!(
                "lost contact ({}); still waiting, retrying for up to {} s",
                status.message(),
                OUTAGE_LIMIT.as_secs()
            );
            self.announced = true;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

/// Follows `job_id`'s events until its terminal one, calling `each` once per event.
pub(super) async fn follow(
    client: &mut Client,
    job_id: &str,
    mut each: impl FnMut(&Value),
) -> anyhow::Result<()> {
    let mut seen: usize = 0;
    let mut outage: Option<Outage> = None;
    loop {
        match follow_once(client, job_id, &mut seen, &mut each, &mut outage).await {
            Ok(()) => return Ok(()),
            Err(status) => {
                outage
                    .get_or_insert_with(Outage::new)
                    .wait_or_give_up(status)
                    .await?;
            }
        }
    }
}

/// One stream from the start of the history; events up to `seen` were shown already.
async fn follow_once(
    client: &mut Client,
    job_id: &str,
    seen: &mut usize,
    each: &mut impl FnMut(&Value),
    outage: &mut Option<Outage>,
) -> Result<(), tonic::Status> {
    let request = StreamEventsRequest {
        job_id: job_id.into(),
        follow: true,
        heartbeat_interval_ms: 5000,
        limit: 0,
        version: 1,
    };
    let mut stream = client.events.stream_events(request).await?.into_inner();
    let mut index = 0usize;
    while let Some(msg) = stream.message().await? {
        // Anything read means the outage (if any) is over.
        *outage = None;
        let event = parse(&msg.event_json).map_err(|e| tonic::Status::internal(e.to_string()))?;
        if event.get("type").and_then(Value::as_str) == Some("stream_heartbeat") {
            continue;
        }
        index += 1;
        if index > *seen {
            *seen = index;
            each(&event);
        }
    }
    Ok(())
}

/// The job's current JSON, retrying through an outage.
pub(super) async fn get_job(client: &mut Client, job_id: &str) -> anyhow::Result<Value> {
    let mut outage: Option<Outage> = None;
    loop {
        match super::remote::get_job_once(client, job_id).await {
            Ok(record) => return record,
            Err(status) => {
                outage
                    .get_or_insert_with(Outage::new)
                    .wait_or_give_up(status)
                    .await?
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_statuses_are_retried() {
        for code in [
            Code::Unavailable,
            Code::Unknown,
            Code::DeadlineExceeded,
            Code::Aborted,
        ] {
            assert!(retryable(&tonic::Status::new(code, "x")), "{code:?}");
        }
        for code in [
            Code::NotFound,
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Internal,
        ] {
            assert!(!retryable(&tonic::Status::new(code, "x")), "{code:?}");
        }
    }
}
