//! The node-view workers: a consumer group on the nodes feed. Each entry names a node; the
//! worker folds that node's history from its view's version to the end and writes the view
//! (views only move forward), so entries may be handled in any order, twice, or not at all
//! when a later one exists.

use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio::sync::watch;

use crate::domain::node::NodeState;
use crate::store::{Shard, Store};

const GROUP: &str = "node-views";

pub async fn run_node_views(store: Store, consumer: String, mut stop: watch::Receiver<bool>) {
    let shards: Vec<Shard> = store.keys().shards().collect();
    for shard in &shards {
        let feed = store.keys().nodes_feed(*shard);
        let created: redis::RedisResult<()> =
            store.conn().xgroup_create_mkstream(&feed, GROUP, "0").await;
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            tracing::warn!(error = %e, "node-view group could not be created");
        }
    }
    // One shard: block on it. Several (Redis Cluster): a blocking read can only wait on one
    // slot, so poll them in turn and pause when all were empty; node changes are rare.
    let block_ms = if shards.len() == 1 { 1_000 } else { 0 };
    let mut conn = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut seen = 0;
        for shard in &shards {
            let Some(c) = store
                .blocking_conn_in(&mut conn, Duration::from_secs(1))
                .await
            else {
                break;
            };
            let feed = store.keys().nodes_feed(*shard);
            let mut opts = StreamReadOptions::default()
                .group(GROUP, &consumer)
                .count(100);
            if block_ms > 0 {
                opts = opts.block(block_ms);
            }
            let (keys, ids) = ([feed.as_str()], [">"]);
            let read: redis::RedisResult<Option<StreamReadReply>> = tokio::select! {
                r = c.xread_options(&keys, &ids, &opts) => r,
                _ = stop.changed() => return,
            };
            let entries: Vec<_> = match read {
                Ok(r) => r
                    .into_iter()
                    .flat_map(|r| r.keys)
                    .flat_map(|k| k.ids)
                    .collect(),
                Err(e) => {
                    tracing::debug!(error = %e, "node-view read failed");
                    conn = None;
                    continue;
                }
            };
            seen += entries.len();
            for e in entries {
                catch_up(&store, &e).await;
                let _: redis::RedisResult<()> = store.conn().xack(&feed, GROUP, &[&e.id]).await;
            }
        }
        if block_ms == 0 && seen == 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Folds the node an entry names from its view's version to the end, and writes the view.
async fn catch_up(store: &Store, e: &redis::streams::StreamId) {
    let node: Option<String> = e.get("n");
    let Some(node) = node else { return };
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
        Err(err) => tracing::warn!(node, error = %err, "node view not updated"),
    }
}
