//! Reading a job's history page by page, from the hot stream or from its archive, whichever
//! holds it now. Every history reader that must survive retention (`job history`, `replay`,
//! `export`, the history RPC, `rebuild-projections`, backups, loading a finished job's state)
//! goes through [`HistoryPages`], so none of them needs to know where the entries live.

use super::HistoryError;
use super::format::ArchiveReader;
use crate::domain::event::decode_stored;
use crate::domain::job::{JobState, evolve};
use crate::runtime::blobs::BlobStore;
use crate::store::{ArchiveRecord, HistoryItem, RawEntry, Store};

/// Entries per page unless the caller asks otherwise.
pub const DEFAULT_PAGE: usize = 500;

/// Reads an archive blob's bytes: this node's copy, else fetched from a node that holds it
/// through Redis (`runtime::blobs::fetch`, digest checked). The one place archives are read.
pub async fn load_archive_bytes(
    store: &Store,
    blobs: &BlobStore,
    record: &ArchiveRecord,
) -> Result<Vec<u8>, HistoryError> {
    let bytes = crate::runtime::blobs::fetch(store, blobs, &record.sha256)
        .await
        .map_err(|e| HistoryError::Mismatch(format!("history archive: {e}")))?;
    if bytes.len() as u64 != record.size {
        return Err(HistoryError::Mismatch(format!(
            "archive blob {} holds {} bytes, its pointer says {}",
            record.sha256,
            bytes.len(),
            record.size
        )));
    }
    Ok(bytes)
}

enum Source {
    Hot,
    Archive(Box<ArchiveReader>),
}

/// A job's history `from..=to`, in pages. Holds one page (and, for an archive, the
/// compressed blob), never the whole history.
pub struct HistoryPages {
    store: Store,
    blobs: BlobStore,
    job_id: String,
    next: u64,
    to: Option<u64>,
    page: usize,
    source: Source,
    last_seq: u64,
    archived: bool,
    done: bool,
}

impl HistoryPages {
    /// Opens `job_id`'s history; `Ok(None)` when the job has neither a hot history nor an
    /// archive. `to = None` reads to the end; `page` entries per page (at least 1).
    pub async fn open(
        store: &Store,
        blobs: &BlobStore,
        job_id: &str,
        from: u64,
        to: Option<u64>,
        page: usize,
    ) -> Result<Option<HistoryPages>, HistoryError> {
        let mut pages = HistoryPages {
            store: store.clone(),
            blobs: blobs.clone(),
            job_id: job_id.to_string(),
            next: from.max(1),
            to,
            page: page.max(1),
            source: Source::Hot,
            last_seq: 0,
            archived: false,
            done: false,
        };
        if let Some(record) = store.archive_record(job_id).await? {
            pages.use_archive(&record).await?;
            return Ok(Some(pages));
        }
        pages.last_seq = store.version(job_id).await?;
        if pages.last_seq > 0 {
            return Ok(Some(pages));
        }
        // The archive may have been committed between the two reads above.
        match store.archive_record(job_id).await? {
            Some(record) => {
                pages.use_archive(&record).await?;
                Ok(Some(pages))
            }
            None => Ok(None),
        }
    }

    async fn use_archive(&mut self, record: &ArchiveRecord) -> Result<(), HistoryError> {
        let bytes = load_archive_bytes(&self.store, &self.blobs, record).await?;
        let reader = ArchiveReader::open(bytes, &self.job_id)?;
        if reader.count() != record.entries || record.entries != record.last_seq {
            return Err(HistoryError::Mismatch(format!(
                "archive {} of job {} holds {} entries, its pointer says {} (last seq {})",
                record.sha256,
                self.job_id,
                reader.count(),
                record.entries,
                record.last_seq
            )));
        }
        self.source = Source::Archive(Box::new(reader));
        self.last_seq = record.last_seq;
        self.archived = true;
        Ok(())
    }

    /// The job's last seq when the history was opened (a running job may grow past it).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// True when the entries come from the archive.
    pub fn archived(&self) -> bool {
        self.archived
    }

    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The next page, `Ok(None)` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<RawEntry>>, HistoryError> {
        if self.done || self.to.is_some_and(|t| self.next > t) {
            return Ok(None);
        }
        let page = match &mut self.source {
            Source::Hot => {
                let page = self
                    .store
                    .raw_history_page(&self.job_id, self.next, self.to, self.page)
                    .await?;
                if page.is_empty() {
                    // Archived while we read: go on from the archive, which holds the rest.
                    match self.store.archive_record(&self.job_id).await? {
                        Some(record) if record.last_seq >= self.next => {
                            self.use_archive(&record).await?;
                            return Box::pin(self.next_page()).await;
                        }
                        _ => {}
                    }
                }
                page
            }
            Source::Archive(reader) => {
                let mut page = Vec::with_capacity(self.page);
                while page.len() < self.page {
                    match reader.next_entry()? {
                        None => break,
                        Some(e) if e.seq < self.next => continue,
                        Some(e) if self.to.is_some_and(|t| e.seq > t) => break,
                        Some(e) => page.push(e),
                    }
                }
                page
            }
        };
        match page.last() {
            None => {
                self.done = true;
                Ok(None)
            }
            Some(last) => {
                self.next = last.seq + 1;
                Ok(Some(page))
            }
        }
    }
}

/// A raw entry decoded the way every history reader decodes it.
pub fn decode_item(job_id: &str, entry: &RawEntry) -> HistoryItem {
    HistoryItem {
        stream_id: format!("{}-0", entry.seq),
        seq: entry.seq,
        event: decode_stored(job_id, entry.seq, &entry.bytes),
    }
}

/// Folds a job's whole history, hot or archived, into the decider state (as
/// `Store::load_state` does for a hot one): undecodable entries are skipped but count.
pub async fn load_state(
    store: &Store,
    blobs: &BlobStore,
    job_id: &str,
) -> Result<JobState, HistoryError> {
    let mut state = JobState::new(job_id);
    let Some(mut pages) = HistoryPages::open(store, blobs, job_id, 1, None, 1000).await? else {
        return Ok(state);
    };
    while let Some(page) = pages.next_page().await? {
        for entry in &page {
            let item = decode_item(job_id, entry);
            match &item.event {
                Ok(env) => state = evolve(state, env),
                Err(e) => {
                    tracing::warn!(job_id, seq = item.seq, error = %e, "skipping undecodable event")
                }
            }
            state.seq = state.seq.max(item.seq);
        }
    }
    Ok(state)
}

/// The job's last seq, hot or archived; 0 when it has no history.
pub async fn version(store: &Store, job_id: &str) -> Result<u64, HistoryError> {
    let hot = store.version(job_id).await?;
    if hot > 0 {
        return Ok(hot);
    }
    Ok(store
        .archive_record(job_id)
        .await?
        .map_or(0, |r| r.last_seq))
}

/// The whole history `from..` of a job, hot or archived, for callers whose answer holds it
/// whole anyway (a backup document, a batch of `StreamEvents`); empty when there is none.
pub async fn read_all(
    store: &Store,
    blobs: &BlobStore,
    job_id: &str,
    from: u64,
) -> Result<Vec<HistoryItem>, HistoryError> {
    let mut out = Vec::new();
    let Some(mut pages) = HistoryPages::open(store, blobs, job_id, from, None, 1000).await? else {
        return Ok(out);
    };
    while let Some(page) = pages.next_page().await? {
        out.extend(page.iter().map(|e| decode_item(job_id, e)));
    }
    Ok(out)
}

/// At most `max` entries of a job's history from `from` (hot or archived): one page, for
/// readers that loop (followers) and must not hold a long history at once.
pub async fn read_page(
    store: &Store,
    blobs: &BlobStore,
    job_id: &str,
    from: u64,
    max: usize,
) -> Result<Vec<HistoryItem>, HistoryError> {
    let max = max.max(1);
    let to = from.saturating_add(max as u64 - 1);
    let Some(mut pages) = HistoryPages::open(store, blobs, job_id, from, Some(to), max).await?
    else {
        return Ok(vec![]);
    };
    Ok(match pages.next_page().await? {
        Some(page) => page.iter().map(|e| decode_item(job_id, e)).collect(),
        None => vec![],
    })
}
