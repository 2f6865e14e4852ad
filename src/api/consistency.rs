//! Read-your-writes for clients: after a command, the RPC answers once the views show it, so a
//! `GetJob` right after `SubmitJob` or `PauseJob` never sees the world from before. Bounded:
//! a lagging projection delays the answer by at most [`MAX_WAIT`], it never fails the call.

use std::time::Duration;

use crate::store::Store;

/// The longest an RPC waits for its own write to reach the views.
pub const MAX_WAIT: Duration = Duration::from_secs(3);

/// Waits until the job's view has applied event `seq`.
pub async fn wait_for_view(store: &Store, job_id: &str, seq: u64) {
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut pause = Duration::from_millis(2);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(view)) = store.job_view(job_id).await
            && view.last_seq >= seq
        {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    tracing::warn!(
        job_id,
        seq,
        "views lag behind a write by more than {MAX_WAIT:?}"
    );
}
