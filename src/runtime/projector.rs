//! Projection workers: a consumer group on the feed that folds events into the read views.
//!
//! Guarantees, and how they are kept:
//! - idempotent: a view records the last seq it applied and skips older events;
//! - ack after write: entries are acknowledged only once their views are written;
//! - crash-safe: entries a dead worker held are taken over with XAUTOCLAIM after `claim_idle`;
//! - ordered per job: if an event arrives before an earlier one (a reclaimed entry), the gap is
//!   filled from the job's own history, which is the source of truth;
//! - concurrent workers: views are written with compare-and-set on their seq (see
//!   `projections/apply_job.lua`); a loser reloads and reapplies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::domain::event::EventEnvelope;
use crate::domain::view::agents_touched;
use crate::store::{FeedEntry, LoadedProjection, Shard, Store, StoreError};

pub use crate::store::PROJECTION_GROUP;

/// Most events one job's views take in one pass.
const PASS_EVENTS: u64 = 2_000;

/// How a worker reads and reclaims.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// The feed shard this worker reads (the only one on a single Redis).
    pub shard: Shard,
    pub group: String,
    /// Unique per worker (node name + pid + task): pending entries are tracked per consumer.
    pub consumer: String,
    pub batch: usize,
    pub block: Duration,
    /// Entries pending longer than this are presumed abandoned and reclaimed.
    pub claim_idle: Duration,
}

impl ProjectorConfig {
    pub fn new(consumer: impl Into<String>) -> Self {
        ProjectorConfig {
            shard: Shard(0),
            group: PROJECTION_GROUP.to_string(),
            consumer: consumer.into(),
            batch: 1000,
            block: Duration::from_millis(1000),
            claim_idle: Duration::from_secs(30),
        }
    }
}

/// Counters a worker keeps (read by benchmarks, metrics and tests).
#[derive(Debug, Default)]
pub struct ProjectorStats {
    pub entries: AtomicU64,
    pub applied: AtomicU64,
    pub skipped: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub cas_retries: AtomicU64,
}

/// Attempts per job when other workers keep moving its view.
const CAS_ATTEMPTS: usize = 8;

/// Runs a worker until `shutdown` turns true. Errors from Redis are logged and retried.
pub async fn run(
    store: Store,
    cfg: ProjectorConfig,
    stats: Arc<ProjectorStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = store.ensure_feed_group(cfg.shard, &cfg.group).await {
        tracing::error!(error = %e, "cannot create the projection consumer group");
    }
    let mut conn = None;
    let mut claim_from = "0-0".to_string();
    let mut backoff = Duration::from_millis(100);
    while !*shutdown.borrow() {
        let step = async {
            let reclaimed = store
                .reclaim_feed(
                    cfg.shard,
                    &cfg.group,
                    &cfg.consumer,
                    cfg.claim_idle,
                    &claim_from,
                    cfg.batch,
                )
                .await?;
            claim_from = reclaimed.next_start;
            if !reclaimed.entries.is_empty() {
                process_and_ack(&store, cfg.shard, &cfg.group, reclaimed.entries, &stats).await?;
            }
            if conn.is_none() {
                conn = Some(store.blocking_conn(cfg.block).await?);
            }
            let c = conn.as_mut().expect("connection set just above");
            let entries = store
                .read_feed_group(
                    c,
                    cfg.shard,
                    &cfg.group,
                    &cfg.consumer,
                    cfg.batch,
                    cfg.block,
                )
                .await?;
            process_and_ack(&store, cfg.shard, &cfg.group, entries, &stats).await
        };
        tokio::select! {
            res = step => match res {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, consumer = %cfg.consumer, "projection worker error; retrying");
                    conn = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            },
            _ = shutdown.changed() => {}
        }
    }
}

/// Applies a batch to the views, then acknowledges it.
pub async fn process_and_ack(
    store: &Store,
    shard: Shard,
    group: &str,
    entries: Vec<FeedEntry>,
    stats: &ProjectorStats,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = entries.iter().map(|e| e.stream_id.clone()).collect();
    apply_batch(store, entries, stats).await?;
    store.ack_feed(shard, group, &ids).await
}

/// Applies a batch to the views without acknowledging it (a worker that dies here leaves the
/// entries pending; whoever reclaims them finds the views already past them and skips).
pub async fn apply_batch(
    store: &Store,
    entries: Vec<FeedEntry>,
    stats: &ProjectorStats,
) -> Result<(), StoreError> {
    stats
        .entries
        .fetch_add(entries.len() as u64, Ordering::Relaxed);
    // Per job, only the highest announced seq matters: the events come from the history.
    let mut upto: BTreeMap<String, u64> = BTreeMap::new();
    for entry in &entries {
        match entry.range() {
            Some((job, _, last)) => {
                let e = upto.entry(job.to_string()).or_default();
                *e = (*e).max(last);
            }
            None => {
                tracing::warn!(stream_id = %entry.stream_id, "dead-lettering malformed feed entry");
                let reason = format!(
                    "malformed feed entry (j={:?}, f={:?}, l={:?}): needs a valid job id and seq range",
                    entry.job_id, entry.first_seq, entry.last_seq
                );
                store
                    .dead_letter_event(None, &entry.stream_id, None, &reason)
                    .await?;
                stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let mut pending: Vec<(String, u64)> = upto.into_iter().collect();
    let mut attempt = 0;
    while attempt < CAS_ATTEMPTS {
        attempt += 1;
        if pending.is_empty() {
            return Ok(());
        }
        // Concurrent requests on the multiplexed connection are pipelined by the client.
        let projected = futures::future::try_join_all(
            pending
                .iter()
                .map(|(job, upto)| project(store, job, *upto, stats)),
        )
        .await?;
        let mut jobs = Vec::new();
        let mut loaded = Vec::new();
        let mut counts = Vec::new();
        for ((job, upto), p) in pending.into_iter().zip(projected) {
            if let Some((l, applied)) = p {
                jobs.push((job, upto));
                loaded.push(l);
                counts.push(applied);
            }
        }
        let results = store.write_projections(&loaded).await?;
        let mut retry = Vec::new();
        let mut more = Vec::new();
        for (((job, applied), moved), l) in jobs.into_iter().zip(counts).zip(results).zip(&loaded) {
            match moved {
                // Counted only once written: a reapplication after a lost CAS is not new work.
                None => {
                    stats.applied.fetch_add(applied, Ordering::Relaxed);
                    if l.projection.job.last_seq < job.1 && applied > 0 {
                        more.push(job);
                    }
                }
                Some(_) => retry.push(job),
            }
        }
        stats
            .cas_retries
            .fetch_add(retry.len() as u64, Ordering::Relaxed);
        if retry.is_empty() {
            // Only slices are left: they are progress, not contention.
            attempt = 0;
        }
        pending = retry;
        pending.extend(more);
    }
    Err(StoreError::Protocol {
        script: "apply_job",
        detail: format!(
            "views of {} job(s) kept moving after {CAS_ATTEMPTS} attempts",
            pending.len()
        ),
    })
}

/// Loads a job's views and applies its history after the view's seq, up to `upto`.
/// Returns `None` when the view is already there (a redelivered entry), else the projection
/// and the number of events applied.
async fn project(
    store: &Store,
    job_id: &str,
    upto: u64,
    stats: &ProjectorStats,
) -> Result<Option<(LoadedProjection, u64)>, StoreError> {
    let mut loaded = store.load_projection(job_id, &[]).await?;
    let from = loaded.projection.job.last_seq + 1;
    if from > upto {
        stats.skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(None);
    }
    // A bounded slice per pass, so a worker that is far behind (or a job that appended a
    // lot at once) never holds a long history decoded in memory; `apply_batch` comes back
    // for the rest.
    let upto = upto.min(from + PASS_EVENTS - 1);
    let history = store.history(job_id, from, Some(upto)).await?;
    let agent_ids = touched(history.iter().filter_map(|h| h.event.as_ref().ok()));
    loaded.projection.agents = store.load_agent_rows(job_id, &agent_ids).await?;
    let mut applied = 0;
    for item in history {
        match item.event {
            Ok(env) => {
                if loaded.projection.apply(&env) {
                    applied += 1;
                }
            }
            Err(e) => {
                tracing::warn!(job_id, stream_id = %item.stream_id, error = %e, "dead-lettering undecodable event");
                store
                    .dead_letter_event(
                        Some(job_id),
                        &item.stream_id,
                        Some(item.seq),
                        &e.to_string(),
                    )
                    .await?;
                stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                loaded.projection.skip_undecodable(item.seq);
            }
        }
    }
    Ok(Some((loaded, applied)))
}

fn touched<'a>(events: impl Iterator<Item = &'a EventEnvelope>) -> Vec<String> {
    let mut ids: Vec<String> = events
        .flat_map(|e| agents_touched(&e.payload))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
