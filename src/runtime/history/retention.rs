//! Retention: how long a finished job keeps its hot history (`MN_JOB_HISTORY_RETENTION`),
//! and the sweep that archives the ones past it. `serve` runs the sweep on the node holding
//! the leader lease; a local `run` archives its own job at once when retention is 0.

use std::time::Duration;

use tokio::sync::watch;

use super::HistoryError;
use super::archive::{ArchiveOutcome, archive_job};
use crate::runtime::blobs::BlobStore;
use crate::runtime::clock::now_ms;
use crate::store::Store;

/// Retention when `MN_JOB_HISTORY_RETENTION` is unset: three days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3 * 24 * 3600);
/// Jobs archived per sweep at most, so one sweep never holds the leader for long.
const SWEEP_BATCH: usize = 50;

/// Parses `3d`, `12h`, `15m`, `90s` or plain seconds (`3600`); `0` is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 3d, 12h, 15m, 90s or 3600"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use s, m, h or d)"
            ));
        }
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// `MN_JOB_HISTORY_RETENTION`, default [`DEFAULT_RETENTION`]; a bad value names the variable.
pub fn retention_from_env() -> anyhow::Result<Duration> {
    match crate::config::var("MN_JOB_HISTORY_RETENTION") {
        None => Ok(DEFAULT_RETENTION),
        Some(v) => parse_duration(&v).map_err(|e| anyhow::anyhow!("MN_JOB_HISTORY_RETENTION: {e}")),
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    pub archived: Vec<String>,
    /// Jobs to look at again later (views behind, history moved).
    pub deferred: usize,
    pub errors: Vec<(String, String)>,
}

/// Archives finished jobs whose finish lies `retention` or more before `now`.
pub async fn sweep_once(
    store: &Store,
    blobs: &BlobStore,
    retention: Duration,
    now: i64,
) -> Result<SweepReport, HistoryError> {
    let cutoff = now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let mut report = SweepReport::default();
    for job_id in store.archive_candidates(cutoff, SWEEP_BATCH).await? {
        let finished_at = store.job_view(&job_id).await?.map(|v| v.updated_at_ms);
        if finished_at.is_none_or(|t| t > cutoff) {
            continue;
        }
        match archive_job(store, blobs, &job_id, now).await {
            Ok(ArchiveOutcome::Archived(_)) => report.archived.push(job_id),
            Ok(ArchiveOutcome::AlreadyArchived | ArchiveOutcome::NotFinished) => {}
            Ok(ArchiveOutcome::ProjectionBehind { .. } | ArchiveOutcome::Moved) => {
                report.deferred += 1
            }
            Err(e) => report.errors.push((job_id, e.to_string())),
        }
    }
    Ok(report)
}

/// How often the sweep runs: a tenth of the retention, between 1 s and 60 s.
fn interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Sweeps while `is_leader()` says so, until `stop` turns true.
pub async fn run_retention_loop(
    store: Store,
    blobs: BlobStore,
    node: String,
    retention: Duration,
    is_leader: impl Fn() -> bool,
    stop: watch::Receiver<bool>,
) {
    crate::runtime::periodic::while_leader(interval(retention), is_leader, stop, || {
        let (store, blobs, node) = (store.clone(), blobs.clone(), node.clone());
        async move {
            match sweep_once(&store, &blobs, retention, now_ms()).await {
                Ok(r) => {
                    if !r.archived.is_empty() {
                        tracing::info!(archived = r.archived.len(), "history retention sweep");
                        announce(&store, &node, &r.archived).await;
                    }
                    for (job_id, error) in &r.errors {
                        tracing::warn!(job_id, %error, "could not archive job history; will retry");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "history retention sweep failed; retrying"),
            }
        }
    })
    .await
}

/// Tells the cluster this node holds the new archives, so a node that does not share this
/// disk fetches them from here (`runtime::blobs::fetch`).
async fn announce(store: &Store, node: &str, jobs: &[String]) {
    let mut digests = vec![];
    for job_id in jobs {
        if let Ok(Some(record)) = store.archive_record(job_id).await {
            digests.push(record.sha256);
        }
    }
    if let Err(e) = store.announce_blobs(node, &digests).await {
        tracing::warn!(error = %e, "could not announce archive blobs; other nodes may not find them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_or_plain_seconds() {
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn bad_durations_are_refused_clearly() {
        for bad in [
            "",
            "h",
            "-1",
            "1.5h",
            "3 days",
            "3y",
            "1e3",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse_duration("3y").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn sweep_interval_follows_retention_within_bounds() {
        assert_eq!(interval(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(interval(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(interval(DEFAULT_RETENTION), Duration::from_secs(60));
    }
}
