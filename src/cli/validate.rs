//! `mirror-neuron validate <bundle> [--json]`: checks a job bundle without submitting it.
//! Exit 0 when valid, 2 when invalid (every problem listed), 1 when the check itself failed.

use std::path::PathBuf;

use serde::Serialize;

use crate::domain::manifest::ValidationError;
use crate::runtime::bundle::{BundleError, check_bundle};

/// Exit code for an invalid bundle, distinct from 1 (the command itself failed).
pub const EXIT_INVALID: i32 = 2;

/// The `--json` document.
#[derive(Debug, Serialize, PartialEq)]
struct Report {
    valid: bool,
    errors: Vec<ValidationError>,
    /// Things that run but not as written: a key the runtime does not read (often a typo of
    /// one it does), a `max_output_bytes` above this machine's `MN_MAX_ARTIFACT_BYTES`
    /// ceiling (clamped to it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// Loads and validates the bundle, prints the outcome on stdout (warnings on stderr, or in
/// the `--json` document), and returns the exit code.
pub async fn run(bundle: PathBuf, json: bool) -> anyhow::Result<i32> {
    let checked = tokio::task::spawn_blocking(move || check_bundle(&bundle)).await?;
    let mut report = report(checked.bundle.map(|_| ()))?;
    report.warnings = checked.warnings;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        print!("{}", render_text(&report));
    }
    Ok(if report.valid { 0 } else { EXIT_INVALID })
}

/// Turns a load outcome into a report. I/O failures are not verdicts on the bundle, so they
/// stay errors of the command.
fn report(outcome: Result<(), BundleError>) -> anyhow::Result<Report> {
    let errors = match outcome {
        Ok(()) => Vec::new(),
        Err(BundleError::Invalid(errors)) => errors,
        Err(e @ BundleError::Io { .. }) => return Err(e.into()),
        Err(e) => vec![ValidationError::new("bundle", e.to_string())],
    };
    Ok(Report {
        valid: errors.is_empty(),
        errors,
        warnings: vec![],
    })
}

fn render_text(report: &Report) -> String {
    if report.valid {
        return "valid\n".to_string();
    }
    report.errors.iter().map(|e| format!("{e}\n")).collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    #[test]
    fn valid_bundle_prints_valid() {
        let r = report(Ok(())).expect("report");
        assert_eq!(render_text(&r), "valid\n");
        assert_eq!(
            serde_json::to_value(&r).expect("json"),
            json!({"valid": true, "errors": []})
        );
    }

    #[test]
    fn invalid_manifest_lists_every_error() {
        let errors = vec![
            ValidationError::new("manifest_version", "manifest_version is required"),
            ValidationError::new(
                "nodes[0].agent_type",
                "unsupported agent_type \"x\" for node a",
            ),
        ];
        let r = report(Err(BundleError::Invalid(errors))).expect("report");
        assert_eq!(
            render_text(&r),
            "manifest_version: manifest_version is required\nnodes[0].agent_type: unsupported agent_type \"x\" for node a\n"
        );
        assert_eq!(
            serde_json::to_value(&r).expect("json"),
            json!({"valid": false, "errors": [
                {"path": "manifest_version", "message": "manifest_version is required"},
                {"path": "nodes[0].agent_type", "message": "unsupported agent_type \"x\" for node a"}
            ]})
        );
    }

    #[test]
    fn bundle_shape_errors_are_verdicts_and_io_errors_are_failures() {
        let r = report(Err(BundleError::MissingPayloads {
            path: PathBuf::from("/b/payloads"),
        }))
        .expect("report");
        assert_eq!(
            render_text(&r),
            "bundle: job folder is missing payloads/: /b/payloads\n"
        );
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        assert!(
            report(Err(BundleError::Io {
                path: PathBuf::from("/b"),
                source: io
            }))
            .is_err()
        );
    }

    #[tokio::test]
    async fn run_returns_the_exit_code() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            run(dir.path().to_path_buf(), false).await.expect("runs"),
            EXIT_INVALID
        );
        std::fs::create_dir(dir.path().join("payloads")).expect("payloads");
        let manifest = json!({"manifest_version": "1", "graph_id": "g", "nodes": [{"node_id": "a", "agent_type": "router", "role": "root"}]});
        std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).expect("manifest");
        assert_eq!(run(dir.path().to_path_buf(), true).await.expect("runs"), 0);
    }
}
