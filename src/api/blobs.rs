//! `mirrorneuron.blobs.v1.BlobService`: `GetBlob`, a page of a stored blob (a large step
//! output), fetched from the node that holds it when this one does not. Pages are bounded on
//! the server, so no answer approaches the message limit.

use tonic::{Request, Response, Status};

use super::context::ApiContext;
use super::pb::blobs::blob_service_server::BlobService;
use super::pb::blobs::{GetBlobRequest, GetBlobResponse};
use crate::runtime::blob_fetch::FetchError;
use crate::runtime::blobs::{BlobError, BlobStore, fetch, is_digest};

/// The largest page one answer carries.
pub const MAX_PAGE_BYTES: u32 = 1024 * 1024;

/// The service implementation.
#[derive(Clone)]
pub struct Blobs {
    ctx: ApiContext,
    store: BlobStore,
}

impl Blobs {
    pub fn new(ctx: ApiContext) -> Self {
        Blobs {
            ctx,
            store: BlobStore::from_env(),
        }
    }
}

/// The page size for a requested `length` (0 = the largest page).
pub fn page_len(length: u32) -> u32 {
    match length {
        0 => MAX_PAGE_BYTES,
        n => n.min(MAX_PAGE_BYTES),
    }
}

fn fetch_status(e: &FetchError) -> Status {
    match e {
        FetchError::Blob(BlobError::BadDigest(_)) => Status::invalid_argument(e.to_string()),
        e if e.is_not_found() => Status::not_found(e.to_string()),
        e => Status::unavailable(e.to_string()),
    }
}

#[tonic::async_trait]
impl BlobService for Blobs {
    async fn get_blob(
        &self,
        request: Request<GetBlobRequest>,
    ) -> Result<Response<GetBlobResponse>, Status> {
        let req = request.into_inner();
        if !is_digest(&req.sha256) {
            return Err(Status::invalid_argument(format!(
                "sha256 {:?} is not a lower-case hex SHA-256 digest",
                req.sha256
            )));
        }
        if !self.store.contains(&req.sha256) {
            // Brings a copy here from a holder (verified), so the next pages are local.
            fetch(&self.ctx.store, &self.store, &req.sha256)
                .await
                .map_err(|e| fetch_status(&e))?;
        }
        let (store, sha, offset, len) = (
            self.store.clone(),
            req.sha256.clone(),
            req.offset,
            page_len(req.length) as usize,
        );
        let (size, data) = tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(store.path(&sha)?)
                .map_err(|source| BlobError::Io {
                    path: sha.clone(),
                    source,
                })?
                .len();
            Ok::<_, BlobError>((size, store.read_range(&sha, offset, len)?))
        })
        .await
        .map_err(|e| Status::internal(format!("blob read task failed: {e}")))?
        .map_err(|e| fetch_status(&FetchError::Blob(e)))?;
        if offset > size {
            return Err(Status::out_of_range(format!(
                "offset {offset} is past the end of blob {} ({size} bytes)",
                req.sha256
            )));
        }
        Ok(Response::new(GetBlobResponse {
            eof: offset + data.len() as u64 >= size,
            data,
            size,
            offset,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded_on_the_server() {
        assert_eq!(page_len(0), MAX_PAGE_BYTES);
        assert_eq!(page_len(10), 10);
        assert_eq!(page_len(u32::MAX), MAX_PAGE_BYTES);
    }
}
