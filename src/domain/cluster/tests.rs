//! Table tests of the reconciler and the recovery policy resolution.

use super::*;
use crate::domain::job::JobStatus;
use crate::domain::node::{Drain, DrainStatus, Inventory, NodeState};

fn node(name: &str, alive: bool) -> NodeObs {
    let state = NodeState {
        name: name.into(),
        version: 1,
        incarnation: Some(format!("{name}-1")),
        connected: true,
        inventory: Some(Inventory::default()),
        ..NodeState::default()
    };
    NodeObs {
        alive: alive.then(|| format!("{name}-1")),
        state,
        pending_work: 0,
    }
}

fn draining(mut n: NodeObs, deadline_at_ms: i64) -> NodeObs {
    n.state.drain = Some(Drain {
        status: DrainStatus::Draining,
        reason: "r".into(),
        started_at_ms: 0,
        deadline_at_ms,
        deadline_ms: deadline_at_ms as u64,
        ignore_system_jobs: true,
        completed_at_ms: None,
    });
    n
}

fn job(id: &str, owner: Option<&str>, last: Option<&str>, policy: RecoveryPolicy) -> JobObs {
    JobObs {
        job_id: id.into(),
        status: JobStatus::Running,
        lease_owner: owner.map(String::from),
        last_owner: last.map(String::from),
        last_owner_local_run: false,
        recovery: Some(policy),
    }
}

fn snap(nodes: Vec<NodeObs>, jobs: Vec<JobObs>) -> Snapshot {
    Snapshot {
        now_ms: 1_000,
        nodes,
        jobs,
    }
}

#[test]
fn healthy_cluster_with_owned_jobs_needs_nothing() {
    let s = snap(
        vec![node("a", true), node("b", true)],
        vec![job(
            "j",
            Some("a"),
            Some("a"),
            RecoveryPolicy::ClusterRecover,
        )],
    );
    assert_eq!(reconcile(&s), vec![]);
}

#[test]
fn a_node_whose_liveness_lease_expired_is_marked_lost_and_its_jobs_move() {
    let mut a = node("a", false);
    a.pending_work = 2;
    let s = snap(
        vec![a, node("b", true), node("c", true)],
        vec![
            job("j1", None, Some("a"), RecoveryPolicy::ClusterRecover),
            job("j2", None, Some("a"), RecoveryPolicy::ClusterRecover),
            job("j3", Some("b"), Some("b"), RecoveryPolicy::ClusterRecover),
        ],
    );
    assert_eq!(
        reconcile(&s),
        vec![
            Action::MarkLost {
                node: "a".into(),
                incarnation: "a-1".into()
            },
            Action::ReclaimWork {
                from: "a".into(),
                to: vec!["b".into(), "c".into()]
            },
            // c owns nothing, b owns j3: the least loaded node first.
            Action::Assign {
                job_id: "j1".into(),
                node: "c".into()
            },
            Action::Assign {
                job_id: "j2".into(),
                node: "b".into()
            },
        ]
    );
}

#[test]
fn a_restarted_process_under_the_same_name_marks_the_old_incarnation_lost() {
    let mut a = node("a", true);
    a.alive = Some("a-2".into());
    let got = reconcile(&snap(vec![a], vec![]));
    assert_eq!(
        got,
        vec![Action::MarkLost {
            node: "a".into(),
            incarnation: "a-1".into()
        }]
    );
}

#[test]
fn an_orphan_goes_back_to_its_live_previous_owner() {
    let s = snap(
        vec![node("a", true), node("b", true)],
        vec![job("j", None, Some("b"), RecoveryPolicy::ClusterRecover)],
    );
    assert_eq!(
        reconcile(&s),
        vec![Action::Assign {
            job_id: "j".into(),
            node: "b".into()
        }]
    );
}

#[test]
fn policies_decide_what_happens_to_a_lost_owners_job() {
    let nodes = || vec![node("a", false), node("b", true)];
    let lost = |p| snap(nodes(), vec![job("j", None, Some("a"), p)]);
    let jobs_actions = |s: &Snapshot| -> Vec<Action> {
        reconcile(s)
            .into_iter()
            .filter(|a| !matches!(a, Action::MarkLost { .. }))
            .collect()
    };
    assert_eq!(
        jobs_actions(&lost(RecoveryPolicy::ClusterRecover)),
        vec![Action::Assign {
            job_id: "j".into(),
            node: "b".into()
        }]
    );
    assert_eq!(jobs_actions(&lost(RecoveryPolicy::LocalRestart)), vec![]);
    assert_eq!(
        jobs_actions(&lost(RecoveryPolicy::ManualRecover)),
        vec![Action::PauseForReview {
            job_id: "j".into(),
            reason: "owner node a was lost and the job's recovery policy is manual_recover".into()
        }]
    );
    // Once paused for review it is still given an owner, which idles until resumed.
    let mut paused = job("j", None, Some("a"), RecoveryPolicy::ManualRecover);
    paused.status = JobStatus::Paused;
    assert_eq!(
        jobs_actions(&snap(nodes(), vec![paused])),
        vec![Action::Assign {
            job_id: "j".into(),
            node: "b".into()
        }]
    );
}

#[test]
fn a_job_left_by_a_local_run_is_adopted_whatever_its_policy() {
    for policy in [
        RecoveryPolicy::Auto,
        RecoveryPolicy::LocalRestart,
        RecoveryPolicy::ClusterRecover,
        RecoveryPolicy::ManualRecover,
    ] {
        let mut left = job("j", None, Some("local-42"), policy);
        left.last_owner_local_run = true;
        assert_eq!(
            reconcile(&snap(vec![node("b", true)], vec![left.clone()])),
            vec![Action::Assign {
                job_id: "j".into(),
                node: "b".into()
            }],
            "{policy:?}"
        );
        // While the local run still holds the lease, it is left alone.
        left.lease_owner = Some("local-42".into());
        assert_eq!(reconcile(&snap(vec![node("b", true)], vec![left])), vec![]);
    }
}

#[test]
fn no_live_target_means_the_job_waits() {
    let s = snap(
        vec![node("a", false)],
        vec![job("j", None, Some("a"), RecoveryPolicy::ClusterRecover)],
    );
    assert_eq!(
        reconcile(&s),
        vec![Action::MarkLost {
            node: "a".into(),
            incarnation: "a-1".into()
        }]
    );
}

#[test]
fn drain_before_the_deadline_waits_and_after_it_moves_jobs_and_work() {
    let mut a = draining(node("a", true), 5_000);
    a.pending_work = 1;
    let jobs = vec![job(
        "j",
        Some("a"),
        Some("a"),
        RecoveryPolicy::ClusterRecover,
    )];
    assert_eq!(
        reconcile(&snap(vec![a.clone(), node("b", true)], jobs.clone())),
        vec![]
    );
    let mut s = snap(vec![a, node("b", true)], jobs);
    s.now_ms = 6_000;
    assert_eq!(
        reconcile(&s),
        vec![
            Action::ReclaimWork {
                from: "a".into(),
                to: vec!["b".into()]
            },
            Action::Release {
                job_id: "j".into(),
                node: "a".into()
            },
        ]
    );
}

#[test]
fn an_orphan_never_lands_on_a_draining_node_and_an_empty_drain_completes() {
    let s = snap(
        vec![draining(node("a", true), 5_000), node("b", true)],
        vec![job("j", None, Some("a"), RecoveryPolicy::ClusterRecover)],
    );
    assert_eq!(
        reconcile(&s),
        vec![
            Action::Assign {
                job_id: "j".into(),
                node: "b".into()
            },
            Action::CompleteDrain { node: "a".into() },
        ]
    );
}

#[test]
fn recovery_resolution_follows_the_table() {
    let two = vec!["a".to_string(), "b".to_string()];
    let one = vec!["a".to_string()];
    let r = |req, nodes: &[String]| resolve_recovery(req, nodes, true, &[], |_| 2, 7);
    let x = r(RecoveryPolicy::Auto, &two);
    assert_eq!(
        (x.effective_recovery_policy, x.degraded, x.mode.as_str()),
        (RecoveryPolicy::ClusterRecover, false, "multi_node")
    );
    let x = r(RecoveryPolicy::Auto, &one);
    assert_eq!(
        (x.effective_recovery_policy, x.degraded),
        (RecoveryPolicy::LocalRestart, false)
    );
    assert_eq!(
        x.reason,
        "fewer than 2 healthy connected runtime nodes observed"
    );
    let x = r(RecoveryPolicy::ClusterRecover, &one);
    assert_eq!(
        (x.effective_recovery_policy, x.degraded),
        (RecoveryPolicy::LocalRestart, true)
    );
    let x = r(RecoveryPolicy::ManualRecover, &two);
    assert_eq!(x.reason, "manual recovery requested on multi_node");
    let x = resolve_recovery(RecoveryPolicy::Auto, &two, false, &[], |_| 2, 7);
    assert_eq!(
        (x.effective_recovery_policy, x.reason.as_str()),
        (
            RecoveryPolicy::LocalRestart,
            "recovery bundle is not archived in durable cluster storage"
        )
    );
    let x = resolve_recovery(
        RecoveryPolicy::ClusterRecover,
        &two,
        true,
        &["gpu".to_string()],
        |_| 1,
        7,
    );
    assert_eq!(
        x.reason,
        "no alternate healthy runtime node advertises execution profile gpu"
    );
}
