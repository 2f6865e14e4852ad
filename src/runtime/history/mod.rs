//! Job histories past their hot life: the archive format (`format`), archiving a finished
//! job (`archive`), the retention sweep (`retention`), and the reader every history consumer
//! uses, which reads the hot stream or the archive, whichever holds the history (`reader`).
//!
//! `store` knows only the Redis side (raw pages, the pointer, the swap script); the blobs
//! live on disk, which is this floor's business.

pub mod archive;
pub mod format;
pub mod reader;
pub mod retention;

pub use archive::{ArchiveOutcome, archive_job};
pub use reader::{
    DEFAULT_PAGE, HistoryPages, decode_item, load_archive_bytes, load_state, read_all, read_page,
    version,
};

use crate::runtime::blobs::BlobError;
use crate::store::StoreError;
use format::ArchiveFormatError;

/// Why a history could not be read or archived.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Redis failed (retryable when the store error is).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive blob is missing or corrupt on this node.
    #[error("history archive: {0}")]
    Blob(#[from] BlobError),
    /// The archive's contents are not a valid archive of this job.
    #[error(transparent)]
    Format(#[from] ArchiveFormatError),
    /// The archive, its pointer and the history disagree; nothing was changed.
    #[error("{0}")]
    Mismatch(String),
}
