//! The node-view workers: a consumer group on the nodes feed. Each entry names a node; the
//! worker folds that node's history from its view's version to the end and writes the view
//! (views only move forward), so entries may be handled in any order, twice, or not at all
//! when a later one exists.

use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio::sync::watch;

use crate::domain::node::NodeState;
use crate::store::Store;

const GROUP: &str = "node-views";

pub async fn run_node_views(store: Store, consumer: String, mut stop: watch::Receiver<bool>) {
    let feed = store.keys().nodes_feed();
    let created: redis::RedisResult<()> =
        store.conn().xgroup_create_mkstream(&feed, GROUP, "0").await;
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        tracing::warn!(error = %e, "node-view group could not be created");
    }
    let mut conn = None;
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
        let opts = StreamReadOptions::default()
            .group(GROUP, &consumer)
            .count(100)
            .block(1_000);
        let (keys, ids) = ([feed.as_str()], [">"]);
        let read: redis::RedisResult<Option<StreamReadReply>> = tokio::select! {
            r = c.xread_options(&keys, &ids, &opts) => r,
            _ = stop.changed() => return,
        };
        let entries = match read {
            Ok(r) => r.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids),
            Err(e) => {
                tracing::debug!(error = %e, "node-view read failed");
                conn = None;
                continue;
            }
        };
        for e in entries.collect::<Vec<_>>() {
            let node: Option<String> = e.get("n");
            if let Some(node) = node {
                let from = store
                    .node_view(&node)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| NodeState::new(&node));
                match store.fold_node(from).await {
                    Ok(state) => {
                        let _ = store.put_node_view(&state).await;
                    }
                    Err(err) => {
                        tracing::warn!(node, error = %err, "node view not updated");
                        continue;
                    }
                }
            }
            let _: redis::RedisResult<()> = store.conn().xack(&feed, GROUP, &[&e.id]).await;
        }
    }
}
