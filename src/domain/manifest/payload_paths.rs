//! Config fields that name files under the bundle's `payloads/` folder.
//!
//! The pure check here refuses absolute paths and `..` (a bundle must not reach outside its
//! own payloads); `runtime::bundle` then checks that each path exists and, after resolving
//! symlinks, still lies inside `payloads/`.

use std::path::{Component, Path};

use serde_json::{Map, Value};

use super::error::{Errors, join, kind};
use super::model::Manifest;

/// One payload path named by a node's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadRef {
    /// The author's JSON path of the field (`nodes[2].config.upload_paths[0].source`).
    pub path: String,
    /// The path as written, relative to `payloads/`.
    pub rel: String,
}

/// Single-string fields holding a payload path.
const STRING_FIELDS: [&str; 3] = ["upload_path", "module_source", "policy"];

/// Every payload path in a validated manifest, for the filesystem check.
pub fn payload_refs(manifest: &Manifest) -> Vec<PayloadRef> {
    let mut refs = Vec::new();
    for (i, node) in manifest.nodes.iter().enumerate() {
        scan(
            &node.config,
            &join(&manifest.node_path(i), "config"),
            &mut refs,
            &mut Errors::default(),
        );
    }
    refs
}

/// Validates the payload path fields of one node config and returns them.
pub(crate) fn check(
    config: &Map<String, Value>,
    config_path: &str,
    errs: &mut Errors,
) -> Vec<PayloadRef> {
    let mut refs = Vec::new();
    scan(config, config_path, &mut refs, errs);
    for r in &refs {
        if !is_confined(&r.rel) {
            errs.push(
                &r.path,
                format!(
                    "payload path must be relative and stay inside payloads/: {:?}",
                    r.rel
                ),
            );
        }
    }
    refs
}

/// Whether `rel` is a non-empty relative path without `..` components.
pub fn is_confined(rel: &str) -> bool {
    !rel.trim().is_empty()
        && !rel.starts_with('\\')
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn scan(
    config: &Map<String, Value>,
    config_path: &str,
    refs: &mut Vec<PayloadRef>,
    errs: &mut Errors,
) {
    for key in STRING_FIELDS {
        let path = join(config_path, key);
        match config.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(rel)) => refs.push(PayloadRef {
                path,
                rel: rel.clone(),
            }),
            Some(other) => errs.push(path, format!("{key} must be a string, got {}", kind(other))),
        }
    }
    let list_path = join(config_path, "upload_paths");
    match config.get("upload_paths") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                // An entry is a source path, or `{"source": ..., "target": ...}`, as the
                // executor's own parser reads it (`executor::uploads`).
                let (path, source) = match item {
                    Value::String(_) => (format!("{list_path}[{i}]"), Some(item)),
                    _ => (format!("{list_path}[{i}].source"), item.get("source")),
                };
                match source {
                    Some(Value::String(rel)) => refs.push(PayloadRef {
                        path,
                        rel: rel.clone(),
                    }),
                    _ => errs.push(
                        path,
                        "every upload_paths entry needs a source string (a path, or {\"source\": path})",
                    ),
                }
            }
        }
        Some(other) => errs.push(
            list_path,
            format!("upload_paths must be a list, got {}", kind(other)),
        ),
    }
}
