//! The content-addressed blob store: large step outputs, published artifacts and archived
//! histories live on disk under `$MN_HOME/blobs/<sha256>` (or `MN_BLOB_STORE_ROOT`), and
//! events and views carry a [`BlobRef`] instead of the bytes. A blob is immutable and named by
//! the SHA-256 of its contents, so writing one twice is harmless and two nodes that share the
//! folder (an NFS or SMB mount named by `MN_BLOB_STORE_ROOT`) share their blobs.
//!
//! Writes go to a temporary file in the same folder and are renamed into place, so a reader
//! never sees half a blob, and a crash leaves at most a `*.tmp` file that `admin gc` removes.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use super::blob_fetch::{FetchError, fetch};

/// A reference to a stored blob, as events and views carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// Lower-case hex SHA-256 of the contents.
    pub sha256: String,
    /// Size of the contents in bytes.
    pub size: u64,
}

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob digest {0:?} is not a sha256 hex digest")]
    BadDigest(String),
    #[error("blob {0} is not stored on this node")]
    Missing(String),
    #[error("blob {digest} is corrupt: its contents hash to {actual}")]
    Corrupt { digest: String, actual: String },
    #[error("blob store {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A folder of blobs named by their digest.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// The SHA-256 of `bytes`, as lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// True when `s` looks like a digest this store writes (so it is safe as a file name).
pub fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl BlobStore {
    /// The store under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> BlobStore {
        BlobStore { root: root.into() }
    }

    /// The store of this machine: `MN_BLOB_STORE_ROOT`, else `$MN_HOME/blobs`.
    pub fn from_env() -> BlobStore {
        BlobStore::new(super::artifacts::roots::blob_root())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `sha256` lives; refuses anything that is not a digest, so a reference
    /// read from outside can never name a path outside the store.
    pub fn path(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        if !is_digest(sha256) {
            return Err(BlobError::BadDigest(sha256.to_string()));
        }
        Ok(self.root.join(sha256))
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> BlobError {
        let path = path.display().to_string();
        move |source| BlobError::Io { path, source }
    }

    /// Stores `bytes` and returns their reference (a no-op when the blob exists already).
    pub fn put(&self, bytes: &[u8]) -> Result<BlobRef, BlobError> {
        let sha256 = digest(bytes);
        let target = self.path(&sha256)?;
        if !target.exists() {
            std::fs::create_dir_all(&self.root).map_err(self.io(&self.root))?;
            let tmp = self.root.join(format!(
                "{sha256}.{}.{}.tmp",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            let mut file = std::fs::File::create(&tmp).map_err(self.io(&tmp))?;
            file.write_all(bytes).map_err(self.io(&tmp))?;
            file.sync_all().map_err(self.io(&tmp))?;
            std::fs::rename(&tmp, &target).map_err(self.io(&target))?;
        }
        Ok(BlobRef {
            sha256,
            size: bytes.len() as u64,
        })
    }

    /// A new temporary file in the store's folder, for bytes written as they arrive (a
    /// process's output); [`BlobStore::commit_spool`] then names it by its digest with a
    /// rename, so a large output is never copied or held in memory.
    pub fn spool(&self) -> Result<(PathBuf, std::fs::File), BlobError> {
        std::fs::create_dir_all(&self.root).map_err(self.io(&self.root))?;
        let tmp = self.root.join(format!(
            "spool.{}.{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::File::create(&tmp).map_err(self.io(&tmp))?;
        Ok((tmp, file))
    }

    /// Stores a spooled file whose contents hash to `sha256` (computed while writing it).
    /// The spool file is gone afterwards in every case.
    pub fn commit_spool(&self, tmp: &Path, sha256: &str, size: u64) -> Result<BlobRef, BlobError> {
        let target = match self.path(sha256) {
            Ok(t) => t,
            Err(e) => {
                let _ = std::fs::remove_file(tmp);
                return Err(e);
            }
        };
        if target.exists() {
            let _ = std::fs::remove_file(tmp);
        } else {
            std::fs::rename(tmp, &target).map_err(self.io(&target))?;
        }
        Ok(BlobRef {
            sha256: sha256.to_string(),
            size,
        })
    }

    /// Whether the blob is stored here.
    pub fn contains(&self, sha256: &str) -> bool {
        self.path(sha256).is_ok_and(|p| p.is_file())
    }

    /// Reads a whole blob, checking that its contents still hash to its name.
    pub fn get(&self, sha256: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path(sha256)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(sha256.to_string()));
            }
            Err(e) => return Err(self.io(&path)(e)),
        };
        let actual = digest(&bytes);
        if actual != sha256 {
            return Err(BlobError::Corrupt {
                digest: sha256.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads `len` bytes of a blob from `offset` (fewer at its end), for paged answers.
    pub fn read_range(&self, sha256: &str, offset: u64, len: usize) -> Result<Vec<u8>, BlobError> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path(sha256)?;
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(sha256.to_string()));
            }
            Err(e) => return Err(self.io(&path)(e)),
        };
        file.seek(SeekFrom::Start(offset)).map_err(self.io(&path))?;
        let mut out = Vec::with_capacity(len.min(1 << 20));
        file.take(len as u64)
            .read_to_end(&mut out)
            .map_err(self.io(&path))?;
        Ok(out)
    }

    /// Every stored digest (temporary files and foreign names are left out).
    pub fn list(&self) -> Result<Vec<String>, BlobError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.io(&self.root)(e)),
        };
        let mut out: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_digest(n))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes a blob; true when it was there.
    pub fn remove(&self, sha256: &str) -> Result<bool, BlobError> {
        let path = self.path(sha256)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path().join("blobs"));
        let a = store.put(b"hello").unwrap();
        let b = store.put(b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.size, 5);
        assert_eq!(store.get(&a.sha256).unwrap(), b"hello");
        assert_eq!(store.read_range(&a.sha256, 1, 3).unwrap(), b"ell");
        assert_eq!(store.list().unwrap(), vec![a.sha256.clone()]);
        assert!(store.remove(&a.sha256).unwrap());
        assert!(matches!(store.get(&a.sha256), Err(BlobError::Missing(_))));
    }

    #[test]
    fn names_that_are_not_digests_never_become_paths() {
        let store = BlobStore::new("/tmp/x");
        for bad in ["../../etc/passwd", "", "ABC", &"g".repeat(64)] {
            assert!(matches!(store.path(bad), Err(BlobError::BadDigest(_))));
        }
    }

    #[test]
    fn a_blob_changed_on_disk_is_reported_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let r = store.put(b"data").unwrap();
        std::fs::write(store.path(&r.sha256).unwrap(), b"evil").unwrap();
        assert!(matches!(
            store.get(&r.sha256),
            Err(BlobError::Corrupt { .. })
        ));
    }
}
