//! The loop that calls [`dispatch_due`] on the leader. Leader election lives in
//! `runtime::cluster`: the loop asks `is_leader()` before each sweep, and
//! [`watch_leadership`] turns the leader lease into that answer. Sweeping on more than one
//! node (a hand-over, a stale answer) is safe, since dispatches converge on one job each; the
//! check only keeps the work on one node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::dispatch::dispatch_due;
use crate::runtime::clock::now_ms;
use crate::store::Store;

/// How often the leader sweeps the due index.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// Sweeps every [`SWEEP_INTERVAL`] while `is_leader()` says so, until `stop` turns true.
pub async fn run_schedule_loop(
    store: Store,
    is_leader: impl Fn() -> bool,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        if is_leader() {
            match dispatch_due(&store, now_ms()).await {
                Ok(r) => {
                    if r.dispatched > 0 || r.skipped > 0 || !r.failed.is_empty() {
                        tracing::info!(dispatched = r.dispatched, skipped = r.skipped, started = ?r.started, failed = ?r.failed, "schedule sweep");
                    }
                    for (id, error) in &r.errors {
                        tracing::warn!(schedule_id = %id, %error, "schedule sweep will retry");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "schedule sweep failed; retrying"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}

/// A flag that is true while `node` holds the cluster leader lease, refreshed every
/// [`SWEEP_INTERVAL`] until `stop`; a Redis error reads as "not leader" until it clears.
pub fn watch_leadership(
    store: Store,
    node: String,
    mut stop: watch::Receiver<bool>,
) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let out = flag.clone();
    tokio::spawn(async move {
        loop {
            let leading = matches!(store.leader().await, Ok(Some((holder, _))) if holder == node);
            flag.store(leading, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
            }
        }
    });
    out
}
