//! The node's blob answering loop: announces the blobs this node holds, then answers other
//! nodes' requests for them (see `store::blob_share`). Requests are outside input: a digest
//! that is not one is refused before it can name a path.

use std::time::Duration;

use tokio::sync::watch;

use super::blobs::BlobStore;
use crate::runtime::clock::now_ms;
use crate::store::{BlobAnswer, BlobRequest, Store};

const BLOCK: Duration = Duration::from_millis(500);

pub async fn run_blob_server(
    store: Store,
    node: String,
    blobs: BlobStore,
    mut stop: watch::Receiver<bool>,
) {
    announce_inventory(&store, &node, &blobs).await;
    // Requests older than this loop were made to a previous process; their askers gave up.
    let mut after = format!("{}-0", now_ms());
    let mut conn = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(c) = store.blocking_conn_in(&mut conn, BLOCK).await else {
            continue;
        };
        let read = tokio::select! {
            r = store.read_blob_requests(c, &node, &after, BLOCK) => r,
            _ = stop.changed() => continue,
        };
        let requests = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(node, error = %e, "blob request read failed");
                conn = None;
                continue;
            }
        };
        for (id, request) in requests {
            after = id;
            let answer = answer(&blobs, &request).await;
            // Asked for a blob it no longer has (`admin gc` removed it, a disk was wiped):
            // this node stops claiming it, so later fetches go straight to real holders.
            if matches!(&answer, BlobAnswer::Refused(_)) && !blobs.contains(&request.sha256) {
                let _ = store.forget_blob(&node, &request.sha256).await;
            }
            if let Err(e) = store.answer_blob(&request.reply_id, &answer).await {
                tracing::warn!(node, sha256 = %request.sha256, error = %e, "blob answer not sent");
            }
        }
    }
}

/// Tells the cluster which blobs this node has (they may predate this process).
async fn announce_inventory(store: &Store, node: &str, blobs: &BlobStore) {
    let b = blobs.clone();
    let listed = tokio::task::spawn_blocking(move || b.list()).await;
    let digests = match listed {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            tracing::warn!(node, error = %e, "cannot list the blob store");
            return;
        }
        Err(_) => return,
    };
    for chunk in digests.chunks(500) {
        if let Err(e) = store.announce_blobs(node, chunk).await {
            tracing::warn!(node, error = %e, "cannot announce this node's blobs");
            return;
        }
    }
}

async fn answer(blobs: &BlobStore, request: &BlobRequest) -> BlobAnswer {
    let (b, sha) = (blobs.clone(), request.sha256.clone());
    let read = tokio::task::spawn_blocking(move || b.get(&sha)).await;
    match read {
        Ok(Ok(bytes)) => {
            tracing::debug!(sha256 = %request.sha256, to = %request.from, bytes = bytes.len(), "sending a blob");
            BlobAnswer::Bytes(bytes)
        }
        Ok(Err(e)) => BlobAnswer::Refused(e.to_string()),
        Err(e) => BlobAnswer::Refused(format!("read task failed: {e}")),
    }
}
