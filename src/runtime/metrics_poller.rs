//! The gauges no event moves, refreshed on a timer by `serve`: jobs per status (from the
//! status index), deployment keys per status (from their views), projection lag per feed
//! consumer group, and Redis reachability (a PING round trip). Each probe has a timeout, so
//! an unreachable Redis shows as `mirror_neuron_redis_up 0` instead of stalling the poller.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::domain::deployment::DeploymentStatus;
use crate::domain::job::JobStatus;
use crate::runtime::projector::PROJECTION_GROUP;
use crate::store::Store;

/// Default refresh interval (`MN_METRICS_INTERVAL_MS`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Longest a probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `MN_METRICS_INTERVAL_MS`, default 5000, at least 100.
pub fn interval_from_env() -> Result<Duration, crate::config::ConfigError> {
    let ms = crate::config::u64_var(
        "MN_METRICS_INTERVAL_MS",
        DEFAULT_INTERVAL.as_millis() as u64,
    )?;
    Ok(Duration::from_millis(ms.max(100)))
}

/// The running poller; stops when dropped.
pub struct Poller(JoinHandle<()>);

impl Poller {
    /// Polls once at once, then every `every`.
    pub fn start(store: Store, every: Duration) -> Poller {
        crate::metrics::projection_lag(PROJECTION_GROUP, 0);
        Poller(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                poll_once(&store).await;
            }
        }))
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs every probe once.
pub async fn poll_once(store: &Store) {
    let redis_ok = ping(store).await;
    if !redis_ok {
        // The other probes would only wait for the same timeout.
        return;
    }
    match tokio::time::timeout(PROBE_TIMEOUT, store.job_counts()).await {
        Ok(Ok(counts)) => {
            for status in JobStatus::ALL {
                crate::metrics::jobs_in_status(status, counts.get(&status).copied().unwrap_or(0));
            }
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "metrics: cannot count jobs"),
        Err(_) => tracing::debug!("metrics: counting jobs timed out"),
    }
    match tokio::time::timeout(PROBE_TIMEOUT, store.deployment_views()).await {
        Ok(Ok(views)) => {
            let counts = deployment_counts(views.values());
            let counts: Vec<(&str, usize)> = counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
            crate::metrics::deployments_by_status(&counts);
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "metrics: cannot count deployments"),
        Err(_) => tracing::debug!("metrics: counting deployments timed out"),
    }
    if let Err(e) = projection_lag(store).await {
        tracing::debug!(error = %e, "metrics: cannot read projection lag");
    }
}

/// Keys per `status` of their views: every known status (0 when absent, so a status no key
/// is in any more reads 0 instead of keeping its last count), plus any other status word a
/// view carries.
fn deployment_counts<'a>(views: impl Iterator<Item = &'a Value>) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = DeploymentStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for v in views {
        if let Some(status) = v["status"].as_str() {
            *counts.entry(status.to_string()).or_default() += 1;
        }
    }
    counts
}

async fn ping(store: &Store) -> bool {
    let started = Instant::now();
    let mut conn = store.conn();
    let reply = tokio::time::timeout(
        PROBE_TIMEOUT,
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    let ok = matches!(reply, Ok(Ok(_)));
    crate::metrics::redis_ping(ok.then(|| started.elapsed()));
    ok
}

/// The backlog of every consumer group of the feed (every shard has the same groups).
async fn projection_lag(store: &Store) -> anyhow::Result<()> {
    let feed = store.keys().feed(crate::store::Shard(0));
    let groups: redis::streams::StreamInfoGroupsReply =
        tokio::time::timeout(PROBE_TIMEOUT, store.conn().xinfo_groups(&feed))
            .await
            .map_err(|_| anyhow::anyhow!("XINFO GROUPS timed out"))??;
    for g in &groups.groups {
        let backlog = tokio::time::timeout(PROBE_TIMEOUT, store.feed_backlog(&g.name))
            .await
            .map_err(|_| anyhow::anyhow!("backlog of {} timed out", g.name))??;
        crate::metrics::projection_lag(&g.name, backlog);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deployment_counts_include_absent_statuses_as_zero() {
        let views = [
            json!({"status": "successful"}),
            json!({"status": "successful"}),
            json!({"status": "running"}),
        ];
        let counts = deployment_counts(views.iter());
        assert_eq!(counts["successful"], 2);
        assert_eq!(counts["running"], 1);
        assert_eq!(counts["reverted"], 0);
        assert_eq!(counts.len(), DeploymentStatus::ALL.len());
    }
}
