//! The inbox: commands the leader sends this node (take a job, hand one back).

use std::time::Duration;

use tokio::sync::watch;

use crate::store::{InboxCommand, Store};

/// Reads the inbox until `stop`, handing each command to `handle`.
pub async fn run_inbox(
    store: Store,
    node: String,
    handle: impl Fn(InboxCommand) + Send + 'static,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = None;
    let mut after = "$".to_string();
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(c) = store
            .blocking_conn_in(&mut conn, Duration::from_secs(1))
            .await
        else {
            continue;
        };
        let read = tokio::select! {
            r = store.read_inbox(c, &node, &after, Duration::from_millis(1_000)) => r,
            _ = stop.changed() => return,
        };
        match read {
            Ok(items) => {
                for (id, command) in items {
                    after = id;
                    match command {
                        Some(cmd) => handle(cmd),
                        None => tracing::warn!(node, "skipping an undecodable inbox command"),
                    }
                }
            }
            Err(e) => {
                tracing::debug!(node, error = %e, "inbox read failed");
                conn = None;
            }
        }
    }
}
