//! Artifacts: files one step hands to the next by reference. A message's `artifacts` list
//! carries [`ArtifactRef`]s (name, digest, size), never the bytes; the bytes are a blob in the
//! content-addressed store, fetched by the receiving node before its step runs.
//!
//! References come from outside (a step's structured output, a stored message), so they are
//! parsed here, once, into a checked type: a name is a relative path of plain components (it
//! becomes a file under the receiver's input folder and must never leave it), and a digest is
//! a lower-case sha256 hex string (it becomes a file name in the blob store).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::agents::Emit;

/// Longest artifact name accepted, in bytes (well under `PATH_MAX` once put under a folder).
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest single component of a name (the usual file-name limit).
const MAX_COMPONENT_BYTES: usize = 255;

/// A file published by a step, as messages carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawArtifactRef")]
pub struct ArtifactRef {
    /// Relative path under the publishing step's output folder (`report.csv`, `plots/a.png`).
    pub name: String,
    /// Lower-case hex SHA-256 of the contents: the blob's name.
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// The wire shape before its fields are checked. Unknown fields are dropped, not refused: a
/// history written by a newer version must stay readable, and nothing but these four fields
/// ever travels on (so no one can slip the bytes themselves into a reference).
#[derive(Deserialize)]
struct RawArtifactRef {
    name: String,
    sha256: String,
    size: u64,
    #[serde(default)]
    content_type: Option<String>,
}

impl TryFrom<RawArtifactRef> for ArtifactRef {
    type Error = String;

    fn try_from(raw: RawArtifactRef) -> Result<ArtifactRef, String> {
        check_name(&raw.name)?;
        if !is_sha256(&raw.sha256) {
            return Err(format!(
                "artifact {:?}: sha256 {:?} is not 64 lower-case hex digits",
                raw.name, raw.sha256
            ));
        }
        Ok(ArtifactRef {
            name: raw.name,
            sha256: raw.sha256,
            size: raw.size,
            content_type: raw.content_type.filter(|c| !c.trim().is_empty()),
        })
    }
}

impl ArtifactRef {
    /// Parses one reference from outside input; the error says what is wrong with it.
    pub fn parse(value: &Value) -> Result<ArtifactRef, String> {
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())
    }

    /// Parses a list, naming the failing entry as `at[i]`.
    pub fn parse_list(items: &[Value], at: &str) -> Result<Vec<ArtifactRef>, String> {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| ArtifactRef::parse(v).map_err(|e| format!("{at}[{i}]: {e}")))
            .collect()
    }
}

/// True for a lower-case hex SHA-256 digest.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks that `name` is a relative path of plain components separated by `/`: no leading
/// `/`, no `.` or `..`, no empty component, no backslash or NUL. Only such a name can be
/// joined under a folder without any chance of leaving it.
pub fn check_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("artifact name {name:?} {why}"));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad(&format!("is longer than {MAX_NAME_BYTES} bytes"));
    }
    if name.contains(['\\', '\0']) {
        return bad("holds a backslash or NUL");
    }
    if name.starts_with('/') {
        return bad("is absolute; it must be relative to the artifact folder");
    }
    for part in name.split('/') {
        match part {
            "" => return bad("has an empty path component"),
            "." | ".." => return bad("escapes the artifact folder (`.` or `..` component)"),
            p if p.len() > MAX_COMPONENT_BYTES => {
                return bad(&format!(
                    "has a component longer than {MAX_COMPONENT_BYTES} bytes"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `inherited` with `published` added; a published name replaces an inherited one, so a step
/// that rewrites `report.csv` passes on its own version.
pub fn merge(inherited: &[ArtifactRef], published: &[ArtifactRef]) -> Vec<ArtifactRef> {
    let mut out: Vec<ArtifactRef> = inherited
        .iter()
        .filter(|a| !published.iter().any(|p| p.name == a.name))
        .cloned()
        .collect();
    out.extend(published.iter().cloned());
    out
}

/// Sets the artifacts of a step's emits: each emit carries what it listed itself (else what
/// the step received), plus what the step published. An emit may list only references the
/// step received or published: a step cannot hand on a blob it was never given.
pub fn attach(
    emits: &mut [Emit],
    received: &[ArtifactRef],
    published: &[ArtifactRef],
) -> Result<(), String> {
    let known = |r: &ArtifactRef| {
        received
            .iter()
            .chain(published)
            .any(|k| k.sha256 == r.sha256 && k.size == r.size)
    };
    for (i, emit) in emits.iter_mut().enumerate() {
        if let Some(listed) = &emit.artifacts
            && let Some(r) = listed.iter().find(|r| !known(r))
        {
            return Err(format!(
                "emit_messages[{i}].artifacts names {:?} (sha256 {}), which this step neither \
                 received nor published",
                r.name, r.sha256
            ));
        }
        if emit.artifacts.is_none() && published.is_empty() {
            // Nothing changes: the message inherits the incoming list as before.
            continue;
        }
        let base = emit.artifacts.take().unwrap_or_else(|| received.to_vec());
        emit.artifacts = Some(merge(&base, published));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn r(name: &str, fill: char) -> ArtifactRef {
        ArtifactRef {
            name: name.into(),
            sha256: fill.to_string().repeat(64),
            size: 3,
            content_type: None,
        }
    }

    #[test]
    fn a_reference_parses_once_into_checked_fields() {
        let sha = "a".repeat(64);
        let ok = ArtifactRef::parse(
            &json!({"name": "out/data.bin", "sha256": sha, "size": 300_000,
                                            "content_type": "application/octet-stream"}),
        )
        .unwrap();
        assert_eq!(ok.name, "out/data.bin");
        assert_eq!(ok.size, 300_000);
        assert_eq!(ok.content_type.as_deref(), Some("application/octet-stream"));
        // Round trip: what a message carries parses back to the same reference.
        assert_eq!(
            ArtifactRef::parse(&serde_json::to_value(&ok).unwrap()).unwrap(),
            ok
        );
        for bad in [
            json!({"name": "x", "sha256": "A".repeat(64), "size": 1}),
            json!({"name": "x", "sha256": "abc", "size": 1}),
            json!({"name": "x", "sha256": sha, "size": -1}),
            json!({"name": "x", "sha256": sha}),
            json!({"name": "../x", "sha256": sha, "size": 1}),
            json!("x"),
        ] {
            assert!(ArtifactRef::parse(&bad).is_err(), "{bad}");
        }
        // Extra fields are dropped, never carried on.
        let extra =
            ArtifactRef::parse(&json!({"name": "x", "sha256": sha, "size": 1, "bytes": "AAAA"}))
                .unwrap();
        assert_eq!(
            serde_json::to_value(&extra).unwrap(),
            json!({"name": "x", "sha256": sha, "size": 1})
        );
        let err = ArtifactRef::parse_list(
            &[json!({"name": "/etc/passwd", "sha256": sha, "size": 1})],
            "a",
        )
        .unwrap_err();
        assert!(
            err.starts_with("a[0]: ") && err.contains("/etc/passwd"),
            "{err}"
        );
    }

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        for ok in ["a", "a.txt", "dir/b.csv", "..a", "a..", ".hidden"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(256);
        for bad in [
            "",
            "/abs",
            "../up",
            "a/../../b",
            "a/./b",
            ".",
            "a//b",
            "a/",
            "a\\b",
            "a\0b",
            &long,
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(err.contains("artifact name"), "{bad}: {err}");
        }
    }

    #[test]
    fn published_files_replace_inherited_ones_by_name() {
        let merged = merge(&[r("a", '1'), r("b", '2')], &[r("b", '3'), r("c", '4')]);
        let names: Vec<(&str, char)> = merged
            .iter()
            .map(|a| (a.name.as_str(), a.sha256.chars().next().unwrap_or(' ')))
            .collect();
        assert_eq!(names, [("a", '1'), ("b", '3'), ("c", '4')]);
    }

    #[test]
    fn emits_carry_what_the_step_received_and_published_and_nothing_foreign() {
        let mut emits = vec![
            Emit::routed("t", json!(null)),
            Emit::routed("u", json!(null)),
        ];
        emits[1].artifacts = Some(vec![]);
        attach(&mut emits, &[r("in", '1')], &[r("out", '2')]).unwrap();
        assert_eq!(emits[0].artifacts, Some(vec![r("in", '1'), r("out", '2')]));
        assert_eq!(emits[1].artifacts, Some(vec![r("out", '2')]));
        // Nothing published and nothing listed: the emit inherits (stays `None`).
        let mut plain = vec![Emit::routed("t", json!(null))];
        attach(&mut plain, &[r("in", '1')], &[]).unwrap();
        assert_eq!(plain[0].artifacts, None);
        let mut forged = vec![Emit::routed("t", json!(null))];
        forged[0].artifacts = Some(vec![r("secret", '9')]);
        let err = attach(&mut forged, &[r("in", '1')], &[]).unwrap_err();
        assert!(
            err.contains("\"secret\"") && err.contains(&"9".repeat(64)),
            "{err}"
        );
    }
}
