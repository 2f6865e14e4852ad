//! System and sysbatch jobs: one copy of the whole group on every node where it fits.

use super::{gpu, job, node, task, task_json, with_gpus};
use crate::domain::manifest::JobType;
use crate::domain::scheduler::{AdmissionLimits, NodeStatus, PlacementError, Strategy, plan};

#[test]
fn every_fitting_node_gets_every_task() {
    let mut draining = node("d", 8, 8000);
    draining.status = NodeStatus::Draining;
    let nodes = vec![
        node("a", 4, 4000),
        node("b", 1, 4000),
        draining,
        node("c", 4, 4000),
    ];
    let mut j = job(
        Strategy::Binpack,
        vec![task("agent", 1, 100), task("sidecar", 1, 100)],
    );
    j.job_type = JobType::System;
    let p = plan(&nodes, &[], &j).expect("some nodes fit");
    assert_eq!(p.system_targets, vec!["a", "c"]);
    let ids: Vec<(&str, Option<&str>)> = p
        .allocations
        .iter()
        .map(|a| (a.agent_id.as_str(), a.source_agent_id.as_deref()))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("agent@a", Some("agent")),
            ("sidecar@a", Some("sidecar")),
            ("agent@c", Some("agent")),
            ("sidecar@c", Some("sidecar"))
        ]
    );
    let skipped: Vec<(&str, &str)> = p
        .skipped_nodes
        .iter()
        .map(|s| (s.node.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("b", "agent sidecar: needs 1 cpu cores, 0 free"),
            ("d", "agent agent: node is draining")
        ]
    );
}

#[test]
fn no_eligible_node_lists_each_reason() {
    let mut j = job(
        Strategy::Binpack,
        vec![task_json("g", serde_json::json!({"gpus": 1}))],
    );
    j.job_type = JobType::Sysbatch;
    let err = plan(&[node("a", 4, 4000)], &[], &j).expect_err("no gpu");
    assert!(matches!(err, PlacementError::SystemNoEligible { .. }));
    assert_eq!(
        err.to_string(),
        "system job has no eligible nodes (a: agent g: needs 1 GPU)"
    );
}

#[test]
fn gpu_admission_limit_caps_copies() {
    let mut n = with_gpus(
        node("a", 8, 8000),
        vec![gpu("a0", 8000, &[]), gpu("a1", 8000, &[])],
    );
    n.limits = Some(AdmissionLimits {
        gpu_percent: 50,
        ..AdmissionLimits::default()
    });
    let mut j = job(
        Strategy::Binpack,
        vec![
            task_json("g1", serde_json::json!({"gpus": 1})),
            task_json("g2", serde_json::json!({"gpus": 1})),
        ],
    );
    j.job_type = JobType::System;
    let err = plan(&[n], &[], &j).expect_err("only one GPU allowed");
    assert_eq!(
        err.to_string(),
        "system job has no eligible nodes (a: agent g2: needs 1 GPUs, 0 allowed free)"
    );
}
