//! Where blobs and artifact staging folders live: `MN_BLOB_STORE_ROOT` (default
//! `$MN_HOME/blobs`) and `MN_JOB_ARTIFACT_ROOT` (default `$MN_HOME/artifacts`).
//!
//! The blob root may be a folder every node mounts (NFS, SMB): blobs are immutable and named
//! by their digest, and written by rename, so nodes sharing it read each other's blobs with no
//! transfer. The artifact root only holds a step's short-lived input and output folders, so it
//! is best kept on local disk.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;

/// The variable naming a shared blob store.
pub const BLOB_ROOT_VAR: &str = "MN_BLOB_STORE_ROOT";
/// The variable naming the parent of per-job artifact staging folders.
pub const ARTIFACT_ROOT_VAR: &str = "MN_JOB_ARTIFACT_ROOT";

/// The blob store's folder: `MN_BLOB_STORE_ROOT`, else `$MN_HOME/blobs`.
pub fn blob_root() -> PathBuf {
    crate::config::var(BLOB_ROOT_VAR)
        .map_or_else(|| crate::config::home_dir().join("blobs"), PathBuf::from)
}

/// The parent of per-job staging folders: `MN_JOB_ARTIFACT_ROOT`, else `$MN_HOME/artifacts`.
pub fn artifact_root() -> PathBuf {
    crate::config::var(ARTIFACT_ROOT_VAR).map_or_else(
        || crate::config::home_dir().join("artifacts"),
        PathBuf::from,
    )
}

/// Checks both roots at `serve` start, so a bad mount is reported once, naming the
/// variable, instead of failing every step later. Creates them when missing.
pub fn validate_from_env() -> Result<(), ConfigError> {
    if let Some(v) = crate::config::var(BLOB_ROOT_VAR) {
        validate(BLOB_ROOT_VAR, Path::new(&v))?;
    }
    if let Some(v) = crate::config::var(ARTIFACT_ROOT_VAR) {
        validate(ARTIFACT_ROOT_VAR, Path::new(&v))?;
    }
    Ok(())
}

/// `path` must be absolute (a relative one would depend on where `serve` was started, and
/// differ between nodes sharing it) and a folder this process can write.
pub fn validate(name: &'static str, path: &Path) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name, reason };
    if !path.is_absolute() {
        return Err(invalid(format!(
            "{} is a relative path; give an absolute one",
            path.display()
        )));
    }
    std::fs::create_dir_all(path)
        .map_err(|e| invalid(format!("cannot create {}: {e}", path.display())))?;
    let probe = path.join(format!(".mn-write-probe.{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&probe, b"probe")
        .map_err(|e| invalid(format!("{} is not writable: {e}", path.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_must_be_absolute_and_writable() {
        let err = validate(BLOB_ROOT_VAR, Path::new("blobs")).unwrap_err();
        assert!(err.to_string().contains("MN_BLOB_STORE_ROOT"), "{err}");
        assert!(err.to_string().contains("relative"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        validate(ARTIFACT_ROOT_VAR, &dir.path().join("a/b")).unwrap();
        assert!(dir.path().join("a/b").is_dir());
        // A file where the folder should be.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = validate(ARTIFACT_ROOT_VAR, &file).unwrap_err();
        assert!(err.to_string().contains("MN_JOB_ARTIFACT_ROOT"), "{err}");
    }
}
