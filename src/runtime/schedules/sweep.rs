//! The loop that calls [`dispatch_due`] on the leader. Leader election lives in
//! `runtime::cluster`: the loop asks `is_leader()` before each sweep (`serve` passes the
//! node's leadership flag, set while it holds the leader lease). Sweeping on more than one
//! node (a hand-over, a stale answer) is safe, since dispatches converge on one job each; the
//! check only keeps the work on one node.

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
    stop: watch::Receiver<bool>,
) {
    crate::runtime::periodic::while_leader(SWEEP_INTERVAL, is_leader, stop, || {
        let store = store.clone();
        async move {
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
    })
    .await
}
