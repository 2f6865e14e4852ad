//! Compatibility corpus: every manifest in `shared/compat/manifests` (real bundles from the
//! original project's repositories) must parse to the outcome recorded in
//! `tests/compat/expectations.tsv`. The corpus folder is `$MN_COMPAT_MANIFESTS`, else
//! `$CARGO_MANIFEST_DIR/../shared/compat/manifests`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mirror_neuron::domain::manifest::{Manifest, manifest_warnings, parse_manifest};
use mirror_neuron::domain::routing::{route, route_context};
use serde_json::{Value, json};

#[derive(Debug)]
enum Expected {
    Valid,
    /// A substring one of the errors must contain.
    Invalid(String),
}

/// The corpus folder. A bare clone of the project has no `../shared` beside it: there the
/// corpus checks say so and pass, while CI (which has the corpus, and sets `CI`) and anyone
/// who names the folder with `MN_COMPAT_MANIFESTS` get the real check.
fn corpus_dir() -> Option<PathBuf> {
    let named = std::env::var_os("MN_COMPAT_MANIFESTS").map(PathBuf::from);
    let required = named.is_some() || std::env::var_os("CI").is_some();
    let dir = named.unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/compat/manifests")
    });
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !required,
        "compatibility corpus not found at {}: set MN_COMPAT_MANIFESTS to the folder holding the corpus manifests",
        dir.display()
    );
    eprintln!(
        "compatibility corpus not found at {}: corpus checks skipped (set MN_COMPAT_MANIFESTS to run them)",
        dir.display()
    );
    None
}

fn expectations() -> BTreeMap<String, Expected> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/expectations.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut table = BTreeMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let expected = match (cols.get(1).copied(), cols.get(2).map(|s| s.trim())) {
            (Some("expected"), _) => continue, // header
            (Some("valid"), _) => Expected::Valid,
            (Some("invalid"), Some(reason)) if !reason.is_empty() => {
                Expected::Invalid(reason.to_string())
            }
            _ => panic!(
                "expectations.tsv line {}: want file<TAB>valid|invalid<TAB>reason, got {line:?}",
                n + 1
            ),
        };
        assert!(
            table.insert(cols[0].to_string(), expected).is_none(),
            "expectations.tsv names {} twice",
            cols[0]
        );
    }
    table
}

fn corpus_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_string(), p)))
        .collect()
}

fn read_json(path: &Path) -> Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn corpus_matches_expectations() {
    let Some(dir) = corpus_dir() else { return };
    let files = corpus_files(&dir);
    let table = expectations();
    let mut problems = Vec::new();
    for name in files.keys().filter(|f| !table.contains_key(*f)) {
        problems.push(format!(
            "{name}: in the corpus but not in tests/compat/expectations.tsv"
        ));
    }
    for name in table.keys().filter(|f| !files.contains_key(*f)) {
        problems.push(format!(
            "{name}: in tests/compat/expectations.tsv but not in {}",
            dir.display()
        ));
    }
    for (name, path) in &files {
        let Some(expected) = table.get(name) else {
            continue;
        };
        match (expected, parse_manifest(&read_json(path))) {
            (Expected::Valid, Ok(m)) => {
                let back = Manifest::from_normalised(&m.to_value());
                if back.as_ref().ok() != Some(&m) {
                    problems.push(format!(
                        "{name}: normalised form does not round-trip: {back:?}"
                    ));
                }
            }
            (Expected::Valid, Err(errs)) => {
                problems.push(format!("{name}: expected valid, got {errs:#?}"))
            }
            (Expected::Invalid(reason), Ok(_)) => {
                problems.push(format!("{name}: expected invalid ({reason}), got valid"))
            }
            (Expected::Invalid(reason), Err(errs)) => {
                if !errs.iter().any(|e| e.to_string().contains(reason.as_str())) {
                    problems.push(format!(
                        "{name}: no error mentions {reason:?}; got {errs:#?}"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} corpus mismatch(es):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The corpus's conditional-branch demo routes `route_done` down exactly one branch.
#[test]
fn conditional_branch_demo_routes_one_way() {
    let Some(dir) = corpus_dir() else { return };
    let path = dir.join("mn-blueprints__demo_dag_conditional_branch.json");
    let manifest =
        parse_manifest(&read_json(&path)).unwrap_or_else(|e| panic!("valid manifest: {e:?}"));
    for (branch, expected) in [("high_risk", "high_risk"), ("low_risk", "low_risk")] {
        let payload = json!({"outputs": {"selected_branch": branch}});
        let ctx = route_context(&json!({"type": "init"}), &payload, &json!({}));
        let decision = route(&manifest, "route", "route_done", &ctx);
        let to: Vec<&str> = decision
            .targets
            .iter()
            .map(|t| t.to_node.as_str())
            .collect();
        assert_eq!(to, vec![expected]);
    }
    let ctx = route_context(
        &json!({}),
        &json!({"outputs": {"selected_branch": "none"}}),
        &json!({}),
    );
    let decision = route(&manifest, "route", "route_done", &ctx);
    assert!(decision.targets.is_empty());
    assert!(
        decision
            .no_match_reason()
            .is_some_and(|r| r.contains("no condition matched"))
    );
}

/// Keys the real manifests use are known keys: validating them prints no unknown-key
/// warnings (a warning there would teach authors to ignore warnings).
#[test]
fn corpus_keys_raise_no_warnings() {
    let Some(dir) = corpus_dir() else { return };
    let mut problems = Vec::new();
    for (name, path) in corpus_files(&dir) {
        for w in manifest_warnings(&read_json(&path)) {
            problems.push(format!("{name}: {w}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} warning(s) on the corpus:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
