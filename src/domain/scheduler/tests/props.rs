//! Property tests: invariants every plan must keep, checked against an independent reference
//! feasibility test replayed over the plan's allocations in placement order.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{gpu, with_gpus};
use crate::domain::scheduler::{
    Allocation, DeviceRequest, JobRequest, NodeCandidate, Plan, Strategy as Placement, TaskRequest,
    plan,
};

/// Usage of one node as the test recomputes it.
#[derive(Default, Clone)]
struct Used {
    cpu: u64,
    mem: u64,
    devices: BTreeSet<String>,
    allocs: usize,
    job_allocs: usize,
}

fn arb_node(i: usize) -> impl Strategy<Value = NodeCandidate> {
    (
        1u64..16,
        1u64..16,
        prop::collection::vec(prop::sample::select(vec![8_000u64, 16_000, 40_000]), 0..3),
        prop::bool::weighted(0.9),
    )
        .prop_map(move |(cores, gb, gpus, eligible)| {
            let name = format!("n{i:02}");
            let devices = gpus
                .iter()
                .enumerate()
                .map(|(g, mem)| gpu(&format!("{name}-g{g}"), *mem, &[]))
                .collect();
            let mut n = with_gpus(
                NodeCandidate::new(&name, cores * 1000, gb * 1000, 1000),
                devices,
            );
            n.eligible = eligible;
            n
        })
}

fn arb_task(i: usize) -> impl Strategy<Value = TaskRequest> {
    (
        0u64..3000,
        0u64..3000,
        // Mostly CPU-only tasks, so that most generated plans succeed and are checked.
        prop::sample::select(vec![0u32, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2]),
        prop::sample::select(vec![0u64, 0, 10_000, 20_000]),
    )
        .prop_map(move |(cpu, mem, gpus, min_mem)| {
            let mut t = super::task(&format!("t{i:02}"), 0, 0);
            t.demand.cpu_millis = cpu;
            t.demand.memory_mb = mem;
            if gpus > 0 {
                let mut r = DeviceRequest::gpus(gpus);
                r.min_memory_mb = min_mem;
                t.demand.devices.push(r);
                t.demand.gpus = gpus;
            }
            t
        })
}

fn arb_case() -> impl Strategy<Value = (Vec<NodeCandidate>, JobRequest)> {
    let nodes = (1usize..7).prop_flat_map(|n| (0..n).map(arb_node).collect::<Vec<_>>());
    let tasks = (1usize..12).prop_flat_map(|n| (0..n).map(arb_task).collect::<Vec<_>>());
    let strategy = prop::sample::select(vec![Placement::Binpack, Placement::Spread]);
    (nodes, tasks, strategy)
        .prop_map(|(nodes, tasks, strategy)| (nodes, super::job(strategy, tasks)))
}

/// Whether `task` fits `node` given `used`, by the test's own simple rules.
fn fits(node: &NodeCandidate, used: &Used, task: &TaskRequest) -> bool {
    let free_devices = |r: &DeviceRequest| {
        node.devices
            .iter()
            .filter(|d| !used.devices.contains(&d.id) && d.memory_mb >= r.min_memory_mb)
            .count()
    };
    node.schedulable()
        && used.cpu + task.demand.cpu_millis <= node.capacity.cpu_millis
        && used.mem + task.demand.memory_mb <= node.capacity.memory_mb
        && task
            .demand
            .devices
            .iter()
            .all(|r| free_devices(r) >= r.count as usize)
}

/// Replays the plan in placement order, calling `check(before, alloc)` before charging each one.
fn replay(
    nodes: &[NodeCandidate],
    p: &Plan,
    mut check: impl FnMut(&BTreeMap<String, Used>, &Allocation),
) -> BTreeMap<String, Used> {
    let mut used: BTreeMap<String, Used> = nodes
        .iter()
        .map(|n| (n.name.clone(), Used::default()))
        .collect();
    for a in &p.allocations {
        check(&used, a);
        let u = used.get_mut(&a.node).expect("plans only name known nodes");
        u.cpu += a.cpu_millis;
        u.mem += a.memory_mb;
        for id in &a.device_ids {
            assert!(u.devices.insert(id.clone()), "device {id} allocated twice");
        }
        u.allocs += 1;
        u.job_allocs += 1;
    }
    used
}

fn task_of<'a>(job: &'a JobRequest, a: &Allocation) -> &'a TaskRequest {
    job.tasks
        .iter()
        .find(|t| t.agent_id == a.agent_id)
        .expect("allocation of a known task")
}

/// Guards the properties' strength: they only check plans that succeed, so most must.
#[test]
fn most_generated_cases_are_placeable() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let ok = (0..200)
        .filter(|_| {
            let (nodes, job) = arb_case()
                .new_tree(&mut runner)
                .expect("generates")
                .current();
            plan(&nodes, &[], &job).is_ok()
        })
        .count();
    assert!(ok >= 80, "only {ok} of 200 generated cases were placeable");
}

proptest! {
    #[test]
    fn never_over_commits_a_node_or_a_device((nodes, job) in arb_case()) {
        let Ok(p) = plan(&nodes, &[], &job) else { return Ok(()) };
        prop_assert_eq!(p.allocations.len(), job.tasks.len());
        let used = replay(&nodes, &p, |_, _| {});
        for n in &nodes {
            let u = &used[&n.name];
            prop_assert!(u.cpu <= n.capacity.cpu_millis && u.mem <= n.capacity.memory_mb, "node {} over-committed", n.name);
            prop_assert!(u.allocs == 0 || n.schedulable(), "node {} is not schedulable", n.name);
            for id in &u.devices {
                prop_assert!(n.devices.iter().any(|d| d.id == *id), "device {} is not on node {}", id, n.name);
            }
        }
        for a in &p.allocations {
            let t = task_of(&job, a);
            let asked: u32 = t.demand.devices.iter().map(|r| r.count).sum();
            prop_assert_eq!(a.device_ids.len(), asked as usize);
        }
    }

    #[test]
    fn spread_never_stacks_while_a_feasible_node_has_none((nodes, mut job) in arb_case()) {
        job.strategy = Placement::Spread;
        let Ok(p) = plan(&nodes, &[], &job) else { return Ok(()) };
        replay(&nodes, &p, |used, a| {
            if used[&a.node].job_allocs == 0 {
                return;
            }
            let t = task_of(&job, a);
            for n in &nodes {
                let u = &used[&n.name];
                assert!(!(u.job_allocs == 0 && fits(n, u, t)), "{} stacked on {} while {} was free of the job and fit", a.agent_id, a.node, n.name);
            }
        });
    }

    #[test]
    fn binpack_never_opens_an_empty_node_while_a_used_one_fits((nodes, mut job) in arb_case()) {
        job.strategy = Placement::Binpack;
        let Ok(p) = plan(&nodes, &[], &job) else { return Ok(()) };
        replay(&nodes, &p, |used, a| {
            if used[&a.node].allocs > 0 {
                return;
            }
            let t = task_of(&job, a);
            for n in &nodes {
                let u = &used[&n.name];
                assert!(!(u.allocs > 0 && fits(n, u, t)), "{} opened {} while used node {} fit", a.agent_id, a.node, n.name);
            }
        });
    }
}
