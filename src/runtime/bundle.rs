//! Job bundles on disk: a folder with `manifest.json` and `payloads/`.
//!
//! This is the filesystem half of validation. The pure half (`domain::manifest`) already
//! refused absolute and `..` payload paths; here every payload path must exist and, after
//! resolving symlinks, still lie inside `payloads/`. Nothing here panics on any input.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::domain::manifest::{
    Manifest, ValidationError, is_confined, manifest_warnings, parse_manifest, payload_refs,
};
use crate::runtime::executor::ExecutorPools;

mod executors;
#[cfg(test)]
mod tests;

/// The manifest file inside a bundle.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The folder executors' scripts and uploads are read from.
pub const PAYLOADS_DIR: &str = "payloads";
/// Largest manifest accepted: the normalised form is stored in the job's first event.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// A loaded, validated bundle. Paths are canonical (absolute, symlinks resolved).
#[derive(Debug, Clone)]
pub struct Bundle {
    pub root: PathBuf,
    pub payloads: PathBuf,
    pub manifest: Manifest,
    /// The manifest as written, for archiving alongside the normalised form.
    pub raw: Value,
}

/// Why a bundle could not be loaded. Every variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("job folder does not exist: {}", path.display())]
    NotFound { path: PathBuf },
    #[error("expected a job folder, got file {}", path.display())]
    NotAFolder { path: PathBuf },
    #[error("job folder is missing manifest.json: {}", path.display())]
    MissingManifest { path: PathBuf },
    #[error("job folder is missing payloads/: {}", path.display())]
    MissingPayloads { path: PathBuf },
    #[error("manifest {} is {size} bytes; the limit is {limit} bytes", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("manifest {} is not valid JSON (line {line}, column {column}): {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("payload path must be relative and stay inside payloads/: {rel:?}")]
    OutsidePayloads { rel: String },
    #[error("payload path {rel:?} resolves to {}, outside payloads/ (through a symlink)", resolved.display())]
    EscapesPayloads { rel: String, resolved: PathBuf },
    #[error("upload source does not exist: {}", path.display())]
    PayloadMissing { path: PathBuf },
    /// The manifest (or a payload path in it) is invalid; the author should fix every entry.
    #[error("invalid manifest: {}", ValidationError::join(.0))]
    Invalid(Vec<ValidationError>),
}

/// The outcome of checking a bundle: the bundle or why it cannot run, and the warnings
/// (unknown keys, clamped limits), which are reported either way.
#[derive(Debug)]
pub struct Checked {
    pub bundle: Result<Bundle, BundleError>,
    /// `path: message`, one per warning.
    pub warnings: Vec<String>,
}

/// Loads and fully validates the bundle at `path`: everything the runner would refuse is
/// refused here, so `validate`, `run` and a submission through `serve` agree.
pub fn load_bundle(path: &Path) -> Result<Bundle, BundleError> {
    check_bundle(path).bundle
}

/// [`load_bundle`], plus the warnings (which `validate` prints even for an invalid bundle).
pub fn check_bundle(path: &Path) -> Checked {
    let mut warnings = Vec::new();
    let bundle = load(path, &mut warnings);
    if let Ok(b) = &bundle {
        warnings.extend(crate::runtime::executor::config::output_cap_warnings(
            &b.manifest,
        ));
        warnings.extend(crate::runtime::executor::config::secret_env_warnings(
            &b.manifest,
        ));
        warnings.extend(crate::runtime::executor::config::sandbox_warnings(
            &b.manifest,
        ));
    }
    Checked { bundle, warnings }
}

/// The runner's settings check of every executor (needs this host's pools, but no files). An
/// upload over gRPC runs it in memory, before anything is written.
pub fn check_executors(manifest: &Manifest) -> Vec<ValidationError> {
    executors::check(manifest, ExecutorPools::from_env().ok().as_ref())
}

fn load(path: &Path, warnings: &mut Vec<String>) -> Result<Bundle, BundleError> {
    let root = job_folder(path)?;
    let manifest_path = root.join(MANIFEST_FILE);
    if !manifest_path.is_file() {
        return Err(BundleError::MissingManifest {
            path: manifest_path,
        });
    }
    let payloads = root.join(PAYLOADS_DIR);
    if !payloads.is_dir() {
        return Err(BundleError::MissingPayloads { path: payloads });
    }
    let payloads = payloads.canonicalize().map_err(|source| BundleError::Io {
        path: payloads.clone(),
        source,
    })?;
    let raw = read_manifest(&manifest_path)?;
    warnings.extend(manifest_warnings(&raw).iter().map(ToString::to_string));
    let manifest = parse_manifest(&raw).map_err(BundleError::Invalid)?;
    let mut errors: Vec<ValidationError> = payload_refs(&manifest)
        .into_iter()
        .filter_map(|r| {
            resolve_payload_path(&payloads, &r.rel)
                .err()
                .map(|e| ValidationError::new(r.path, e.to_string()))
        })
        .collect();
    errors.extend(check_executors(&manifest));
    if !errors.is_empty() {
        return Err(BundleError::Invalid(errors));
    }
    Ok(Bundle {
        root,
        payloads,
        manifest,
        raw,
    })
}

/// Resolves `rel` against `payloads`, refusing anything that ends up outside it (including
/// through a symlink) or does not exist. The executor runner uses this for every upload.
pub fn resolve_payload_path(payloads: &Path, rel: &str) -> Result<PathBuf, BundleError> {
    if !is_confined(rel) {
        return Err(BundleError::OutsidePayloads {
            rel: rel.to_string(),
        });
    }
    let base = payloads.canonicalize().map_err(|source| BundleError::Io {
        path: payloads.to_path_buf(),
        source,
    })?;
    let joined = base.join(rel);
    let resolved = match joined.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::PayloadMissing { path: joined });
        }
        Err(source) => {
            return Err(BundleError::Io {
                path: joined,
                source,
            });
        }
    };
    if !resolved.starts_with(&base) {
        return Err(BundleError::EscapesPayloads {
            rel: rel.to_string(),
            resolved,
        });
    }
    Ok(resolved)
}

/// The canonical job folder, or why `path` is not one.
fn job_folder(path: &Path) -> Result<PathBuf, BundleError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => path.canonicalize().map_err(|source| BundleError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Ok(_) => Err(BundleError::NotAFolder {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BundleError::NotFound {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(BundleError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads the manifest, checking its size before reading and never reading past the limit.
fn read_manifest(path: &Path) -> Result<Value, BundleError> {
    let io = |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| BundleError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_MANIFEST_BYTES,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_MANIFEST_BYTES {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    serde_json::from_slice(&bytes).map_err(|e| BundleError::Malformed {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}
