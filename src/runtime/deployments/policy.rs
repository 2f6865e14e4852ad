//! The update policy a request runs under: the manifest's `policies.update`, with the
//! caller's fields (`update_policy_json`, CLI flags) laid over it, then validated whole.

use serde_json::{Map, Value};

use super::DeploymentRunError;
use crate::domain::manifest::{Manifest, ValidationError};
use crate::domain::policy::UpdatePolicy;

/// `None` when the caller overrides nothing (the manifest's policy, else the defaults, hold).
pub fn effective(
    manifest: &Manifest,
    overrides: Option<&Value>,
) -> Result<Option<UpdatePolicy>, DeploymentRunError> {
    let fields = match overrides {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(DeploymentRunError::Invalid(vec![ValidationError::new(
                "update_policy_json",
                format!("update_policy_json must be an object, got {other}"),
            )]));
        }
    };
    // `version` is the client's interface version, not a policy field; unset fields keep
    // the manifest's values.
    let given: Map<String, Value> = fields
        .iter()
        .filter(|(k, v)| k.as_str() != "version" && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if given.is_empty() {
        return Ok(None);
    }
    let mut merged = manifest
        .policies
        .get("update")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    merged.extend(given);
    UpdatePolicy::parse(&Value::Object(merged), "update_policy_json")
        .map(Some)
        .map_err(DeploymentRunError::Invalid)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::policy::UpdateStrategy;

    fn manifest(update: Value) -> Manifest {
        crate::domain::manifest::parse_manifest(&json!({
            "manifest_version": "1.0", "graph_id": "g", "job_type": "service",
            "entrypoints": ["a"], "nodes": [{"node_id": "a", "agent_type": "router"}],
            "edges": [], "policies": {"update": update},
        }))
        .expect("valid manifest")
    }

    #[test]
    fn caller_fields_override_the_manifests_and_the_rest_stays() {
        let m = manifest(json!({"strategy": "canary", "canary": 1, "min_healthy_ms": 5}));
        let p = effective(
            &m,
            Some(&json!({"canary": 2, "max_parallel": 3, "version": 1})),
        )
        .expect("valid")
        .expect("overridden");
        assert_eq!(p.strategy, UpdateStrategy::Canary);
        assert_eq!((p.canary, p.max_parallel, p.min_healthy_ms), (2, 3, 5));
        assert!(
            effective(&m, Some(&json!({"version": 1})))
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn a_bad_override_names_its_field() {
        let m = manifest(json!({}));
        let err = effective(
            &m,
            Some(&json!({"strategy": "canary", "auto_promote": true})),
        )
        .expect_err("invalid");
        assert!(
            err.to_string()
                .contains("update_policy_json.auto_promote requires canary > 0"),
            "{err}"
        );
    }
}
