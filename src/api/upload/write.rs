//! Writing an accepted upload: into a temporary sibling folder, then one rename, so a bundle
//! folder is either complete or absent. The temporary folder is removed on every failure.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::runtime::bundle::{MANIFEST_FILE, PAYLOADS_DIR};

/// Prefix of the temporary folders; `write_once` removes its own, whatever happens.
pub const TEMP_PREFIX: &str = ".upload-";

/// A folder removed when dropped, unless it was renamed into place.
struct TempFolder {
    path: PathBuf,
    renamed: bool,
}

impl TempFolder {
    /// Renames the folder to `to`; from here on it is no longer temporary.
    fn rename_to(&mut self, to: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        if self.renamed {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a temporary upload folder");
        }
    }
}

/// Stores the upload at `root` unless an identical one is already there (the folder is named
/// by the content's digest). Returns whether this call wrote it. Keys must have passed
/// `keys::key_set_problems`.
pub fn write_once(
    root: &Path,
    manifest: &str,
    payloads: &HashMap<String, Vec<u8>>,
) -> io::Result<bool> {
    if root.join(MANIFEST_FILE).is_file() {
        return Ok(false);
    }
    let parent = root.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let path = parent.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&path)?;
    let mut tmp = TempFolder {
        path,
        renamed: false,
    };
    fill(&tmp.path, manifest, payloads)?;
    match tmp.rename_to(root) {
        Ok(()) => Ok(true),
        // Someone stored the same bundle meanwhile: theirs is identical (same digest).
        Err(_) if root.join(MANIFEST_FILE).is_file() => Ok(false),
        Err(e) => Err(e),
    }
}

fn fill(dir: &Path, manifest: &str, payloads: &HashMap<String, Vec<u8>>) -> io::Result<()> {
    let base = dir.join(PAYLOADS_DIR);
    std::fs::create_dir(&base)?;
    std::fs::write(dir.join(MANIFEST_FILE), manifest)?;
    for (key, bytes) in payloads {
        let dest = base.join(key);
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(dest, bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn writes_once_and_reuses_the_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("bundles").join("abc");
        let files = HashMap::from([("s/run.py".to_string(), b"print(1)".to_vec())]);
        assert!(write_once(&root, "{}", &files).expect("first write"));
        assert!(!write_once(&root, "{}", &files).expect("second write"));
        assert_eq!(
            std::fs::read(root.join("payloads/s/run.py")).expect("payload"),
            b"print(1)"
        );
        assert_eq!(entries(&dir.path().join("bundles")), vec!["abc"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("bundles").join("abc");
        // Unchecked keys that cannot both be written: the second fails half way.
        let files = HashMap::from([
            ("a".to_string(), b"file".to_vec()),
            ("a/b".to_string(), b"inner".to_vec()),
        ]);
        assert!(write_once(&root, "{}", &files).is_err());
        assert_eq!(entries(&dir.path().join("bundles")), Vec::<String>::new());
    }
}
