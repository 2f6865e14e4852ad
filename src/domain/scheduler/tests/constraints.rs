//! Every constraint operator of core-spec 7.3 (and the comparison ones Nomad adds) against one
//! node, plus parsing of the accepted shapes.

use serde_json::{Value, json};

use super::{constraint, gpu, node, with_gpus};
use crate::domain::scheduler::{Constraint, NodeCandidate, NodeStatus, Operator};

fn subject() -> NodeCandidate {
    let mut n = with_gpus(
        node("alpha", 8, 16_000),
        vec![gpu("gpu-0", 24_000, &["fp16"])],
    );
    n.status = NodeStatus::Joining;
    n.capabilities = vec!["CUDA".into(), "docker_runtime".into()];
    n.execution_profiles = vec!["gpu-large".into(), "default".into()];
    for (k, v) in [
        ("os", "linux"),
        ("arch", "x86_64"),
        ("kernel", "6.8.1"),
        ("rack", "r2"),
        ("cores", "8"),
    ] {
        n.attributes.insert(k.into(), v.into());
    }
    n
}

#[test]
fn operator_table() {
    let cases: &[(Value, bool)] = &[
        (json!({"attribute": "os", "value": "linux"}), true),
        (
            json!({"attribute": "${os}", "operator": "=", "value": "Linux"}),
            true,
        ),
        (
            json!({"attribute": "platform.os", "operator": "is", "value": "darwin"}),
            false,
        ),
        (
            json!({"attribute": "arch", "operator": "!=", "value": "arm64"}),
            true,
        ),
        (
            json!({"attribute": "arch", "operator": "not", "value": "x86_64"}),
            false,
        ),
        (json!({"attribute": "node", "value": "alpha"}), true),
        (
            json!({"attribute": "node.unique.name", "value": "beta"}),
            false,
        ),
        (json!({"attribute": "status", "value": "joining"}), true),
        (json!({"attribute": "node_role", "value": "runtime"}), true),
        (json!({"attribute": "gpu", "value": true}), true),
        (
            json!({"attribute": "profiles", "operator": "contains", "value": "gpu-large"}),
            true,
        ),
        (json!({"attribute": "profile", "value": "default"}), true),
        (
            json!({"attribute": "capabilities", "operator": "set_contains", "value": "cuda,docker-runtime"}),
            true,
        ),
        (
            json!({"attribute": "capabilities", "operator": "contains_all", "value": ["cuda", "rocm"]}),
            false,
        ),
        (
            json!({"attribute": "capabilities", "operator": "set_contains_any", "value": "rocm,fp16"}),
            true,
        ),
        (
            json!({"attribute": "capability", "operator": "contains_any", "value": "rocm"}),
            false,
        ),
        (
            json!({"attribute": "rack", "operator": "in", "value": "r1,r2"}),
            true,
        ),
        (
            json!({"attribute": "rack", "operator": "not_in", "value": ["r1", "r2"]}),
            false,
        ),
        (json!({"attribute": "rack", "operator": "is_set"}), true),
        (json!({"attribute": "zone", "operator": "exists"}), false),
        (json!({"attribute": "zone", "operator": "is_not_set"}), true),
        (
            json!({"attribute": "rack", "operator": "not_exists"}),
            false,
        ),
        (
            json!({"attribute": "zone", "operator": "!=", "value": "z1"}),
            true,
        ),
        (json!({"attribute": "zone", "value": "z1"}), false),
        (
            json!({"attribute": "cores", "operator": ">=", "value": 8}),
            true,
        ),
        (
            json!({"attribute": "cores", "operator": ">", "value": "10"}),
            false,
        ),
        (
            json!({"attribute": "cores", "operator": "<", "value": 10}),
            true,
        ),
        (
            json!({"attribute": "cores", "operator": "<=", "value": 7}),
            false,
        ),
        (
            json!({"attribute": "rack", "operator": "<", "value": "r3"}),
            true,
        ),
        (
            json!({"attribute": "kernel", "operator": "version", "value": ">= 6.1, < 7"}),
            true,
        ),
        (
            json!({"attribute": "kernel", "operator": "semver", "value": ">6.8.1"}),
            false,
        ),
        (
            json!({"attribute": "kernel", "operator": "version", "value": "6.8.1"}),
            true,
        ),
        (json!({"attribute": "attr.rack", "value": "r2"}), true),
        (
            json!({"l_target": "${meta.rack}", "operand": "=", "r_target": "r2"}),
            true,
        ),
        (json!({"target": "arch", "value": "x86_64"}), true),
        (json!("cuda"), true),
        (json!("docker_runtime"), true),
        (json!("rocm"), false),
        (json!({"operator": "distinct_hosts", "value": true}), true),
    ];
    let n = subject();
    for (v, want) in cases {
        assert_eq!(constraint(v.clone()).matches(&n), *want, "case {v}");
    }
}

#[test]
fn list_shapes() {
    let map = Constraint::parse_list(&json!({"os": "linux", "rack": "r2"}), "c").expect("valid");
    assert_eq!(
        map,
        vec![
            Constraint::new("os", Operator::Equal, "linux"),
            Constraint::new("rack", Operator::Equal, "r2")
        ]
    );
    let one =
        Constraint::parse_list(&json!({"attribute": "os", "value": "linux"}), "c").expect("valid");
    assert_eq!(one.len(), 1);
    let list = Constraint::parse_list(&json!(["cuda", {"attribute": "os", "value": "linux"}]), "c")
        .expect("valid");
    assert_eq!(list[0].to_string(), "capabilities contains cuda");
    assert_eq!(list[1].to_string(), "os == linux");
}

#[test]
fn parse_errors_name_the_path() {
    let cases: &[(Value, &str)] = &[
        (
            json!([{"attribute": "os", "operator": "~=", "value": "x"}]),
            "c[0].operator: unsupported constraint operator \"~=\"",
        ),
        (
            json!([{"operator": "==", "value": "x"}]),
            "c[0].attribute: attribute is required",
        ),
        (
            json!([3]),
            "c[0]: constraint must be an object or a capability name",
        ),
        (
            json!([{"attribute": "os", "value": {"a": 1}}]),
            "c[0].value: must be a string, number, boolean or list",
        ),
    ];
    for (v, want) in cases {
        let err = Constraint::parse_list(v, "c").expect_err("invalid");
        assert_eq!(err.to_string(), *want, "case {v}");
    }
}
