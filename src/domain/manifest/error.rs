//! Validation errors: every problem in a manifest is reported at once, each with the JSON path
//! of the offending field, so an author can fix a bundle in one round trip.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem found in a manifest.
///
/// `path` points into the manifest as written (`agents.nodes[3].config.command`), not into the
/// normalised form, so the author can find the field in their own file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Accumulates errors while the parsers keep going past the first one.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<ValidationError>);

impl Errors {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError::new(path, message));
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the errors of a second check, except on fields already reported: two checks of
    /// the same field (the generic `command` shape and the executor's parse) name it once.
    pub(crate) fn merge_new(&mut self, other: Errors) {
        for e in other.0 {
            if !self.0.iter().any(|seen| seen.path == e.path) {
                self.0.push(e);
            }
        }
    }

    pub(crate) fn into_vec(self) -> Vec<ValidationError> {
        self.0
    }
}

/// Joins a parent path and a key: `join("policies", "restart")` is `policies.restart`.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A JSON type name for messages (`got a number`).
pub(crate) fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}
