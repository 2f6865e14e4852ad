//! Copies bundle files into a run directory without letting a manifest reach outside the bundle.
//!
//! Sources are relative to `payloads/`; absolute paths and `..` are refused outright, and every
//! source (and every symlink met while copying a directory) is canonicalised and must still lie
//! under the canonical `payloads/` directory. Symlinks are followed, never recreated, so the run
//! directory only ever holds regular files and directories; that is why a lexical check is
//! enough for targets. This closes spec weakness 11 (absolute upload sources).

use std::fs;
use std::path::{Path, PathBuf};

use super::config::UploadSpec;
/// Re-exported: the manifest check and the runner share one definition of a confined path.
pub use crate::domain::manifest::run_paths::{confined_relative, strip_sandbox_prefix};

/// Directory nesting beyond which a copy is refused (also stops symlink cycles).
const MAX_DEPTH: usize = 64;

/// Copies one upload into `run_dir`. `payloads_root` must already be canonical.
pub fn copy_upload(payloads_root: &Path, run_dir: &Path, spec: &UploadSpec) -> Result<(), String> {
    let rel_source = confined_relative(&spec.source, "upload source")?;
    let source = confine(
        payloads_root,
        &payloads_root.join(&rel_source),
        &spec.source,
    )?;
    let target = match &spec.target {
        Some(t) => confined_relative(strip_sandbox_prefix(t), "upload target")?,
        None => PathBuf::from(
            rel_source
                .file_name()
                .ok_or_else(|| format!("upload {:?} needs a target", spec.source))?,
        ),
    };
    if target.as_os_str().is_empty() {
        return Err(format!("upload target for {:?} is empty", spec.source));
    }
    let dest = run_dir.join(target);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    copy_tree(payloads_root, &source, &dest, &spec.source, 0)
}

/// Canonicalises `path` and checks it is still under `root`.
fn confine(root: &Path, path: &Path, shown: &str) -> Result<PathBuf, String> {
    let canonical = path.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("upload source does not exist: {shown}"),
        _ => format!("cannot resolve upload source {shown}: {e}"),
    })?;
    if !canonical.starts_with(root) {
        return Err(format!(
            "upload source {shown} resolves outside the bundle payloads"
        ));
    }
    Ok(canonical)
}

/// Copies a file, or a directory recursively, following (confined) symlinks.
fn copy_tree(
    root: &Path,
    source: &Path,
    dest: &Path,
    shown: &str,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "upload {shown} is nested deeper than {MAX_DEPTH} levels (symlink cycle?)"
        ));
    }
    let meta =
        fs::metadata(source).map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    if meta.is_file() {
        return fs::copy(source, dest).map(|_| ()).map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                source.display(),
                dest.display()
            )
        });
    }
    if !meta.is_dir() {
        return Err(format!(
            "upload {shown} contains {} which is not a file or directory",
            source.display()
        ));
    }
    fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let entries =
        fs::read_dir(source).map_err(|e| format!("cannot list {}: {e}", source.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", source.display()))?;
        let mut child = entry.path();
        let is_link = entry.file_type().map(|t| t.is_symlink()).unwrap_or(false);
        if is_link {
            child = confine(
                root,
                &child,
                &format!("{shown} (link {})", entry.file_name().to_string_lossy()),
            )?;
        }
        copy_tree(
            root,
            &child,
            &dest.join(entry.file_name()),
            shown,
            depth + 1,
        )?;
    }
    Ok(())
}
