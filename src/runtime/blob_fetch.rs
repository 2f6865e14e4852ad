//! Getting a blob wherever it is: this node's store first, then the nodes that announced it,
//! asked through Redis (`store::blob_share`). What arrives is checked against its digest and
//! stored here, so the next read is local.

use std::time::Duration;

use super::blobs::{BlobError, BlobStore, digest};
use crate::store::{BlobAnswer, Store, StoreError};

/// Default for `MN_BLOB_FETCH_TIMEOUT_MS`: how long to wait for one holder's answer.
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 10_000;

/// Why a blob could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not a digest, or the local copy is unreadable or corrupt.
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("blob {sha256} is not on this node and no node has announced holding it")]
    Unknown { sha256: String },
    #[error(
        "blob {sha256} is not on this node and no node that held it is alive (held by: {holders})"
    )]
    NoLiveHolder { sha256: String, holders: String },
    #[error("blob {sha256} could not be fetched from its holders: {detail}")]
    NotAnswered { sha256: String, detail: String },
    #[error("blob {sha256}: redis: {source}")]
    Store { sha256: String, source: StoreError },
}

impl FetchError {
    /// Whether no live node has the blob (vs. holders that did not answer in time, or a
    /// failure to look).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            FetchError::Blob(BlobError::Missing(_))
                | FetchError::Unknown { .. }
                | FetchError::NoLiveHolder { .. }
        )
    }
}

/// The blob `sha256`: from `blobs` when stored here, else from a live holder through Redis.
pub async fn fetch(store: &Store, blobs: &BlobStore, sha256: &str) -> Result<Vec<u8>, FetchError> {
    blobs.path(sha256)?;
    if let Some(bytes) = local(blobs, sha256).await? {
        return Ok(bytes);
    }
    let failed = |source| FetchError::Store {
        sha256: sha256.to_string(),
        source,
    };
    let holders = store.blob_holders(sha256).await.map_err(failed)?;
    if holders.is_empty() {
        return Err(FetchError::Unknown {
            sha256: sha256.to_string(),
        });
    }
    let alive = store.alive(&holders).await.map_err(failed)?;
    let live: Vec<&String> = holders
        .iter()
        .zip(&alive)
        .filter(|(_, a)| a.is_some())
        .map(|(h, _)| h)
        .collect();
    if live.is_empty() {
        return Err(FetchError::NoLiveHolder {
            sha256: sha256.to_string(),
            holders: holders.join(", "),
        });
    }
    let wait = Duration::from_millis(
        crate::config::u64_var("MN_BLOB_FETCH_TIMEOUT_MS", DEFAULT_FETCH_TIMEOUT_MS)
            .unwrap_or(DEFAULT_FETCH_TIMEOUT_MS),
    );
    let me = crate::config::var("MN_NODE_NAME").unwrap_or_default();
    let mut why = vec![];
    for holder in live {
        match store.request_blob(holder, sha256, &me, wait).await {
            Ok(Some(BlobAnswer::Bytes(bytes))) => match keep(blobs, sha256, bytes).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) => why.push(format!("{holder}: {e}")),
            },
            Ok(Some(BlobAnswer::Refused(e))) => why.push(format!("{holder}: {e}")),
            Ok(None) => why.push(format!("{holder}: no answer within {wait:?}")),
            Err(e) => why.push(format!("{holder}: {e}")),
        }
    }
    Err(FetchError::NotAnswered {
        sha256: sha256.to_string(),
        detail: why.join("; "),
    })
}

/// The local copy, `None` when there is none.
async fn local(blobs: &BlobStore, sha256: &str) -> Result<Option<Vec<u8>>, FetchError> {
    let (blobs, sha) = (blobs.clone(), sha256.to_string());
    let read = tokio::task::spawn_blocking(move || blobs.get(&sha))
        .await
        .map_err(|e| BlobError::Io {
            path: sha256.to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
    match read {
        Ok(b) => Ok(Some(b)),
        Err(BlobError::Missing(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Checks fetched bytes against their name and stores them here.
async fn keep(blobs: &BlobStore, sha256: &str, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let actual = digest(&bytes);
    if actual != sha256 {
        return Err(format!("sent bytes that hash to {actual}"));
    }
    let blobs = blobs.clone();
    tokio::task::spawn_blocking(move || blobs.put(&bytes).map(|_| bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot store the fetched copy: {e}"))
}
