//! The whole upload checked in memory: the payload keys, the manifest, every payload the
//! manifest names against the keys, and the runner's check of each executor's settings
//! (what `runtime::bundle` checks on disk, minus the disk). Only an upload that passes is ever written to disk, so a
//! refused one leaves nothing behind.

use std::collections::HashSet;

use serde_json::Value;

use super::keys::{folders_of, key_set_problems, names_upload};
use super::problem::Problem;
use crate::domain::manifest::{Manifest, ValidationError, parse_manifest, payload_refs};
use crate::runtime::bundle::{MAX_MANIFEST_BYTES, check_executors};

/// Every problem of the upload; empty when it can be stored and will load.
pub fn problems<'a>(manifest_json: &str, keys: impl IntoIterator<Item = &'a str>) -> Vec<Problem> {
    let keys: Vec<&str> = keys.into_iter().collect();
    let mut problems = key_set_problems(keys.iter().copied());
    match parse(manifest_json) {
        Err(mut found) => problems.append(&mut found),
        Ok(manifest) => {
            // Whether a payload is in the upload means something only for a sound key set.
            if problems.is_empty() {
                problems.extend(missing_payloads(&manifest, &keys));
            }
            problems.extend(
                check_executors(&manifest)
                    .into_iter()
                    .map(Problem::Manifest),
            );
        }
    }
    problems
}

/// The manifest, parsed and validated by the domain rules.
fn parse(manifest_json: &str) -> Result<Manifest, Vec<Problem>> {
    if manifest_json.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(vec![Problem::ManifestTooLarge {
            bytes: manifest_json.len(),
            limit: MAX_MANIFEST_BYTES,
        }]);
    }
    let raw: Value = serde_json::from_str(manifest_json).map_err(|e| {
        vec![Problem::ManifestNotJson {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }]
    })?;
    parse_manifest(&raw).map_err(|errors| errors.into_iter().map(Problem::Manifest).collect())
}

/// Payload paths of the manifest that name neither a key nor a folder of keys.
fn missing_payloads(manifest: &Manifest, keys: &[&str]) -> Vec<Problem> {
    let files: HashSet<&str> = keys.iter().copied().collect();
    let folders = folders_of(keys);
    payload_refs(manifest)
        .into_iter()
        .filter(|r| !names_upload(&r.rel, &files, &folders))
        .map(|r| {
            Problem::Manifest(ValidationError::new(
                r.path,
                format!(
                    "payload {:?} is not in the upload (no payload key names it or a folder of it)",
                    r.rel
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest(command: &[&str], upload: Option<&str>) -> String {
        let mut config = json!({"command": command, "output_message_type": "done"});
        if let Some(u) = upload {
            config["upload_path"] = json!(u);
        }
        json!({
            "manifest_version": "1.0", "graph_id": "g", "entrypoints": ["run"],
            "nodes": [
                {"node_id": "run", "agent_type": "executor", "config": config},
                {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
            ],
            "edges": [{"from_node": "run", "to_node": "sink", "message_type": "done"}]
        })
        .to_string()
    }

    #[test]
    fn a_sound_upload_has_no_problems() {
        let m = manifest(&["python3", "run.py"], Some("scripts"));
        assert_eq!(problems(&m, ["scripts/run.py"]), vec![]);
    }

    #[test]
    fn a_payload_the_manifest_names_must_be_uploaded() {
        let m = manifest(&["true"], Some("scripts/run.py"));
        let found = problems(&m, ["other.py"]);
        assert_eq!(found.len(), 1, "{found:?}");
        let text = found[0].to_string();
        assert!(text.contains("nodes[0].config.upload_path"), "{text}");
        assert!(text.contains("scripts/run.py"), "{text}");
    }

    #[test]
    fn the_runners_executor_check_runs_before_anything_is_written() {
        let m = manifest(&["true"], None).replace(
            "\"output_message_type\":\"done\"",
            "\"output_message_type\":\"done\",\"pool\":\"nope\"",
        );
        assert!(m.contains("nope"), "{m}");
        let found = problems(&m, []);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].to_string().contains("nodes[0].config.pool"),
            "{found:?}"
        );
    }

    #[test]
    fn key_and_manifest_problems_are_reported_together() {
        let found = problems("{not json", ["../x"]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].to_string().contains("\"../x\""));
        assert!(matches!(found[1], Problem::ManifestNotJson { line: 1, .. }));
        // With a bad key set, missing payloads are not reported on top.
        let m = manifest(&["true"], Some("scripts/run.py"));
        assert_eq!(problems(&m, ["/abs"]).len(), 1);
    }
}
