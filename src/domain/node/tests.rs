//! Given events, when a command, then events; plus the status each fold yields.

use super::*;

fn inv(cores: u32) -> Inventory {
    Inventory {
        hostname: "h".into(),
        cpu_cores: cores,
        memory_mb: 1024,
        executor_slots: 4,
        ..Inventory::default()
    }
}

fn fold(name: &str, events: &[NodeEvent]) -> NodeState {
    events
        .iter()
        .enumerate()
        .fold(NodeState::new(name), |s, (i, e)| {
            evolve(
                s,
                &NodeEnvelope {
                    node: name.into(),
                    seq: i as u64 + 1,
                    at_ms: 1_000 * (i as i64 + 1),
                    event: e.clone(),
                },
            )
        })
}

fn joined(inc: &str) -> NodeEvent {
    NodeEvent::NodeJoined {
        incarnation: inc.into(),
        inventory: inv(4),
    }
}

fn drain_started() -> NodeEvent {
    NodeEvent::DrainStarted {
        reason: "r".into(),
        started_at_ms: 0,
        deadline_at_ms: 10,
        deadline_ms: 10,
        ignore_system_jobs: true,
    }
}

#[test]
fn joining_makes_a_healthy_eligible_node() {
    let s = fold("a", &[joined("1")]);
    assert_eq!(s.status(), NodeStatus::Healthy);
    assert!(s.scheduling_eligible());
    assert_eq!(s.version, 1);
}

#[test]
fn rejoining_with_the_same_incarnation_and_inventory_is_a_no_op() {
    let s = fold("a", &[joined("1")]);
    let cmd = NodeCommand::Join {
        incarnation: "1".into(),
        inventory: inv(4),
    };
    assert_eq!(decide(&s, &cmd), Ok(vec![]));
    let changed = NodeCommand::Join {
        incarnation: "1".into(),
        inventory: inv(8),
    };
    assert_eq!(decide(&s, &changed).map(|e| e.len()), Ok(1));
}

#[test]
fn a_drained_node_that_flaps_stays_out_of_scheduling() {
    let lost = NodeEvent::NodeLost {
        incarnation: "1".into(),
        reason: "lease expired".into(),
    };
    let s = fold("a", &[joined("1"), drain_started(), lost, joined("2")]);
    assert_eq!(s.status(), NodeStatus::Draining);
    assert!(!s.scheduling_eligible());
    let m = NodeEvent::MaintenanceChanged {
        enabled: true,
        reason: None,
    };
    let lost2 = NodeEvent::NodeLost {
        incarnation: "2".into(),
        reason: "x".into(),
    };
    let s = fold("b", &[joined("1"), m, lost2, joined("3")]);
    assert_eq!(s.status(), NodeStatus::Maintenance);
}

#[test]
fn losing_an_older_incarnation_does_not_take_the_new_one_down() {
    let s = fold("a", &[joined("2")]);
    let cmd = NodeCommand::MarkLost {
        incarnation: "1".into(),
        reason: "late".into(),
    };
    assert_eq!(decide(&s, &cmd), Ok(vec![]));
    let cmd = NodeCommand::MarkLost {
        incarnation: "2".into(),
        reason: "lease expired".into(),
    };
    let events = decide(&s, &cmd).unwrap_or_default();
    let s = fold("a", &[joined("2"), events[0].clone()]);
    assert_eq!(s.status(), NodeStatus::Lost);
    assert_eq!(s.down_reason.as_deref(), Some("lease expired"));
}

#[test]
fn drain_lifecycle() {
    let s = fold("a", &[joined("1")]);
    let start = NodeCommand::StartDrain {
        reason: None,
        deadline_ms: 5_000,
        ignore_system_jobs: true,
        now_ms: 100,
    };
    let ev = decide(&s, &start).unwrap_or_default();
    assert!(matches!(
        &ev[0],
        NodeEvent::DrainStarted { deadline_at_ms: 5_100, reason, .. } if reason == "operator requested node drain"
    ));
    let s = fold("a", &[joined("1"), ev[0].clone()]);
    assert_eq!(
        decide(&s, &start),
        Err(NodeError::AlreadyDraining("a".into()))
    );
    let s = fold(
        "a",
        &[joined("1"), drain_started(), NodeEvent::DrainCompleted],
    );
    assert_eq!(s.status(), NodeStatus::Maintenance);
    assert_eq!(decide(&s, &NodeCommand::CompleteDrain), Ok(vec![]));
    let undrain = NodeCommand::CancelDrain {
        reason: None,
        mark_eligible: true,
    };
    let ev = decide(&s, &undrain).unwrap_or_default();
    let s = fold(
        "a",
        &[
            joined("1"),
            drain_started(),
            NodeEvent::DrainCompleted,
            ev[0].clone(),
        ],
    );
    assert_eq!(s.status(), NodeStatus::Healthy);
    assert_eq!(
        decide(&s, &undrain),
        Err(NodeError::NotDraining("a".into()))
    );
}

#[test]
fn undrain_without_mark_eligible_parks_the_node_in_maintenance() {
    let cancel = NodeEvent::DrainCancelled {
        reason: "r".into(),
        mark_eligible: false,
    };
    let s = fold("a", &[joined("1"), drain_started(), cancel]);
    assert_eq!(s.status(), NodeStatus::Maintenance);
    let off = NodeCommand::SetMaintenance {
        enabled: false,
        reason: None,
    };
    assert_eq!(decide(&s, &off).map(|e| e.len()), Ok(1));
}

#[test]
fn operator_commands_on_an_unknown_node_name_it() {
    let s = NodeState::new("ghost");
    let cmd = NodeCommand::SetMaintenance {
        enabled: true,
        reason: None,
    };
    let err = decide(&s, &cmd).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("node ghost is not known to the cluster (it never joined)")
    );
}

#[test]
fn views_round_trip() {
    let s = fold("a", &[joined("1"), drain_started()]);
    let v = s.to_view();
    assert_eq!(v["status"], "draining");
    assert_eq!(v["scheduling_eligible"], false);
    assert_eq!(NodeState::from_view(&v), Some(s));
}

#[test]
fn events_encode_and_decode() {
    let env = NodeEnvelope {
        node: "a".into(),
        seq: 3,
        at_ms: 5,
        event: joined("1"),
    };
    assert_eq!(decode_node_event(&encode_node_event(&env)), Ok(env));
}
