//! Files copied from `payloads/` into the run directory: `upload_path` + `upload_as`, and
//! every `upload_paths` entry. Sources are checked by `payload_paths` (and on disk by the
//! bundle loader); here the targets must stay inside the run directory.

use serde_json::{Map, Value};

use super::super::error::{Errors, join, kind};
use super::super::run_paths::run_dir_path;
use super::numbers::opt_string;

/// One file or directory copied from the bundle's `payloads/` into the run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSpec {
    /// Path relative to `payloads/`.
    pub source: String,
    /// Path relative to the run directory; `None` means the source's file name.
    pub target: Option<String>,
}

pub(super) fn parse(config: &Map<String, Value>, path: &str, errs: &mut Errors) -> Vec<UploadSpec> {
    let mut uploads = Vec::new();
    if let Some(source) = opt_string(config, "upload_path", path, errs) {
        let target = opt_string(config, "upload_as", path, errs);
        check_target(
            target.as_deref(),
            &join(path, "upload_as"),
            "upload_as",
            errs,
        );
        uploads.push(UploadSpec { source, target });
    }
    let list_path = join(path, "upload_paths");
    let entries = match config.get("upload_paths") {
        None | Some(Value::Null) => return uploads,
        Some(Value::Array(items)) => items,
        Some(other) => {
            errs.push(
                list_path,
                format!("upload_paths must be a list, got {}", kind(other)),
            );
            return uploads;
        }
    };
    for (i, entry) in entries.iter().enumerate() {
        let entry_path = format!("{list_path}[{i}]");
        match entry {
            Value::String(s) => uploads.push(UploadSpec {
                source: s.clone(),
                target: None,
            }),
            Value::Object(m) => {
                if m.get("source").is_none_or(Value::is_null) {
                    errs.push(
                        join(&entry_path, "source"),
                        format!("upload_paths[{i}] requires source"),
                    );
                }
                let source = opt_string(m, "source", &entry_path, errs);
                let target = opt_string(m, "target", &entry_path, errs);
                check_target(
                    target.as_deref(),
                    &join(&entry_path, "target"),
                    "upload target",
                    errs,
                );
                if let Some(source) = source {
                    uploads.push(UploadSpec { source, target });
                }
            }
            other => errs.push(
                entry_path,
                format!(
                    "upload_paths[{i}] must be an object {{source, target?}}, got {}",
                    kind(other)
                ),
            ),
        }
    }
    uploads
}

fn check_target(target: Option<&str>, path: &str, what: &str, errs: &mut Errors) {
    if let Some(e) = target.and_then(|t| run_dir_path(t, what).err()) {
        errs.push(path, e);
    }
}
