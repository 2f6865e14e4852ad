//! Service declarations and requirements (core-spec 9.1), parsed once here into the typed
//! [`ServiceSpec`]s the manifest keeps: `services` and `required_services` at the top level,
//! a node's `services` and `requires_services`. The parse itself is `domain::service`.

use serde_json::{Map, Value};

use super::error::{Errors, join};
use super::fields::aliased;
use crate::domain::service::{ServiceSpec, parse_list};

/// The top-level `services` and `required_services`.
pub(crate) fn job_services(
    root: &Map<String, Value>,
    errs: &mut Errors,
) -> (Vec<ServiceSpec>, Vec<ServiceSpec>) {
    (
        list(root, &["services"], "", errs),
        list(root, &["required_services", "requiredServices"], "", errs),
    )
}

/// One node's `services` and `requires_services`; `path` is the node's.
pub(crate) fn node_services(
    node: &Map<String, Value>,
    path: &str,
    errs: &mut Errors,
) -> (Vec<ServiceSpec>, Vec<ServiceSpec>) {
    (
        list(node, &["services"], path, errs),
        list(node, &["requires_services", "requiresServices"], path, errs),
    )
}

fn list(
    map: &Map<String, Value>,
    keys: &[&'static str],
    parent: &str,
    errs: &mut Errors,
) -> Vec<ServiceSpec> {
    let Some((key, value)) = aliased(map, keys) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let specs = parse_list(value, &join(parent, key), &mut found);
    for e in found {
        errs.push(e.path, e.message);
    }
    specs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(root: Value) -> (Vec<ServiceSpec>, Vec<ServiceSpec>, Vec<String>) {
        let mut errs = Errors::default();
        let (s, r) = job_services(root.as_object().expect("object"), &mut errs);
        (s, r, errs.into_vec().into_iter().map(|e| e.path).collect())
    }

    #[test]
    fn declared_shapes_pass() {
        let (services, required, errs) = parse(json!({
            "services": [{"name": "demo-health", "port": "${config.service.port}", "origin": "internal",
                "provider": "mirror_neuron", "tags": ["a"], "meta": {},
                "checks": [{"type": "http", "timeout_ms": 500, "path": "/health"}]}, "plain-name"],
            "required_services": [{"name": "nvidia-asr", "tags": ["x"], "required": true}],
        }));
        assert_eq!(errs, Vec::<String>::new());
        assert_eq!(services.len(), 2);
        assert_eq!(required[0].tags, ["x"]);
    }

    #[test]
    fn bad_fields_are_named() {
        let (_, _, errs) = parse(json!({
            "services": [{"name": "-bad", "port": 70000, "origin": "elsewhere", "tags": "a",
                "checks": [{"type": "smtp", "interval_ms": 0}]}],
            "requiredServices": {"required": "yes"},
        }));
        assert_eq!(
            errs,
            [
                "services[0].name",
                "services[0].origin",
                "services[0].port",
                "services[0].tags",
                "services[0].checks[0].type",
                "services[0].checks[0].interval_ms",
                "requiredServices.name",
                "requiredServices.required",
            ]
        );
    }
}
