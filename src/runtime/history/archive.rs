//! Archiving one finished job: its hot history becomes one zstd blob, then one script swaps
//! the hot keys for a small pointer. The order (build, store, read back and check, swap) means
//! a crash at any step leaves the history readable: in the stream until the swap, in the blob
//! after it. A blob left behind by a crash before the swap is unreferenced; `admin gc` drops it.

use sha2::{Digest, Sha256};

use super::HistoryError;
use super::format::{ArchiveReader, ArchiveWriter};
use super::reader::load_archive_bytes;
use crate::runtime::blobs::BlobStore;
use crate::store::{ArchiveRecord, RawEntry, Store};

/// Entries read from the hot stream per round trip while archiving.
const PAGE: usize = 1000;

/// What [`archive_job`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveOutcome {
    /// The history now lives in the blob the record names.
    Archived(ArchiveRecord),
    /// Already archived earlier (nothing to do).
    AlreadyArchived,
    /// The job is not finished (or has no view); it is left alone.
    NotFinished,
    /// The views have not caught up with the history yet; try again later.
    ProjectionBehind { view_seq: u64, history_seq: u64 },
    /// The history changed between reading and swapping; try again later.
    Moved,
}

fn fold(hasher: &mut Sha256, entry: &RawEntry) {
    hasher.update(entry.seq.to_le_bytes());
    hasher.update((entry.bytes.len() as u64).to_le_bytes());
    hasher.update(&entry.bytes);
}

/// Archives `job_id` if it is finished and its views are current.
pub async fn archive_job(
    store: &Store,
    blobs: &BlobStore,
    job_id: &str,
    now_ms: i64,
) -> Result<ArchiveOutcome, HistoryError> {
    if store.archive_record(job_id).await?.is_some() {
        return Ok(ArchiveOutcome::AlreadyArchived);
    }
    let Some(view) = store.job_view(job_id).await? else {
        return Ok(ArchiveOutcome::NotFinished);
    };
    if !view.status.is_some_and(|s| s.is_terminal()) {
        return Ok(ArchiveOutcome::NotFinished);
    }
    let last_seq = store.version(job_id).await?;
    if view.last_seq != last_seq {
        return Ok(ArchiveOutcome::ProjectionBehind {
            view_seq: view.last_seq,
            history_seq: last_seq,
        });
    }
    let count = store.history_len(job_id).await?;
    if count != last_seq {
        return Err(HistoryError::Mismatch(format!(
            "job {job_id}: history has {count} entries but ends at seq {last_seq}; not archiving a history with gaps"
        )));
    }
    let (blob, written) = build(store, job_id, last_seq).await?;
    let put = {
        let blobs = blobs.clone();
        tokio::task::spawn_blocking(move || blobs.put(&blob))
            .await
            .map_err(|e| HistoryError::Mismatch(format!("blob write task failed: {e}")))??
    };
    let record = ArchiveRecord {
        sha256: put.sha256,
        size: put.size,
        entries: last_seq,
        last_seq,
        archived_at_ms: now_ms,
    };
    verify(store, blobs, &record, job_id, &written).await?;
    if store.commit_archive(job_id, &record).await? {
        Ok(ArchiveOutcome::Archived(record))
    } else {
        Ok(ArchiveOutcome::Moved)
    }
}

/// Streams the hot history into an archive; returns it and the digest of the entries read.
async fn build(
    store: &Store,
    job_id: &str,
    last_seq: u64,
) -> Result<(Vec<u8>, Vec<u8>), HistoryError> {
    let mut writer = ArchiveWriter::new(job_id, last_seq)?;
    let mut hasher = Sha256::new();
    let mut next = 1;
    while next <= last_seq {
        let page = store
            .raw_history_page(job_id, next, Some(last_seq), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for entry in &page {
            fold(&mut hasher, entry);
            writer.push(entry)?;
        }
    }
    Ok((writer.finish()?, hasher.finalize().to_vec()))
}

/// Reads the stored blob back through the readers' own path and checks every entry arrived.
async fn verify(
    store: &Store,
    blobs: &BlobStore,
    record: &ArchiveRecord,
    job_id: &str,
    written: &[u8],
) -> Result<(), HistoryError> {
    let bytes = load_archive_bytes(store, blobs, record).await?;
    let job = job_id.to_string();
    let digest = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, HistoryError> {
        let mut reader = ArchiveReader::open(bytes, &job)?;
        let mut hasher = Sha256::new();
        while let Some(entry) = reader.next_entry()? {
            fold(&mut hasher, &entry);
        }
        Ok(hasher.finalize().to_vec())
    })
    .await
    .map_err(|e| HistoryError::Mismatch(format!("archive check task failed: {e}")))??;
    if digest != written {
        return Err(HistoryError::Mismatch(format!(
            "archive {} of job {job_id} does not read back what was written",
            record.sha256
        )));
    }
    Ok(())
}
