//! `mirror-neuron validate <bundle> [--json]`: checks a job bundle without submitting it.
//! Exit 0 when valid, 2 when invalid (every problem listed), 1 when the check itself failed.

use std::path::PathBuf;

use serde::Serialize;

use crate::domain::manifest::ValidationError;
use crate::runtime::bundle::{BundleError, load_bundle};

/// Exit code for an invalid bundle, distinct from 1 (the command itself failed).
pub const EXIT_INVALID: i32 = 2;

/// The `--json` document.
#[derive(Debug, Serialize, PartialEq)]
struct Report {
    valid: bool,
    errors: Vec<ValidationError>,
    /// Things that run but not as written (a `max_output_bytes` above this machine's
    /// `MN_MAX_ARTIFACT_BYTES` ceiling is clamped to it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// Loads and validates the bundle, prints the outcome on stdout, and returns the exit code.
pub async fn run(bundle: PathBuf, json: bool) -> anyhow::Result<i32> {
    let (mut report, warnings) = tokio::task::spawn_blocking(move || {
        let loaded = load_bundle(&bundle);
        let warnings = loaded
            .as_ref()
            .map(|b| crate::runtime::executor::config::output_cap_warnings(&b.manifest))
            .unwrap_or_default();
        report(loaded.map(|_| ())).map(|r| (r, warnings))
    })
    .await??;
    report.warnings = warnings;
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
