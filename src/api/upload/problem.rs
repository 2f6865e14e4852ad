//! Why an upload was refused, in the uploader's own terms: the payload key or the manifest
//! field at fault, never a path on the server (the caller cannot see, and must not learn, the
//! server's filesystem).

use std::fmt;

use crate::domain::manifest::ValidationError;

/// Longest part of a key quoted in a message: a 5,000-character key is named by its start
/// and its length, so the answer stays readable and fits a gRPC status header.
const QUOTED_KEY_CHARS: usize = 80;
/// Most problems listed in one answer; the rest are counted.
const LISTED_PROBLEMS: usize = 20;

/// What is wrong with one payload key by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Empty,
    Nul,
    Absolute,
    Backslash,
    /// An empty or `.` segment (`a//b`, `a/./b`, `a/`): two spellings of one file.
    EmptySegment,
    /// A `..` segment: the key would leave `payloads/`.
    ParentSegment,
    SegmentTooLong {
        bytes: usize,
    },
    TooLong {
        bytes: usize,
    },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::keys::{MAX_KEY_BYTES, MAX_SEGMENT_BYTES};
        match self {
            KeyProblem::Empty => write!(f, "is empty"),
            KeyProblem::Nul => write!(f, "contains a NUL byte"),
            KeyProblem::Absolute => write!(f, "is absolute; keys are relative to payloads/"),
            KeyProblem::Backslash => write!(f, "contains a backslash; separate folders with /"),
            KeyProblem::EmptySegment => write!(f, "has an empty or `.` path segment"),
            KeyProblem::ParentSegment => {
                write!(f, "has a `..` segment; keys must stay inside payloads/")
            }
            KeyProblem::SegmentTooLong { bytes } => write!(
                f,
                "has a path segment of {bytes} bytes; the limit is {MAX_SEGMENT_BYTES}"
            ),
            KeyProblem::TooLong { bytes } => {
                write!(f, "is {bytes} bytes long; the limit is {MAX_KEY_BYTES}")
            }
        }
    }
}

/// One reason an upload cannot be stored or run.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A payload key that cannot name a file inside `payloads/`.
    Key { key: String, why: KeyProblem },
    /// Key `file` is a file, but key `inner` needs a folder of that name.
    FileAndFolder { file: String, inner: String },
    /// `manifest_json` is over the size the job's first event can carry.
    ManifestTooLarge { bytes: usize, limit: u64 },
    /// `manifest_json` is not JSON.
    ManifestNotJson {
        line: usize,
        column: usize,
        message: String,
    },
    /// A manifest field is invalid, or names a payload the upload does not contain.
    Manifest(ValidationError),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Key { key, why } => write!(f, "payload key {} {why}", Quoted(key)),
            Problem::FileAndFolder { file, inner } => write!(
                f,
                "payload key {} is a file, but payload key {} needs a folder of that name",
                Quoted(file),
                Quoted(inner)
            ),
            Problem::ManifestTooLarge { bytes, limit } => write!(
                f,
                "manifest_json is {bytes} bytes; the limit is {limit} bytes"
            ),
            Problem::ManifestNotJson {
                line,
                column,
                message,
            } => write!(
                f,
                "manifest_json is not valid JSON (line {line}, column {column}): {message}"
            ),
            Problem::Manifest(e) => write!(f, "{e}"),
        }
    }
}

/// A key as `"..."`, shortened past [`QUOTED_KEY_CHARS`] with its length in bytes.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.0;
        if key.chars().count() <= QUOTED_KEY_CHARS {
            return write!(f, "{key:?}");
        }
        let start: String = key.chars().take(QUOTED_KEY_CHARS).collect();
        write!(f, "{start:?}... ({} bytes)", key.len())
    }
}

/// The answer to a refused upload: one problem per line, at most [`LISTED_PROBLEMS`].
pub fn describe(problems: &[Problem]) -> String {
    let mut lines: Vec<String> = problems
        .iter()
        .take(LISTED_PROBLEMS)
        .map(ToString::to_string)
        .collect();
    if problems.len() > LISTED_PROBLEMS {
        lines.push(format!(
            "... and {} more problems",
            problems.len() - LISTED_PROBLEMS
        ));
    }
    format!("invalid bundle:\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_named_by_their_start_and_length() {
        let p = Problem::Key {
            key: "k".repeat(5000),
            why: KeyProblem::TooLong { bytes: 5000 },
        };
        let text = p.to_string();
        assert!(text.starts_with(&format!("payload key \"{}\"...", "k".repeat(80))));
        assert!(text.contains("(5000 bytes)"), "{text}");
        assert!(text.len() < 250, "{text}");
    }

    #[test]
    fn many_problems_are_counted_past_the_listed_ones() {
        let problems: Vec<Problem> = (0..25)
            .map(|i| Problem::Key {
                key: format!("/k{i}"),
                why: KeyProblem::Absolute,
            })
            .collect();
        let text = describe(&problems);
        assert_eq!(text.lines().count(), 1 + LISTED_PROBLEMS + 1);
        assert!(text.ends_with("... and 5 more problems"), "{text}");
    }
}
