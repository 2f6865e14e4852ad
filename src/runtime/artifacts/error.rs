//! Why a step's artifacts could not be staged or published.

use serde_json::{Value, json};

use crate::runtime::blobs::{BlobError, FetchError};

/// One error type for the artifact folders; each names the artifact (and digest) involved,
/// since that is what the author of the step can act on.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// An inbound artifact could not be had: no node holds it, its holders did not answer,
    /// or the copy was corrupt. Retrying may help (a holder coming back).
    #[error("artifact {name:?} (sha256 {sha256}) could not be fetched: {source}")]
    Fetch {
        name: String,
        sha256: String,
        source: FetchError,
    },
    /// What arrived does not have the size its reference declares.
    #[error("artifact {name:?} (sha256 {sha256}) is {actual} bytes, its reference says {declared}")]
    SizeMismatch {
        name: String,
        sha256: String,
        declared: u64,
        actual: u64,
    },
    /// A file is larger than the server ceiling `MN_MAX_ARTIFACT_BYTES`.
    #[error(
        "artifact {name:?} is {size} bytes, over the server ceiling MN_MAX_ARTIFACT_BYTES ({limit})"
    )]
    TooLarge { name: String, size: u64, limit: u64 },
    /// A published path is a symlink, a device, or otherwise not a plain file or folder inside
    /// the output folder.
    #[error("artifact path {path} is refused: {why}")]
    Refused { path: String, why: String },
    /// More files than a step may publish.
    #[error("the step published more than {limit} artifacts")]
    TooMany { limit: usize },
    #[error("artifact folder {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("artifact {name:?}: blob store: {source}")]
    Blob { name: String, source: BlobError },
}

impl ArtifactError {
    /// Whether trying the step again may succeed (a holder may come back, a disk may have
    /// room); a refused path or an oversized file will be refused again.
    pub fn transient(&self) -> bool {
        match self {
            ArtifactError::Fetch { source, .. } => !matches!(
                source,
                FetchError::Blob(BlobError::BadDigest(_) | BlobError::Corrupt { .. })
            ),
            ArtifactError::Io { .. } | ArtifactError::Blob { .. } => true,
            ArtifactError::SizeMismatch { .. }
            | ArtifactError::TooLarge { .. }
            | ArtifactError::Refused { .. }
            | ArtifactError::TooMany { .. } => false,
        }
    }

    /// The step result's error value.
    pub fn to_step_error(&self) -> Value {
        json!({"error": self.to_string(), "kind": "artifact", "transient": self.transient()})
    }
}

/// Maps an I/O error on `path` to [`ArtifactError::Io`] (for `map_err`).
pub(super) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let path = path.display().to_string();
    move |source| ArtifactError::Io { path, source }
}
