//! A step's artifact folders: `<MN_JOB_ARTIFACT_ROOT>/<job>/<agent>-<unique>/{in,out}`.
//!
//! `in` holds the artifacts the incoming message references, fetched (local or shared blob
//! store first, else another node through Redis, digest checked) and made read-only before the
//! step starts; `out` starts empty, and whatever the step leaves there is published (see
//! [`super::publish`]). Both are removed when the [`StepArtifacts`] is dropped.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ArtifactError;
use super::error::io;
use crate::domain::artifact::{ArtifactRef, check_name};
use crate::runtime::blobs::{self, BlobStore};
use crate::store::Store;

/// Variable naming the folder whose files the step publishes.
pub const OUT_VAR: &str = "MN_ARTIFACT_DIR";
/// Variable naming the folder holding the incoming message's artifacts.
pub const IN_VAR: &str = "MN_ARTIFACTS_IN";

/// One step's folders, removed on drop (every path: success, failure, cancelled future).
#[derive(Debug)]
pub struct StepArtifacts {
    dir: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
}

impl StepArtifacts {
    /// The variables that tell the step where its folders are.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (OUT_VAR.to_string(), self.output.display().to_string()),
            (IN_VAR.to_string(), self.input.display().to_string()),
        ]
    }
}

impl Drop for StepArtifacts {
    fn drop(&mut self) {
        // Inputs are read-only; their folders must be writable again to be emptied.
        let _ = make_writable(&self.input);
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove artifact folder");
        }
        // The job's folder goes with its last step; one still in use is not empty and stays.
        if let Some(job) = self.dir.parent() {
            let _ = std::fs::remove_dir(job);
        }
    }
}

/// Creates the step's folders under `root` and materialises `inbound` in its input folder.
/// A reference over `max_bytes` (`MN_MAX_ARTIFACT_BYTES` of this node) is refused before
/// anything is fetched: a fetch holds the whole blob in memory.
pub async fn stage(
    store: &Store,
    blobs: &BlobStore,
    root: &Path,
    job_id: &str,
    agent_id: &str,
    inbound: &[ArtifactRef],
    max_bytes: u64,
) -> Result<StepArtifacts, ArtifactError> {
    if let Some(big) = inbound.iter().find(|a| a.size > max_bytes) {
        return Err(ArtifactError::TooLarge {
            name: big.name.clone(),
            size: big.size,
            limit: max_bytes,
        });
    }
    let dir = root.join(component(job_id)).join(format!(
        "{}-{}",
        component(agent_id),
        uuid::Uuid::new_v4().simple()
    ));
    let step = StepArtifacts {
        input: dir.join("in"),
        output: dir.join("out"),
        dir,
    };
    create_dirs(&step)?;
    // A later reference to the same name wins, as it would on a file system.
    let by_name: BTreeMap<&str, &ArtifactRef> =
        inbound.iter().map(|a| (a.name.as_str(), a)).collect();
    for artifact in by_name.values() {
        materialise(store, blobs, &step.input, artifact).await?;
    }
    make_read_only(&step.input).map_err(io(&step.input))?;
    Ok(step)
}

/// A job or agent id as one path component: anything but `[A-Za-z0-9._-]` becomes `-`, and
/// `.`/`..` cannot result. Ids are checked where they are made; this is the last word.
pub fn component(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(120)
        .collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') {
        format!("_{safe}")
    } else {
        safe
    }
}

/// Creates `in` and `out`; retried because a sibling step's drop may remove the job's
/// (momentarily empty) folder between the two levels being created.
fn create_dirs(step: &StepArtifacts) -> Result<(), ArtifactError> {
    let mut last = None;
    for _ in 0..3 {
        match std::fs::create_dir_all(&step.input)
            .and_then(|()| std::fs::create_dir_all(&step.output))
        {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(ArtifactError::Io {
        path: step.dir.display().to_string(),
        source: last.unwrap_or_else(|| std::io::Error::other("could not create")),
    })
}

async fn materialise(
    store: &Store,
    blobs: &BlobStore,
    input: &Path,
    artifact: &ArtifactRef,
) -> Result<(), ArtifactError> {
    let bytes = blobs::fetch(store, blobs, &artifact.sha256)
        .await
        .map_err(|source| ArtifactError::Fetch {
            name: artifact.name.clone(),
            sha256: artifact.sha256.clone(),
            source,
        })?;
    if bytes.len() as u64 != artifact.size {
        return Err(ArtifactError::SizeMismatch {
            name: artifact.name.clone(),
            sha256: artifact.sha256.clone(),
            declared: artifact.size,
            actual: bytes.len() as u64,
        });
    }
    let target = confined(input, &artifact.name)?;
    let write = move || -> std::io::Result<()> {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &bytes)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o444))
    };
    tokio::task::spawn_blocking(write)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(io(input))
}

/// `folder/name` for a checked name (refused names never become paths).
pub fn confined(folder: &Path, name: &str) -> Result<PathBuf, ArtifactError> {
    check_name(name).map_err(|why| ArtifactError::Refused {
        path: name.to_string(),
        why,
    })?;
    Ok(folder.join(name))
}

/// Folders under `dir` (and `dir`) lose their write bit: the step reads its inputs, and a
/// write there fails loudly instead of silently changing what other readers see.
fn make_read_only(dir: &Path) -> std::io::Result<()> {
    set_dir_modes(dir, 0o555)
}

pub(super) fn make_writable(dir: &Path) -> std::io::Result<()> {
    set_dir_modes(dir, 0o755)
}

fn set_dir_modes(dir: &Path, mode: u32) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            set_dir_modes(&entry.path(), mode)?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_single_safe_components() {
        assert_eq!(component("job-1.a_b"), "job-1.a_b");
        assert_eq!(component("../../etc"), "..-..-etc");
        assert_eq!(component(".."), "_..");
        assert_eq!(component(""), "_");
        assert_eq!(component("a/b c"), "a-b-c");
    }

    #[test]
    fn confined_refuses_escaping_names_naming_them() {
        let err = confined(Path::new("/x"), "../../etc/passwd").unwrap_err();
        assert!(err.to_string().contains("../../etc/passwd"), "{err}");
        assert_eq!(
            confined(Path::new("/x"), "a/b").unwrap(),
            Path::new("/x/a/b")
        );
    }
}
