//! Work the node holding the leader lease does on a period (schedule sweeps, history
//! retention): one loop shape, so every such sweep stops and yields leadership alike.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Runs `sweep` every `every` while `is_leader()` says so, until `stop` turns true.
pub async fn while_leader<F, Fut>(
    every: Duration,
    is_leader: impl Fn() -> bool,
    mut stop: watch::Receiver<bool>,
    mut sweep: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if *stop.borrow() {
            return;
        }
        if is_leader() {
            sweep().await;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}
