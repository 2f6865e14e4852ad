//! The payload keys of an upload, checked in memory before anything touches the disk: every
//! key must name a file that can be written under `payloads/` on any Linux filesystem, and no
//! key may be a file where another key needs a folder (`a` and `a/b`).

use std::collections::{BTreeMap, HashSet};

use super::problem::{KeyProblem, Problem};

/// Longest path segment a Linux filesystem accepts (`NAME_MAX`).
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Longest key accepted. The key is joined under `$MN_HOME/bundles/<digest>/payloads/`, and the
/// whole path must stay well inside `PATH_MAX` (4096) wherever `MN_HOME` is.
pub const MAX_KEY_BYTES: usize = 1024;

/// Why one key cannot name a file inside `payloads/`, or `None` when it can.
pub fn key_problem(key: &str) -> Option<KeyProblem> {
    if key.is_empty() {
        return Some(KeyProblem::Empty);
    }
    if key.contains('\0') {
        return Some(KeyProblem::Nul);
    }
    if key.len() > MAX_KEY_BYTES {
        return Some(KeyProblem::TooLong { bytes: key.len() });
    }
    if key.starts_with('/') {
        return Some(KeyProblem::Absolute);
    }
    // A backslash is a separator on Windows clients: refusing it keeps one meaning per key.
    if key.contains('\\') {
        return Some(KeyProblem::Backslash);
    }
    for segment in key.split('/') {
        match segment {
            "" | "." => return Some(KeyProblem::EmptySegment),
            ".." => return Some(KeyProblem::ParentSegment),
            s if s.len() > MAX_SEGMENT_BYTES => {
                return Some(KeyProblem::SegmentTooLong { bytes: s.len() });
            }
            _ => {}
        }
    }
    None
}

/// Every problem of the key set, in key order: bad keys first, then keys that are a file
/// where another key needs a folder. Each key maps to exactly one path once it passes
/// [`key_problem`] (no `.`, empty or `..` segments), so distinct map keys never collide on
/// disk and there is nothing else to deduplicate.
pub fn key_set_problems<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<Problem> {
    let mut sorted: Vec<&str> = keys.into_iter().collect();
    sorted.sort_unstable();
    let mut problems: Vec<Problem> = vec![];
    let mut good: Vec<&str> = vec![];
    for key in sorted {
        match key_problem(key) {
            Some(why) => problems.push(Problem::Key {
                key: key.to_string(),
                why,
            }),
            None => good.push(key),
        }
    }
    let folders = folders_of(&good);
    for key in good {
        if let Some(inner) = folders.get(key) {
            problems.push(Problem::FileAndFolder {
                file: key.to_string(),
                inner: (*inner).to_string(),
            });
        }
    }
    problems
}

/// Every folder the keys need, each with one key that needs it (for the error message).
pub fn folders_of<'a>(keys: &[&'a str]) -> BTreeMap<&'a str, &'a str> {
    let mut folders = BTreeMap::new();
    for key in keys {
        for (i, _) in key.match_indices('/') {
            folders.entry(&key[..i]).or_insert(*key);
        }
    }
    folders
}

/// Whether `rel` (a payload path from the manifest, already confined to `payloads/`) names a
/// file or a folder of the upload. `.` and empty segments are dropped the way the filesystem
/// would; nothing at all names `payloads/` itself, which always exists.
pub fn names_upload(rel: &str, files: &HashSet<&str>, folders: &BTreeMap<&str, &str>) -> bool {
    let wanted: Vec<&str> = rel
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if wanted.is_empty() {
        return true;
    }
    let wanted = wanted.join("/");
    files.contains(wanted.as_str()) || folders.contains_key(wanted.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_cannot_name_a_file_are_refused() {
        let long = "x".repeat(5000);
        let long_segment = format!("d/{}", "y".repeat(256));
        let cases = [
            ("", KeyProblem::Empty),
            ("a\0b", KeyProblem::Nul),
            (long.as_str(), KeyProblem::TooLong { bytes: 5000 }),
            ("/etc/passwd", KeyProblem::Absolute),
            ("a\\b", KeyProblem::Backslash),
            ("a//b", KeyProblem::EmptySegment),
            ("a/./b", KeyProblem::EmptySegment),
            ("a/", KeyProblem::EmptySegment),
            ("./a", KeyProblem::EmptySegment),
            ("../x", KeyProblem::ParentSegment),
            ("a/../../x", KeyProblem::ParentSegment),
            (
                long_segment.as_str(),
                KeyProblem::SegmentTooLong { bytes: 256 },
            ),
        ];
        for (key, want) in cases {
            assert_eq!(key_problem(key), Some(want), "{key:?}");
        }
        for ok in ["run.py", "scripts/run.py", "a..b/c", ".hidden", "ü/ß"] {
            assert_eq!(key_problem(ok), None, "{ok:?}");
        }
        assert_eq!(key_problem(&"z".repeat(MAX_SEGMENT_BYTES)), None);
    }

    #[test]
    fn a_file_where_another_key_needs_a_folder_is_refused() {
        let problems = key_set_problems(["a", "a/b", "c/d", "c/d/e/f", "g/h"]);
        assert_eq!(
            problems,
            vec![
                Problem::FileAndFolder {
                    file: "a".into(),
                    inner: "a/b".into()
                },
                Problem::FileAndFolder {
                    file: "c/d".into(),
                    inner: "c/d/e/f".into()
                },
            ]
        );
        assert!(key_set_problems(["a/b", "a/c", "ab"]).is_empty());
    }

    #[test]
    fn manifest_paths_name_files_or_folders_of_the_upload() {
        let keys = ["scripts/run.py", "data.csv"];
        let files: HashSet<&str> = keys.into_iter().collect();
        let folders = folders_of(&keys);
        for rel in [
            "scripts/run.py",
            "./scripts/run.py",
            "scripts",
            "scripts/",
            "data.csv",
            ".",
        ] {
            assert!(names_upload(rel, &files, &folders), "{rel:?}");
        }
        for rel in ["script", "scripts/other.py", "data.csv/x", "run.py"] {
            assert!(!names_upload(rel, &files, &folders), "{rel:?}");
        }
    }
}
