//! Error messages when nothing fits: the blocking requirement, the closest node, and how many
//! nodes each check filtered.

use serde_json::json;

use super::{constraint, gpu, job, node, task, task_json, with_gpus};
use crate::domain::scheduler::{NodeStatus, PlacementError, Strategy, plan};

#[test]
fn message_table() {
    let mut offline = node("z", 64, 64_000);
    offline.status = NodeStatus::Offline;
    let gpu_nodes = vec![
        with_gpus(node("a", 8, 8000), vec![gpu("a0", 4096, &["cuda"])]),
        with_gpus(node("b", 8, 8000), vec![gpu("b0", 8192, &["cuda"])]),
        node("c", 8, 8000),
    ];
    let mut linux_only = task("t", 1, 100);
    linux_only.constraints = vec![constraint(json!({"attribute": "os", "value": "linux"}))];
    let cases = vec![
        (
            "cpu",
            vec![node("a", 4, 8000), node("b", 2, 8000), offline.clone()],
            task("big", 8, 100),
            "agent big needs 8 cpu cores; most free: 4 on node a (cpu filtered 2 nodes, status offline filtered 1 node)",
        ),
        (
            "memory",
            vec![node("a", 4, 1000), node("b", 4, 3000)],
            task("hungry", 1, 4096),
            "agent hungry needs 4096 MB memory; most free: 3000 MB on node b (memory filtered 2 nodes)",
        ),
        (
            "gpu memory and capability",
            gpu_nodes.clone(),
            task_json(
                "gpu_worker",
                json!({"devices": [{"type": "gpu", "min_memory_mb": 16000, "capabilities": ["cuda"]}]}),
            ),
            "agent gpu_worker needs 1 GPU with >= 16000 MB and capability cuda; largest GPU seen: 8192 MB on node b (devices filtered 3 nodes)",
        ),
        (
            "constraint",
            vec![node("a", 4, 4000), offline],
            linux_only,
            "agent t needs a node where os == linux; no schedulable node satisfies it: attach one that does (constraint `os == linux` filtered 1 node, status offline filtered 1 node)",
        ),
    ];
    for (name, nodes, t, want) in cases {
        let err = plan(&nodes, &[], &job(Strategy::Binpack, vec![t])).expect_err(name);
        assert_eq!(err.to_string(), want, "case {name}");
    }
}

#[test]
fn the_structured_error_carries_counts() {
    let err = plan(
        &[node("a", 1, 100), node("b", 1, 100)],
        &[],
        &job(Strategy::Spread, vec![task("t", 2, 10)]),
    )
    .expect_err("too big");
    let PlacementError::Unplaceable {
        agent_id, filtered, ..
    } = err
    else {
        panic!("expected Unplaceable, got {err:?}");
    };
    assert_eq!(agent_id, "t");
    assert_eq!((filtered[0].reason.as_str(), filtered[0].nodes), ("cpu", 2));
}

#[test]
fn a_node_without_any_gpu_is_named_as_such() {
    let err = plan(
        &[node("a", 8, 8000)],
        &[],
        &job(Strategy::Binpack, vec![task_json("g", json!({"gpus": 1}))]),
    )
    .expect_err("no gpu");
    assert_eq!(
        err.to_string(),
        "agent g needs 1 GPU; no candidate node has a GPU: attach one (devices filtered 1 node)"
    );
}
