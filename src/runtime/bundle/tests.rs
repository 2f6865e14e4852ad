use std::path::Path;

use serde_json::{Value, json};

use super::{BundleError, MAX_MANIFEST_BYTES, check_bundle, load_bundle, resolve_payload_path};

/// A one-executor manifest; `config` gets a command unless it names one.
fn manifest(mut config: Value) -> Value {
    if let Some(c) = config.as_object_mut() {
        c.entry("command")
            .or_insert_with(|| json!("python3 worker/run.py"));
    }
    json!({
        "manifest_version": "1.0", "graph_id": "g", "entrypoints": ["w"],
        "nodes": [{"node_id": "w", "agent_type": "executor", "config": config}]
    })
}

/// A bundle folder with `payloads/worker/run.py` and the given manifest.
fn bundle(doc: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("payloads/worker")).expect("payloads");
    std::fs::write(dir.path().join("payloads/worker/run.py"), "print('hi')").expect("script");
    std::fs::write(dir.path().join("manifest.json"), doc.to_string()).expect("manifest");
    dir
}

fn invalid(result: Result<super::Bundle, BundleError>) -> Vec<String> {
    match result {
        Err(BundleError::Invalid(errs)) => errs.iter().map(ToString::to_string).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn loads_a_valid_bundle_with_canonical_paths() {
    let dir = bundle(&manifest(
        json!({"upload_path": "worker", "upload_paths": [{"source": "worker/run.py"}]}),
    ));
    let b = load_bundle(dir.path()).expect("valid bundle");
    let root = dir.path().canonicalize().expect("canonical");
    assert_eq!(b.root, root);
    assert_eq!(b.payloads, root.join("payloads"));
    assert_eq!(b.manifest.graph_id, "g");
    assert_eq!(b.raw["graph_id"], json!("g"));
}

#[test]
fn folder_shape_errors_name_the_path() {
    let missing = Path::new("/definitely/not/here");
    assert_eq!(
        load_bundle(missing).unwrap_err().to_string(),
        "job folder does not exist: /definitely/not/here"
    );

    let dir = bundle(&manifest(json!({})));
    let file = dir.path().join("manifest.json");
    assert_eq!(
        load_bundle(&file).unwrap_err().to_string(),
        format!("expected a job folder, got file {}", file.display())
    );

    std::fs::remove_dir_all(dir.path().join("payloads")).expect("rm payloads");
    let err = load_bundle(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("job folder is missing payloads/: "),
        "{err}"
    );

    std::fs::remove_file(&file).expect("rm manifest");
    let err = load_bundle(dir.path()).unwrap_err();
    assert!(
        matches!(&err, BundleError::MissingManifest { path } if path.ends_with("manifest.json")),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("job folder is missing manifest.json: "),
        "{err}"
    );
}

#[test]
fn oversized_manifest_is_refused_before_reading() {
    let dir = bundle(&manifest(json!({})));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("manifest.json"))
        .expect("open");
    file.set_len(MAX_MANIFEST_BYTES + 1).expect("sparse grow");
    match load_bundle(dir.path()) {
        Err(BundleError::TooLarge { size, limit, .. }) => {
            assert_eq!((size, limit), (MAX_MANIFEST_BYTES + 1, MAX_MANIFEST_BYTES))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn malformed_json_reports_line_and_column() {
    let dir = bundle(&json!({}));
    std::fs::write(
        dir.path().join("manifest.json"),
        "{\n  \"graph_id\": \"g\",\n  oops\n}",
    )
    .expect("write");
    match load_bundle(dir.path()) {
        Err(
            e @ BundleError::Malformed {
                line: 3, column: 3, ..
            },
        ) => {
            assert!(
                e.to_string()
                    .contains("is not valid JSON (line 3, column 3)"),
                "{e}"
            )
        }
        other => panic!("expected Malformed at 3:3, got {other:?}"),
    }
    std::fs::write(dir.path().join("manifest.json"), [0xff, 0xfe, 0x00]).expect("write");
    assert!(matches!(
        load_bundle(dir.path()),
        Err(BundleError::Malformed { .. })
    ));
}

#[test]
fn schema_errors_are_returned_together() {
    let dir = bundle(
        &json!({"graph_id": "g", "nodes": [{"node_id": "w", "agent_type": "nope", "role": "root"}]}),
    );
    assert_eq!(
        invalid(load_bundle(dir.path())),
        vec![
            "manifest_version: manifest_version is required",
            "nodes[0].agent_type: unsupported agent_type \"nope\" for node w",
        ]
    );
}

#[test]
fn missing_payloads_are_reported_per_field() {
    let dir = bundle(&manifest(
        json!({"upload_path": "nope", "upload_paths": [{"source": "worker"}, {"source": "gone/x"}]}),
    ));
    let payloads = dir
        .path()
        .canonicalize()
        .expect("canonical")
        .join("payloads");
    assert_eq!(
        invalid(load_bundle(dir.path())),
        vec![
            format!(
                "nodes[0].config.upload_path: upload source does not exist: {}",
                payloads.join("nope").display()
            ),
            format!(
                "nodes[0].config.upload_paths[1].source: upload source does not exist: {}",
                payloads.join("gone/x").display()
            ),
        ]
    );
}

#[cfg(unix)]
#[test]
fn symlinks_may_not_leave_payloads() {
    let outside = tempfile::tempdir().expect("outside dir");
    std::fs::write(outside.path().join("secret"), "x").expect("secret");
    let dir = bundle(&manifest(
        json!({"upload_path": "link/secret", "policy": "inner"}),
    ));
    std::os::unix::fs::symlink(outside.path(), dir.path().join("payloads/link"))
        .expect("symlink out");
    std::os::unix::fs::symlink("worker/run.py", dir.path().join("payloads/inner"))
        .expect("symlink in");
    let errs = invalid(load_bundle(dir.path()));
    assert_eq!(errs.len(), 1, "{errs:?}");
    let resolved = outside
        .path()
        .canonicalize()
        .expect("canonical")
        .join("secret");
    assert_eq!(
        errs[0],
        format!(
            "nodes[0].config.upload_path: payload path \"link/secret\" resolves to {}, outside payloads/ (through a symlink)",
            resolved.display()
        )
    );
}

#[test]
fn resolve_payload_path_confines_and_resolves() {
    let dir = bundle(&manifest(json!({})));
    let payloads = dir.path().join("payloads");
    let ok = resolve_payload_path(&payloads, "worker/./run.py").expect("exists");
    assert_eq!(
        ok,
        payloads
            .canonicalize()
            .expect("canonical")
            .join("worker/run.py")
    );
    for rel in ["../manifest.json", "/etc/passwd", "", "worker/../../x"] {
        let err = resolve_payload_path(&payloads, rel).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("payload path must be relative and stay inside payloads/: {rel:?}")
        );
    }
    assert!(matches!(
        resolve_payload_path(&payloads, "worker/missing.py"),
        Err(BundleError::PayloadMissing { .. })
    ));
}

/// What a step would refuse is refused at load: here, slots this host's pools cannot give
/// (the default pool has 4 slots unless `MN_EXECUTOR_MAX_CONCURRENCY` says otherwise).
#[test]
fn executors_must_fit_this_hosts_pools() {
    if std::env::var_os("MN_EXECUTOR_MAX_CONCURRENCY").is_some()
        || std::env::var_os("MN_EXECUTOR_POOL_CAPACITIES").is_some()
    {
        return; // the expectations below are for the default pools
    }
    let dir = bundle(&manifest(json!({"pool_slots": 5})));
    let errs = invalid(load_bundle(dir.path()));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "nodes[0].config.pool_slots: requested 5 executor slots but pool capacity is 4"
        ),
        "{errs:?}"
    );
    let dir = bundle(&manifest(json!({"pool": "gpu"})));
    let errs = invalid(load_bundle(dir.path()));
    assert!(
        errs[0].starts_with("nodes[0].config.pool: unknown executor pool \"gpu\""),
        "{errs:?}"
    );
    let dir = bundle(&manifest(json!({"pool_slots": 4})));
    assert!(load_bundle(dir.path()).is_ok());
}

#[test]
fn warnings_come_with_valid_and_invalid_bundles() {
    let dir = bundle(&manifest(json!({"output_mesage_type": "x"})));
    let checked = check_bundle(dir.path());
    assert!(checked.bundle.is_ok());
    assert_eq!(
        checked.warnings,
        [
            "nodes[0].config.output_mesage_type: unknown key \"output_mesage_type\"; did you mean \"output_message_type\"?"
        ]
    );
    let mut doc = manifest(json!({"comand": "x"}));
    doc["nodes"][0]["config"]
        .as_object_mut()
        .expect("config")
        .remove("command");
    let dir = bundle(&doc);
    let checked = check_bundle(dir.path());
    assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
    let errs = invalid(checked.bundle);
    assert!(
        errs[0].starts_with("nodes[0].config.command: executor requires config.command"),
        "{errs:?}"
    );
}
