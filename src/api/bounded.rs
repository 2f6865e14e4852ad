//! Keeps job records within the gRPC message limit: a record larger than [`MAX_RECORD_BYTES`]
//! (a job whose result holds many inline values) answers with its result stored as a blob and
//! referenced, so a job that succeeded never turns into a "message too large" error. The
//! reference is read with `GetBlob` (`mirror-neuron blob get`).

use serde_json::Value;
use tonic::Status;

use super::context::ApiContext;
use crate::domain::output::{BlobPointer, externalize};
use crate::runtime::blobs::BlobStore;

/// Largest job record answered inline: far below the default 64 MiB limit of both sides, so
/// a client with a smaller limit still reads it.
pub const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;
/// Values of an oversized record's result above this size are stored as blobs.
const RESULT_INLINE_BYTES: usize = 64 * 1024;

/// `record`, with its `result` referenced when the whole would pass [`MAX_RECORD_BYTES`].
pub async fn bound_record(ctx: &ApiContext, mut record: Value) -> Result<Value, Status> {
    if record.to_string().len() <= MAX_RECORD_BYTES {
        return Ok(record);
    }
    let Some(result) = record.get_mut("result").map(Value::take) else {
        return Ok(record);
    };
    let blobs = BlobStore::from_env();
    let (bounded, written) = tokio::task::spawn_blocking(move || {
        let mut result = result;
        let mut written = vec![];
        let mut put = |bytes: &[u8]| {
            blobs.put(bytes).map(|r| {
                written.push(r.sha256.clone());
                BlobPointer {
                    sha256: r.sha256,
                    size: r.size,
                }
            })
        };
        externalize(&mut result, RESULT_INLINE_BYTES, &mut put).map(|()| (result, written))
    })
    .await
    .map_err(|e| Status::internal(format!("result task failed: {e}")))?
    .map_err(|e| {
        Status::internal(format!(
            "the job's result could not be stored as a blob: {e}"
        ))
    })?;
    // Other nodes answering GetBlob for this reference find it here.
    if let Err(e) = ctx.store.announce_blobs(ctx.node.name(), &written).await {
        tracing::warn!(error = %e, "result blob not announced");
    }
    record["result"] = bounded;
    Ok(record)
}
