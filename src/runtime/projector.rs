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
use crate::store::{FeedEntry, LoadedProjection, Store, StoreError};

/// The consumer group every projection worker joins.
pub const PROJECTION_GROUP: &str = "projections";

/// How a worker reads and reclaims.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
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
pub async fn run(store: Store, cfg: ProjectorConfig, stats: Arc<ProjectorStats>, mut shutdown: watch::Receiver<bool>) {
    if let Err(e) = store.ensure_feed_group(&cfg.group).await {
        tracing::error!(error = %e, "cannot create the projection consumer group");
    }
    let mut conn = None;
    let mut claim_from = "0-0".to_string();
    let mut backoff = Duration::from_millis(100);
    while !*shutdown.borrow() {
        let step = async {
            let reclaimed = store.reclaim_feed(&cfg.group, &cfg.consumer, cfg.claim_idle, &claim_from, cfg.batch).await?;
            claim_from = reclaimed.next_start;
            if !reclaimed.entries.is_empty() {
                process_and_ack(&store, &cfg.group, reclaimed.entries, &stats).await?;
            }
            if conn.is_none() {
                conn = Some(store.blocking_conn(cfg.block).await?);
            }
            let c = conn.as_mut().expect("connection set just above");
            let entries = store.read_feed_group(c, &cfg.group, &cfg.consumer, cfg.batch, cfg.block).await?;
            process_and_ack(&store, &cfg.group, entries, &stats).await
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
pub async fn process_and_ack(store: &Store, group: &str, entries: Vec<FeedEntry>, stats: &ProjectorStats) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = entries.iter().map(|e| e.stream_id.clone()).collect();
    apply_batch(store, entries, stats).await?;
    store.ack_feed(group, &ids).await
}

/// Applies a batch to the views without acknowledging it (a worker that dies here leaves the
/// entries pending; whoever reclaims them finds the views already past them and skips).
pub async fn apply_batch(store: &Store, entries: Vec<FeedEntry>, stats: &ProjectorStats) -> Result<(), StoreError> {
    stats.entries.fetch_add(entries.len() as u64, Ordering::Relaxed);
    let mut by_job: BTreeMap<String, Vec<EventEnvelope>> = BTreeMap::new();
    for entry in entries {
        match &entry.event {
            Ok(env) => by_job.entry(env.job_id.clone()).or_default().push(env.clone()),
            Err(e) => {
                tracing::warn!(stream_id = %entry.stream_id, job_id = %entry.job_id, error = %e, "dead-lettering undecodable feed entry");
                store.dead_letter_feed_entry(&entry, &e.to_string()).await?;
                stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let mut pending: Vec<(String, Vec<EventEnvelope>)> = by_job.into_iter().collect();
    for _ in 0..CAS_ATTEMPTS {
        if pending.is_empty() {
            return Ok(());
        }
        let mut loaded = Vec::with_capacity(pending.len());
        let mut changed = Vec::with_capacity(pending.len());
        for (job_id, events) in pending {
            let l = project(store, &job_id, &events, stats).await?;
            // Everything was already applied (a redelivery): nothing to write.
            if l.projection.job.last_seq > l.loaded_seq {
                loaded.push(l);
                changed.push((job_id, events));
            }
        }
        let results = store.write_projections(&loaded).await?;
        pending = changed
            .into_iter()
            .zip(results)
            .filter_map(|(job, moved)| moved.map(|_| job))
            .collect();
        stats.cas_retries.fetch_add(pending.len() as u64, Ordering::Relaxed);
    }
    Err(StoreError::Protocol {
        script: "apply_job",
        detail: format!("views of {} job(s) kept moving after {CAS_ATTEMPTS} attempts", pending.len()),
    })
}

/// Loads a job's views and applies `events` (plus any gap filled from history).
async fn project(store: &Store, job_id: &str, events: &[EventEnvelope], stats: &ProjectorStats) -> Result<LoadedProjection, StoreError> {
    let agent_ids = touched(events.iter());
    let mut loaded = store.load_projection(job_id, &agent_ids).await?;
    let mut queue: Vec<EventEnvelope> = events.to_vec();
    queue.sort_by_key(|e| e.seq);
    let first_new = queue.iter().find(|e| e.seq > loaded.projection.job.last_seq).map(|e| e.seq);
    if let Some(first) = first_new
        && first > loaded.projection.job.last_seq + 1
    {
        let gap = store.history(job_id, loaded.projection.job.last_seq + 1, Some(first - 1)).await?;
        let gap: Vec<EventEnvelope> = gap.into_iter().filter_map(|h| h.event.ok()).collect();
        let extra: Vec<String> =
            touched(gap.iter()).into_iter().filter(|a| !loaded.projection.agents.contains_key(a)).collect();
        if !extra.is_empty() {
            let more = store.load_projection(job_id, &extra).await?;
            loaded.projection.agents.extend(more.projection.agents);
        }
        queue.splice(0..0, gap);
    }
    for env in &queue {
        if loaded.projection.apply(env) {
            stats.applied.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(loaded)
}

fn touched<'a>(events: impl Iterator<Item = &'a EventEnvelope>) -> Vec<String> {
    let mut ids: Vec<String> = events.filter_map(|e| agents_touched(&e.payload)).map(str::to_string).collect();
    ids.sort();
    ids.dedup();
    ids
}
