//! Archiving a job's payloads in Redis at submit time and materialising them on the node that
//! runs a step. A node uses the bundle folder when it can see it (same machine, shared
//! folder); otherwise it writes the archived files once into `$MN_HOME/bundles/cas/<digest>`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::{BundleFile, Store, StoreError};

/// Where archived bundles are materialised on this machine.
pub fn cache_root() -> PathBuf {
    crate::config::home_dir().join("bundles").join("cas")
}

/// Bundles bigger than this are not archived (jobs then need the folder on every node).
pub fn max_archive_bytes() -> u64 {
    crate::config::u64_var("MN_BUNDLE_ARCHIVE_MAX_BYTES", 64 * 1024 * 1024)
        .unwrap_or(64 * 1024 * 1024)
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read payload {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("payload {0} leaves the bundle's payloads folder")]
    Escapes(String),
    #[error("bundle {digest} cannot be written to {dir}: {source}")]
    Write {
        digest: String,
        dir: String,
        source: std::io::Error,
    },
    #[error("archived bundle {0} is not in Redis")]
    Missing(String),
    #[error("archived bundle {digest} holds an unsafe path {path:?}")]
    UnsafePath { digest: String, path: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads every regular file under `payloads` (symlinks must stay inside it), sorted by path.
pub fn collect(payloads: &Path) -> Result<Vec<BundleFile>, ArchiveError> {
    let mut files = vec![];
    if !payloads.is_dir() {
        return Ok(files);
    }
    let root = payloads
        .canonicalize()
        .map_err(|source| ArchiveError::Read {
            path: payloads.display().to_string(),
            source,
        })?;
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| ArchiveError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| ArchiveError::Read {
                path: dir.display().to_string(),
                source,
            })?;
            let path = entry.path();
            let real = path.canonicalize().map_err(|source| ArchiveError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let rel = path
                .strip_prefix(&root)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if !real.starts_with(&root) {
                return Err(ArchiveError::Escapes(rel));
            }
            if real.is_dir() {
                stack.push(path);
                continue;
            }
            let meta = std::fs::metadata(&real).map_err(|source| ArchiveError::Read {
                path: rel.clone(),
                source,
            })?;
            let bytes = std::fs::read(&real).map_err(|source| ArchiveError::Read {
                path: rel.clone(),
                source,
            })?;
            files.push(BundleFile {
                path: rel,
                bytes,
                executable: meta.permissions().mode() & 0o111 != 0,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The content address of a set of files.
pub fn digest(files: &[BundleFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.path.as_bytes());
        h.update([0u8, u8::from(f.executable)]);
        h.update((f.bytes.len() as u64).to_le_bytes());
        h.update(&f.bytes);
    }
    hex::encode(h.finalize())
}

/// Archives the payloads of a bundle unless they are too big; returns the digest.
pub async fn archive(store: &Store, payloads: &Path) -> Result<Option<String>, ArchiveError> {
    let dir = payloads.to_path_buf();
    let files = tokio::task::spawn_blocking(move || collect(&dir))
        .await
        .map_err(|e| ArchiveError::Read {
            path: payloads.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })??;
    let size: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
    if size > max_archive_bytes() {
        tracing::warn!(
            size,
            "bundle payloads too big to archive in Redis; other nodes need the bundle folder"
        );
        return Ok(None);
    }
    let d = digest(&files);
    if !store.has_bundle(&d).await? {
        store.put_bundle(&d, &files).await?;
    }
    Ok(Some(d))
}

/// The payloads folder for a step: the bundle's own folder when this machine has it, else
/// the archived copy written under `cache_root/<digest>`.
pub async fn payloads_dir(
    store: &Store,
    bundle_path: Option<&str>,
    digest: Option<&str>,
    cache_root: &Path,
) -> Result<PathBuf, ArchiveError> {
    if let Some(b) = bundle_path {
        let local = PathBuf::from(b).join("payloads");
        if local.is_dir() || digest.is_none() {
            return Ok(local);
        }
    }
    let Some(d) = digest else {
        return Ok(PathBuf::new());
    };
    let dest = cache_root.join(d);
    if dest.is_dir() {
        return Ok(dest);
    }
    let files = store
        .bundle_files(d)
        .await?
        .ok_or_else(|| ArchiveError::Missing(d.to_string()))?;
    let (dest2, d2) = (dest.clone(), d.to_string());
    tokio::task::spawn_blocking(move || write_once(&dest2, &d2, &files))
        .await
        .map_err(|e| ArchiveError::Write {
            digest: d.to_string(),
            dir: dest.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })??;
    Ok(dest)
}

/// Writes into a temporary sibling and renames, so a half-written folder is never used.
fn write_once(dest: &Path, digest: &str, files: &[BundleFile]) -> Result<(), ArchiveError> {
    let err = |source| ArchiveError::Write {
        digest: digest.to_string(),
        dir: dest.display().to_string(),
        source,
    };
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(err)?;
    let tmp = parent.join(format!(".materialise-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&tmp).map_err(err)?;
    for f in files {
        if !crate::domain::manifest::is_confined(&f.path) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ArchiveError::UnsafePath {
                digest: digest.to_string(),
                path: f.path.clone(),
            });
        }
        let target = tmp.join(&f.path);
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(err)?;
        }
        std::fs::write(&target, &f.bytes).map_err(err)?;
        if f.executable {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .map_err(err)?;
        }
    }
    match std::fs::rename(&tmp, dest) {
        Ok(()) => Ok(()),
        // Another step materialised the same bundle meanwhile: it is identical.
        Err(_) if dest.is_dir() => std::fs::remove_dir_all(&tmp).map_err(err),
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_digest_and_materialise_round_trip_keeps_modes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("payloads");
        std::fs::create_dir_all(p.join("scripts")).unwrap();
        std::fs::write(p.join("scripts/run.sh"), "echo hi").unwrap();
        std::fs::set_permissions(
            p.join("scripts/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(p.join("data.txt"), "x").unwrap();
        let files = collect(&p).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["data.txt", "scripts/run.sh"]);
        assert!(files[1].executable && !files[0].executable);
        let d = digest(&files);
        assert_eq!(d, digest(&collect(&p).unwrap()), "digest is stable");
        let out = dir.path().join("cas").join(&d);
        write_once(&out, &d, &files).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("scripts/run.sh")).unwrap(),
            "echo hi"
        );
        let mode = std::fs::metadata(out.join("scripts/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0);
    }

    #[test]
    fn escaping_symlinks_and_unsafe_archived_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("payloads");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), p.join("link")).unwrap();
        assert!(matches!(collect(&p), Err(ArchiveError::Escapes(l)) if l == "link"));
        let bad = vec![BundleFile {
            path: "../x".into(),
            bytes: vec![],
            executable: false,
        }];
        let out = dir.path().join("cas/d");
        assert!(matches!(
            write_once(&out, "d", &bad),
            Err(ArchiveError::UnsafePath { .. })
        ));
        assert!(!dir.path().join("cas/x").exists());
    }
}
