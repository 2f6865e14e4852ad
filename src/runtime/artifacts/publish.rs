//! Publishing a step's output folder: every plain file left in it (sub-folders included)
//! becomes a blob, and the step's messages carry references to them.
//!
//! Every file, rather than a list in the structured output, so that a step with plain output
//! publishes too and cannot name a path outside its folder. Anything that is not a plain file
//! or folder (a symlink, which could point anywhere; a fifo; a device) is refused with the
//! path named, never followed.

use std::io::{Read, Write};
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use super::ArtifactError;
use super::error::io;
use crate::domain::artifact::{ArtifactRef, check_name};
use crate::runtime::blobs::BlobStore;

/// Most files one step may publish (each becomes a reference in every message it emits).
pub const MAX_FILES: usize = 1000;

/// Stores every file under `output` in `blobs`, refusing any over `max_file_bytes`; returns
/// their references sorted by name. Blocking: call it from `spawn_blocking`.
pub fn publish(
    output: &Path,
    blobs: &BlobStore,
    max_file_bytes: u64,
) -> Result<Vec<ArtifactRef>, ArtifactError> {
    let mut files = Vec::new();
    walk(output, output, &mut files)?;
    files.sort();
    files
        .into_iter()
        .map(|name| store_file(output, &name, blobs, max_file_bytes))
        .collect()
}

/// Collects the names (relative, `/`-separated) of the plain files under `dir`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), ArtifactError> {
    let entries = std::fs::read_dir(dir).map_err(io(dir))?;
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        let kind = std::fs::symlink_metadata(&path)
            .map_err(io(&path))?
            .file_type();
        let refused = |why: &str| ArtifactError::Refused {
            path: path.display().to_string(),
            why: why.to_string(),
        };
        if kind.is_symlink() {
            return Err(refused(
                "it is a symbolic link (only plain files inside the artifact folder are published)",
            ));
        }
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            if out.len() >= MAX_FILES {
                return Err(ArtifactError::TooMany { limit: MAX_FILES });
            }
            out.push(relative_name(root, &path)?);
        } else {
            return Err(refused("it is not a plain file"));
        }
    }
    Ok(())
}

/// `path` relative to `root`, as a checked artifact name.
fn relative_name(root: &Path, path: &Path) -> Result<String, ArtifactError> {
    let refused = |why: String| ArtifactError::Refused {
        path: path.display().to_string(),
        why,
    };
    let rel = path
        .strip_prefix(root)
        .map_err(|_| refused("it is outside the artifact folder".into()))?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| refused("its name is not UTF-8".into()))?,
            ),
            _ => return Err(refused("it is outside the artifact folder".into())),
        }
    }
    let name = parts.join("/");
    check_name(&name).map_err(refused)?;
    Ok(name)
}

/// Copies one file into the blob store, hashing on the way (never held in memory whole).
fn store_file(
    root: &Path,
    name: &str,
    blobs: &BlobStore,
    max_file_bytes: u64,
) -> Result<ArtifactRef, ArtifactError> {
    let path = root.join(name);
    let mut file = std::fs::File::open(&path).map_err(io(&path))?;
    let too_large = |size| ArtifactError::TooLarge {
        name: name.to_string(),
        size,
        limit: max_file_bytes,
    };
    let declared = file.metadata().map_err(io(&path))?.len();
    if declared > max_file_bytes {
        return Err(too_large(declared));
    }
    let blob = |source| ArtifactError::Blob {
        name: name.to_string(),
        source,
    };
    let (tmp, mut spool) = blobs.spool().map_err(blob)?;
    let copied = copy_hashed(&mut file, &mut spool, max_file_bytes);
    drop(spool);
    let (sha256, size) = match copied {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&path)(e));
        }
    };
    // The file grew while it was copied: judged on what was read.
    if size > max_file_bytes {
        let _ = std::fs::remove_file(&tmp);
        return Err(too_large(size));
    }
    let stored = blobs.commit_spool(&tmp, &sha256, size).map_err(blob)?;
    Ok(ArtifactRef {
        name: name.to_string(),
        sha256: stored.sha256,
        size: stored.size,
        content_type: None,
    })
}

/// Copies at most `limit + 1` bytes, returning their digest and count.
fn copy_hashed(
    from: &mut std::fs::File,
    to: &mut std::fs::File,
    limit: u64,
) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut reader = from.take(limit.saturating_add(1));
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        size += n as u64;
    }
    to.sync_all()?;
    Ok((hex::encode(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_published_by_its_relative_name() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("sub")).unwrap();
        std::fs::write(out.join("a.txt"), b"alpha").unwrap();
        std::fs::write(out.join("sub/b.bin"), vec![7u8; 100_000]).unwrap();
        let blobs = BlobStore::new(dir.path().join("blobs"));
        let refs = publish(&out, &blobs, 1 << 20).unwrap();
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "sub/b.bin"]);
        assert_eq!(refs[1].size, 100_000);
        assert_eq!(blobs.get(&refs[0].sha256).unwrap(), b"alpha");
        assert_eq!(refs[0].sha256, crate::runtime::blobs::digest(b"alpha"));
    }

    #[test]
    fn a_symlink_leaving_the_folder_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", out.join("passwd")).unwrap();
        let blobs = BlobStore::new(dir.path().join("blobs"));
        let err = publish(&out, &blobs, 1 << 20).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("passwd") && text.contains("symbolic link"),
            "{text}"
        );
        assert!(blobs.list().unwrap().is_empty());
    }

    #[test]
    fn a_file_over_the_ceiling_is_refused_and_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("big"), vec![1u8; 2048]).unwrap();
        let blobs = BlobStore::new(dir.path().join("blobs"));
        let err = publish(&out, &blobs, 1024).unwrap_err();
        assert!(
            err.to_string().contains("\"big\"")
                && err.to_string().contains("MN_MAX_ARTIFACT_BYTES"),
            "{err}"
        );
        assert!(blobs.list().unwrap().is_empty());
    }
}
