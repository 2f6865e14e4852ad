//! Bundles uploaded over gRPC (`manifest_json` + `payloads` map). The upload is checked in
//! memory first ([`check`]); a refused upload is INVALID_ARGUMENT naming the payload key or
//! manifest field at fault, and nothing is written. An accepted one is written once
//! ([`write`]) into a content-addressed folder under `$MN_HOME/bundles/<sha256>` and loaded
//! from there; the same upload twice reuses the folder, and a job's bundle path stays valid
//! after restarts. No answer shows a server path.
//!
//! # Layout
//! - [`keys`]: payload key syntax and file/folder clashes; [`check`]: the whole upload;
//! - [`problem`]: why an upload was refused, as the uploader reads it; [`write`]: the disk.

pub mod check;
pub mod keys;
pub mod problem;
pub mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tonic::Status;

use crate::runtime::bundle::{Bundle, BundleError, load_bundle};
use problem::Problem;

/// Checks the upload, writes it (if new) and loads it as a bundle.
pub async fn materialise(
    bundles_dir: &Path,
    manifest_json: &str,
    payloads: &HashMap<String, Vec<u8>>,
) -> Result<Bundle, Status> {
    let problems = check::problems(manifest_json, payloads.keys().map(String::as_str));
    if !problems.is_empty() {
        return Err(Status::invalid_argument(problem::describe(&problems)));
    }
    let root = bundles_dir.join(digest(manifest_json, payloads));
    let (manifest, files, dir) = (manifest_json.to_string(), payloads.clone(), root.clone());
    let wrote = tokio::task::spawn_blocking(move || write::write_once(&dir, &manifest, &files))
        .await
        .map_err(|e| Status::internal(format!("bundle upload task failed: {e}")))?
        .map_err(|e| {
            tracing::error!(path = %root.display(), error = %e, "cannot store an uploaded bundle");
            Status::internal(format!("the server cannot store the uploaded bundle: {e}"))
        })?;
    load_stored(root, wrote).await
}

/// Loads the stored upload. The in-memory check already passed, so a refusal here is a check
/// that pass does not know: still the uploader's error (INVALID_ARGUMENT), with any server
/// path cut out. Anything else is the server's trouble, logged with the path and answered
/// without it. Either way a folder this call wrote is removed again.
async fn load_stored(root: PathBuf, wrote: bool) -> Result<Bundle, Status> {
    tokio::task::spawn_blocking(move || {
        load_bundle(&root).map_err(|e| {
            tracing::warn!(path = %root.display(), error = %e, "an uploaded bundle that passed its checks did not load");
            let status = match e {
                BundleError::Invalid(errors) => {
                    let problems: Vec<Problem> =
                        errors.into_iter().map(Problem::Manifest).collect();
                    Status::invalid_argument(without_paths(&problem::describe(&problems), &root))
                }
                _ => Status::internal(
                    "the server stored the uploaded bundle but cannot load it; see its log",
                ),
            };
            if wrote {
                let _ = std::fs::remove_dir_all(&root);
            }
            status
        })
    })
    .await
    .map_err(|e| Status::internal(format!("bundle load task failed: {e}")))?
}

/// `text` with the stored bundle's folder (as given and as resolved) replaced by `<upload>`.
fn without_paths(text: &str, root: &Path) -> String {
    let mut shown = text.to_string();
    let resolved = root.canonicalize().ok();
    for p in std::iter::once(root).chain(resolved.as_deref()) {
        shown = shown.replace(&p.display().to_string(), "<upload>");
    }
    shown
}

/// The folder name of an upload: a digest of the manifest text and every key and file, in
/// key order, with separators that no key contains (keys have no NUL).
fn digest(manifest_json: &str, payloads: &HashMap<String, Vec<u8>>) -> String {
    let mut keys: Vec<&String> = payloads.keys().collect();
    keys.sort();
    let mut hash = Sha256::new();
    hash.update(manifest_json.as_bytes());
    for k in keys {
        hash.update([0u8]);
        hash.update(k.as_bytes());
        hash.update([0u8]);
        hash.update(&payloads[k]);
    }
    hex::encode(hash.finalize())
}
