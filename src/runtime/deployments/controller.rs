//! The deployment controller: on the leader, every [`CONTROL_INTERVAL`], each key with work
//! left (the `deployments:active` index every append adds to) gets the actions the pure core
//! names ([`next_actions`]) executed. A key whose rollout finished, failed or waits on an
//! operator is taken off the index once its last actions ran; its next append puts it back.
//! Running on two nodes at once (a leader hand-over) is safe: actions are idempotent and
//! reports are optimistic appends.

use std::time::Duration;

use tokio::sync::watch;

use super::{DeploymentRunError, act};
use crate::domain::deployment::{Action, next_actions};
use crate::store::Store;

/// How often the leader moves rollouts along.
pub const CONTROL_INTERVAL: Duration = Duration::from_millis(250);

/// Keys looked at per pass (oldest append first).
const PASS_KEYS: usize = 200;

/// Runs passes while `is_leader()` says so, until `stop` turns true.
pub async fn run_deployment_loop(
    store: Store,
    is_leader: impl Fn() -> bool,
    stop: watch::Receiver<bool>,
) {
    crate::runtime::periodic::while_leader(CONTROL_INTERVAL, is_leader, stop, || {
        let store = store.clone();
        async move {
            if let Err(e) = reconcile_once(&store).await {
                tracing::warn!(error = %e, "deployment pass failed; retrying");
            }
        }
    })
    .await
}

/// One pass over the keys with work left. Returns how many were looked at.
pub async fn reconcile_once(store: &Store) -> Result<usize, DeploymentRunError> {
    let keys = store.unsettled_deployments(PASS_KEYS).await?;
    for (key, seen_ms) in &keys {
        match reconcile_key(store, key).await {
            Ok(true) => {
                store.settle_deployment(key, *seen_ms).await?;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(deployment_key = %key, error = %e, "deployment action failed; retrying")
            }
        }
    }
    Ok(keys.len())
}

/// Executes what the key's state calls for. Returns whether the key is settled (nothing
/// will be due without a new append).
async fn reconcile_key(store: &Store, key: &str) -> Result<bool, DeploymentRunError> {
    let state = store.load_deployment(key).await?;
    let actions = next_actions(&state);
    let settled = !actions.iter().any(|a| {
        matches!(
            a,
            Action::StartBatch(_) | Action::CheckHealth(_) | Action::Tick
        )
    });
    for action in &actions {
        act::run(store, &state, action).await?;
    }
    Ok(settled)
}
