//! Bundles uploaded over gRPC (`manifest_json` + `payloads` map): checked, then written once
//! into a content-addressed folder under `$MN_HOME/bundles/<sha256>` and loaded from there.
//! The same upload twice reuses the folder; a job's bundle path stays valid after restarts.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use tonic::Status;

use crate::runtime::bundle::{Bundle, load_bundle};

/// Checks one payload key: relative, no `..`, no empty or odd components.
fn safe_key(key: &str) -> Result<PathBuf, Status> {
    let bad = || {
        Status::invalid_argument(format!(
            "payload path must be relative and stay inside payloads/: {key:?}"
        ))
    };
    if key.is_empty() || key.starts_with('/') || key.contains('\\') || key.contains('\0') {
        return Err(bad());
    }
    // Checked segment by segment: `Path::components` would silently drop a `.` segment.
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(bad());
    }
    let path = Path::new(key);
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad());
    }
    Ok(path.to_path_buf())
}

/// Writes the upload (if new) and loads it as a bundle. Validation errors come back as
/// INVALID_ARGUMENT listing every problem.
pub async fn materialise(
    bundles_dir: &Path,
    manifest_json: &str,
    payloads: &HashMap<String, Vec<u8>>,
) -> Result<Bundle, Status> {
    let mut keys: Vec<(String, PathBuf)> = payloads
        .keys()
        .map(|k| safe_key(k).map(|p| (k.clone(), p)))
        .collect::<Result<_, _>>()?;
    keys.sort();
    let mut hash = Sha256::new();
    hash.update(manifest_json.as_bytes());
    for (k, _) in &keys {
        hash.update([0u8]);
        hash.update(k.as_bytes());
        hash.update([0u8]);
        hash.update(&payloads[k]);
    }
    let root = bundles_dir.join(hex::encode(hash.finalize()));
    let (manifest, files) = (manifest_json.to_string(), payloads.clone());
    let dir = root.clone();
    tokio::task::spawn_blocking(move || write_once(&dir, &manifest, &files, &keys))
        .await
        .map_err(|e| Status::internal(format!("bundle upload task failed: {e}")))?
        .map_err(|e| Status::internal(format!("cannot store the uploaded bundle: {e}")))?;
    tokio::task::spawn_blocking(move || load_bundle(&root))
        .await
        .map_err(|e| Status::internal(format!("bundle load task failed: {e}")))?
        .map_err(|e| super::status::bundle(&e))
}

/// Writes into a temporary sibling and renames, so a half-written folder is never used.
fn write_once(
    root: &Path,
    manifest: &str,
    files: &HashMap<String, Vec<u8>>,
    keys: &[(String, PathBuf)],
) -> std::io::Result<()> {
    if root.join("manifest.json").is_file() {
        return Ok(());
    }
    let parent = root.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(tmp.join("payloads"))?;
    std::fs::write(tmp.join("manifest.json"), manifest)?;
    for (key, rel) in keys {
        let dest = tmp.join("payloads").join(rel);
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(dest, &files[key])?;
    }
    match std::fs::rename(&tmp, root) {
        Ok(()) => Ok(()),
        // Someone else stored the same bundle meanwhile: theirs is identical.
        Err(_) if root.join("manifest.json").is_file() => std::fs::remove_dir_all(&tmp),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keys_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a\\b"] {
            assert!(safe_key(bad).is_err(), "{bad:?} accepted");
        }
        assert!(safe_key("scripts/run.py").is_ok());
    }
}
