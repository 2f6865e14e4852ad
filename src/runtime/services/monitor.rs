//! The per-node health monitor (core-spec 9.1): the node re-checks the instances it hosts
//! (those with no node are checked by any node) that have checks when they are due by their
//! own `interval_ms`, and checks an instance registered (or registered again, as a deployment
//! replacing its agent does) within a second; `MN_SERVICE_CHECK_INTERVAL_MS` bounds how long a
//! round waits (first tick after 100 ms). It keeps the
//! health in memory (thresholds count consecutive failures across rounds), and records
//! `service_health_changed` on the instance's job only when the status changes.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{checks, registry};
use crate::domain::job::JobCommand;
use crate::domain::service::{Health, HealthStatus, ServiceRecord};
use crate::store::Store;

/// Default re-check period.
pub const DEFAULT_INTERVAL_MS: u64 = 10_000;
const FIRST_TICK: Duration = Duration::from_millis(100);

/// The monitor's period: `MN_SERVICE_CHECK_INTERVAL_MS`, else 10 s.
pub fn interval() -> Duration {
    let ms = crate::config::u64_var("MN_SERVICE_CHECK_INTERVAL_MS", DEFAULT_INTERVAL_MS)
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "using the default service check interval");
            DEFAULT_INTERVAL_MS
        });
    Duration::from_millis(ms.max(50))
}

/// What the monitor remembers per instance between rounds.
struct Seen {
    health: Health,
    next_at: Instant,
    /// The registration it was checked under: a new one starts over.
    registered_at: i64,
}

/// The longest a round waits, so new registrations are checked soon.
const MAX_WAIT: Duration = Duration::from_secs(1);
const MIN_WAIT: Duration = Duration::from_millis(50);

/// Runs until `stop` turns true.
pub async fn run(store: Store, node: String, mut stop: watch::Receiver<bool>) {
    let period = interval();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut wait = FIRST_TICK;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        match registry::all(&store).await {
            Ok(all) => round(&store, &node, all, &mut seen).await,
            Err(e) => tracing::warn!(error = %e, "service monitor cannot read the registry"),
        }
        let now = Instant::now();
        let soonest = seen
            .values()
            .map(|s| s.next_at.saturating_duration_since(now))
            .min()
            .unwrap_or(period);
        wait = soonest.clamp(MIN_WAIT, period.min(MAX_WAIT).max(MIN_WAIT));
    }
}

fn hosted_here(r: &ServiceRecord, node: &str) -> bool {
    !r.service.checks.is_empty() && r.node.as_deref().is_none_or(|n| n.is_empty() || n == node)
}

async fn round(
    store: &Store,
    node: &str,
    all: Vec<ServiceRecord>,
    seen: &mut HashMap<String, Seen>,
) {
    let mine: Vec<ServiceRecord> = all.into_iter().filter(|r| hosted_here(r, node)).collect();
    seen.retain(|id, _| mine.iter().any(|r| &r.id == id));
    let now = Instant::now();
    let due: Vec<&ServiceRecord> = mine
        .iter()
        .filter(|r| {
            seen.get(&r.id)
                .is_none_or(|s| s.next_at <= now || s.registered_at != r.created_at)
        })
        .collect();
    let checked = futures::future::join_all(due.iter().map(|r| {
        let previous = seen
            .get(&r.id)
            .filter(|s| s.registered_at == r.created_at)
            .map(|s| &s.health)
            .or(r.health.as_ref());
        checks::check_service(&r.service, previous)
    }))
    .await;
    for (r, health) in due.into_iter().zip(checked) {
        crate::metrics::service_checked(&health);
        if health.status != r.status {
            record(store, r, &health).await;
        }
        let every = r
            .service
            .checks
            .iter()
            .map(|c| c.interval_ms)
            .min()
            .unwrap_or(DEFAULT_INTERVAL_MS);
        seen.insert(
            r.id.clone(),
            Seen {
                health,
                next_at: Instant::now() + Duration::from_millis(every),
                registered_at: r.created_at,
            },
        );
    }
    let mut counts = [
        (HealthStatus::Passing, 0),
        (HealthStatus::Warning, 0),
        (HealthStatus::Critical, 0),
    ];
    for s in seen.values() {
        if let Some(c) = counts.iter_mut().find(|(st, _)| *st == s.health.status) {
            c.1 += 1;
        }
    }
    crate::metrics::services_by_status(&counts);
}

async fn record(store: &Store, r: &ServiceRecord, health: &Health) {
    let command = JobCommand::RecordServiceHealth {
        service_id: r.id.clone(),
        health: health.clone(),
    };
    match crate::runtime::commands::execute(store, &r.job_id, &command, None).await {
        Ok(done) if !done.events.is_empty() => tracing::info!(
            job_id = %r.job_id, service = %r.service.name, from = r.status.as_str(),
            to = health.status.as_str(), "service health changed"
        ),
        Ok(_) => {}
        // The job ended meanwhile (its instances went with it): nothing to record.
        Err(e) => tracing::debug!(job_id = %r.job_id, error = %e, "service health not recorded"),
    }
}
