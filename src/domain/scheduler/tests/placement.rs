//! Placement of batch/service jobs: feasibility, strategies, ordering and tie-breaks. Each case
//! is a small cluster, a job and the expected `agent -> node` placements.

use serde_json::json;

use super::{constraint, gpu, job, node, pairs, placements, task, task_json, with_gpus};
use crate::domain::scheduler::{
    AdmissionLimits, Allocation, NodeCandidate, NodeStatus, PlacementError, Strategy, plan,
};

struct Case {
    name: &'static str,
    nodes: Vec<NodeCandidate>,
    existing: Vec<Allocation>,
    job: crate::domain::scheduler::JobRequest,
    want: &'static [(&'static str, &'static str)],
}

fn existing(node: &str, cores: u64, mem: u64) -> Allocation {
    Allocation {
        job_id: "other".into(),
        agent_id: "x".into(),
        node: node.into(),
        cpu_millis: cores * 1000,
        memory_mb: mem,
        ..Allocation::default()
    }
}

fn status(mut n: NodeCandidate, s: NodeStatus) -> NodeCandidate {
    n.status = s;
    n
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let got =
            plan(&c.nodes, &c.existing, &c.job).unwrap_or_else(|e| panic!("case {}: {e}", c.name));
        assert_eq!(placements(&got), pairs(c.want), "case {}", c.name);
    }
}

#[test]
fn binpack_cases() {
    run(vec![
        Case {
            name: "fills one node before opening another",
            nodes: vec![node("a", 8, 8000), node("b", 8, 8000)],
            existing: vec![],
            job: job(
                Strategy::Binpack,
                vec![
                    task("t1", 2, 1000),
                    task("t2", 2, 1000),
                    task("t3", 2, 1000),
                ],
            ),
            want: &[("t1", "a"), ("t2", "a"), ("t3", "a")],
        },
        Case {
            name: "a node in use by another job beats a bigger empty one",
            nodes: vec![node("a", 64, 256_000), node("b", 4, 4000)],
            existing: vec![existing("b", 1, 500)],
            job: job(Strategy::Binpack, vec![task("t1", 1, 500)]),
            want: &[("t1", "b")],
        },
        Case {
            name: "spills to the next node when full",
            nodes: vec![node("a", 4, 8000), node("b", 4, 8000)],
            existing: vec![],
            job: job(
                Strategy::Binpack,
                vec![task("t1", 3, 100), task("t2", 3, 100)],
            ),
            want: &[("t1", "a"), ("t2", "b")],
        },
        Case {
            name: "the fuller of two used nodes wins",
            nodes: vec![node("a", 8, 8000), node("b", 8, 8000)],
            existing: vec![existing("a", 1, 1000), existing("b", 4, 4000)],
            job: job(Strategy::Binpack, vec![task("t1", 1, 100)]),
            want: &[("t1", "b")],
        },
        Case {
            name: "largest task first so it still finds room",
            nodes: vec![node("a", 4, 8000), node("b", 2, 8000)],
            existing: vec![],
            // In manifest order the small tasks would fill `a` and leave the 4-core task stranded.
            job: job(
                Strategy::Binpack,
                vec![
                    task("small1", 1, 100),
                    task("small2", 1, 100),
                    task("big", 4, 100),
                ],
            ),
            want: &[("big", "a"), ("small1", "b"), ("small2", "b")],
        },
        Case {
            name: "ties break by node name",
            nodes: vec![node("c", 4, 4000), node("a", 4, 4000), node("b", 4, 4000)],
            existing: vec![],
            job: job(Strategy::Binpack, vec![task("t1", 1, 100)]),
            want: &[("t1", "a")],
        },
    ]);
}

#[test]
fn spread_cases() {
    run(vec![
        Case {
            name: "one task per node",
            nodes: vec![node("a", 8, 8000), node("b", 8, 8000), node("c", 8, 8000)],
            existing: vec![],
            job: job(
                Strategy::Spread,
                vec![task("t1", 1, 100), task("t2", 1, 100), task("t3", 1, 100)],
            ),
            want: &[("t1", "a"), ("t2", "b"), ("t3", "c")],
        },
        Case {
            name: "spread ignores raw node power",
            nodes: vec![node("big", 128, 512_000), node("small", 2, 2000)],
            existing: vec![],
            job: job(
                Strategy::Spread,
                vec![task("t1", 1, 100), task("t2", 1, 100)],
            ),
            want: &[("t1", "big"), ("t2", "small")],
        },
        Case {
            name: "the least used node first",
            nodes: vec![node("a", 8, 8000), node("b", 8, 8000)],
            existing: vec![existing("a", 6, 6000)],
            job: job(Strategy::Spread, vec![task("t1", 1, 100)]),
            want: &[("t1", "b")],
        },
        Case {
            name: "stacks only when every node has one",
            nodes: vec![node("a", 8, 8000), node("b", 8, 8000)],
            existing: vec![],
            job: job(
                Strategy::Spread,
                vec![task("t1", 1, 100), task("t2", 1, 100), task("t3", 2, 100)],
            ),
            want: &[("t1", "b"), ("t2", "b"), ("t3", "a")],
        },
    ]);
}

#[test]
fn feasibility_cases() {
    let mut cordoned = node("a", 64, 64_000);
    cordoned.eligible = false;
    let mut linux = node("l", 4, 4000);
    linux.attributes.insert("os".into(), "linux".into());
    let mut docker = node("d", 4, 4000);
    docker.runtime_drivers = vec!["host_local".into(), "docker_worker".into()];
    let mut data = node("v", 4, 4000);
    data.host_paths = vec!["/srv".into()];
    let mut profiled = node("p", 4, 4000);
    profiled.execution_profiles = vec!["gpu-large".into()];
    let mut limited = node("lim", 8, 8000);
    limited.limits = Some(AdmissionLimits {
        cpu_percent: 25,
        ..AdmissionLimits::default()
    });

    let mut constrained = task("t1", 1, 100);
    constrained.constraints = vec![constraint(json!({"attribute": "os", "value": "linux"}))];
    let mut with_profile = task("t1", 1, 100);
    with_profile.execution_profile = Some("gpu-large".into());
    let mut job_wide = job(Strategy::Binpack, vec![task("t1", 1, 100)]);
    job_wide.constraints = vec![constraint(json!({"attribute": "os", "value": "linux"}))];

    run(vec![
        Case {
            name: "cordoned and draining nodes take nothing",
            nodes: vec![
                cordoned.clone(),
                status(node("b", 64, 64_000), NodeStatus::Draining),
                node("c", 2, 2000),
            ],
            existing: vec![],
            job: job(Strategy::Binpack, vec![task("t1", 1, 100)]),
            want: &[("t1", "c")],
        },
        Case {
            name: "joining nodes are schedulable",
            nodes: vec![
                status(node("a", 4, 4000), NodeStatus::Joining),
                status(node("b", 4, 4000), NodeStatus::Offline),
            ],
            existing: vec![],
            job: job(Strategy::Binpack, vec![task("t1", 1, 100)]),
            want: &[("t1", "a")],
        },
        Case {
            name: "task constraint",
            nodes: vec![node("a", 4, 4000), linux.clone()],
            existing: vec![],
            job: job(Strategy::Binpack, vec![constrained]),
            want: &[("t1", "l")],
        },
        Case {
            name: "job-wide constraint",
            nodes: vec![node("a", 4, 4000), linux.clone()],
            existing: vec![],
            job: job_wide,
            want: &[("t1", "l")],
        },
        Case {
            name: "runtime driver",
            nodes: vec![node("a", 4, 4000), docker],
            existing: vec![],
            job: job(
                Strategy::Binpack,
                vec![task_json("t1", json!({"runtime_driver": "docker_worker"}))],
            ),
            want: &[("t1", "d")],
        },
        Case {
            name: "volume source under a host path",
            nodes: vec![node("a", 4, 4000), data],
            existing: vec![],
            job: job(
                Strategy::Binpack,
                vec![task_json(
                    "t1",
                    json!({"volumes": [{"name": "d", "source": "/srv/models", "target": "/m"}]}),
                )],
            ),
            want: &[("t1", "v")],
        },
        Case {
            name: "execution profile",
            nodes: vec![node("a", 4, 4000), profiled],
            existing: vec![],
            job: job(Strategy::Binpack, vec![with_profile]),
            want: &[("t1", "p")],
        },
        Case {
            name: "admission limits shrink capacity",
            nodes: vec![limited, node("z", 4, 8000)],
            existing: vec![],
            job: job(Strategy::Binpack, vec![task("t1", 3, 100)]),
            want: &[("t1", "z")],
        },
        Case {
            name: "existing allocations count against capacity",
            nodes: vec![node("a", 4, 4000), node("b", 4, 4000)],
            existing: vec![existing("a", 3, 100)],
            job: job(Strategy::Binpack, vec![task("t1", 2, 100)]),
            want: &[("t1", "b")],
        },
        Case {
            name: "allocations on unknown nodes are ignored",
            nodes: vec![node("a", 4, 4000)],
            existing: vec![existing("gone", 3, 100)],
            job: job(Strategy::Binpack, vec![task("t1", 4, 100)]),
            want: &[("t1", "a")],
        },
    ]);
}

#[test]
fn devices_are_allocated_by_id_and_never_twice() {
    let nodes = vec![
        with_gpus(
            node("a", 16, 64_000),
            vec![gpu("a0", 16_000, &["cuda"]), gpu("a1", 40_000, &["cuda"])],
        ),
        with_gpus(node("b", 16, 64_000), vec![gpu("b0", 80_000, &["cuda"])]),
    ];
    let tasks = vec![
        task_json(
            "small",
            json!({"devices": [{"type": "gpu", "min_memory_mb": 8000}]}),
        ),
        task_json(
            "large",
            json!({"devices": [{"type": "gpu", "min_memory_mb": 60000}]}),
        ),
        task_json("mid", json!({"gpus": 1})),
    ];
    let p = plan(&nodes, &[], &job(Strategy::Binpack, tasks)).expect("fits");
    let by_agent = |id: &str| {
        p.allocations
            .iter()
            .find(|a| a.agent_id == id)
            .expect("placed")
            .clone()
    };
    assert_eq!(
        (
            by_agent("large").node.as_str(),
            by_agent("large").device_ids.clone()
        ),
        ("b", vec!["b0".to_string()])
    );
    let mut a_ids: Vec<String> = ["small", "mid"]
        .iter()
        .flat_map(|t| by_agent(t).device_ids)
        .collect();
    a_ids.sort();
    assert_eq!(a_ids, vec!["a0", "a1"], "both GPUs of a used, each once");
    assert_eq!(p.requirements.gpu_count, 3);

    let taken = vec![Allocation {
        node: "b".into(),
        device_ids: vec!["b0".into()],
        gpus: 1,
        ..Allocation::default()
    }];
    let err = plan(
        &nodes,
        &taken,
        &job(
            Strategy::Binpack,
            vec![task_json(
                "large",
                json!({"devices": [{"type": "gpu", "min_memory_mb": 60000}]}),
            )],
        ),
    );
    assert!(
        err.is_err(),
        "a device held by an existing allocation is not handed out again"
    );
}

#[test]
fn ports_conflict_with_existing_allocations() {
    let nodes = vec![node("a", 8, 8000), node("b", 8, 8000)];
    let holder = Allocation {
        node: "a".into(),
        ports: vec![crate::domain::scheduler::PlannedPort {
            label: "http".into(),
            port: 8080,
            protocol: "tcp".into(),
        }],
        ..Allocation::default()
    };
    let t = || task_json("web", json!({"ports": [{"label": "http", "port": 8080}]}));
    let p = plan(&nodes, &[holder], &job(Strategy::Binpack, vec![t()])).expect("fits");
    assert_eq!(placements(&p), pairs(&[("web", "b")]));
    let mut two = job(Strategy::Binpack, vec![t(), t()]);
    two.tasks[1].agent_id = "web2".into();
    let p = plan(&nodes, &[], &two).expect("fits");
    assert_eq!(
        placements(&p),
        pairs(&[("web", "a"), ("web2", "b")]),
        "same port twice on one node is refused"
    );
}

#[test]
fn preferred_node_wins_when_feasible_and_falls_back_otherwise() {
    let nodes = vec![node("a", 8, 8000), node("b", 2, 2000)];
    let mut t = task("t1", 1, 100);
    t.preferred_nodes = vec!["b".into()];
    let p = plan(&nodes, &[], &job(Strategy::Spread, vec![t.clone()])).expect("fits");
    assert_eq!(
        (
            p.allocations[0].node.as_str(),
            p.allocations[0].preferred_node_status.as_deref()
        ),
        ("b", Some("honored"))
    );
    t.demand.cpu_millis = 4000;
    let p = plan(&nodes, &[], &job(Strategy::Spread, vec![t])).expect("fits");
    assert_eq!(
        (
            p.allocations[0].node.as_str(),
            p.allocations[0].preferred_node_status.as_deref()
        ),
        ("a", Some("fallback"))
    );
}

#[test]
fn distinct_hosts_keeps_tasks_apart_even_under_binpack() {
    let nodes = vec![node("a", 8, 8000), node("b", 8, 8000)];
    let mut j = job(
        Strategy::Binpack,
        vec![task("t1", 1, 100), task("t2", 1, 100)],
    );
    j.constraints = vec![constraint(json!({"operator": "distinct_hosts"}))];
    let p = plan(&nodes, &[], &j).expect("fits");
    assert_eq!(placements(&p), pairs(&[("t1", "a"), ("t2", "b")]));
    j.tasks.push(task("t3", 1, 100));
    let err = plan(&nodes, &[], &j).expect_err("only two hosts");
    assert!(err.to_string().contains("distinct_hosts"), "{err}");
}

#[test]
fn the_plan_serialises_in_the_persisted_shape() {
    let p = plan(
        &[node("a", 4, 4000)],
        &[],
        &job(Strategy::Binpack, vec![task("t1", 1, 512)]),
    )
    .expect("fits");
    let v = serde_json::to_value(&p).expect("plain data");
    assert_eq!(v["status"], "planned");
    assert_eq!(v["strategy"], "binpack");
    assert_eq!(v["job_type"], "batch");
    assert_eq!(v["placement_count"], 1);
    assert_eq!(
        v["requirements"],
        json!({"cpu_millis": 1000, "memory_mb": 512, "disk_mb": 0, "gpu_count": 0})
    );
    assert_eq!(v["placements"][0]["node"], "a");
    let back: crate::domain::scheduler::Plan = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, p);
}

#[test]
fn empty_and_unschedulable_clusters() {
    let j = job(Strategy::Binpack, vec![task("t1", 1, 100)]);
    assert_eq!(plan(&[], &[], &j), Err(PlacementError::NoNodes));
    let err =
        plan(&[status(node("a", 4, 4000), NodeStatus::Offline)], &[], &j).expect_err("offline");
    assert_eq!(
        err.to_string(),
        "no schedulable runtime nodes are available (a: status \"offline\")"
    );
}

#[test]
fn a_job_of_only_built_in_agents_needs_no_node() {
    let p = plan(&[], &[], &job(Strategy::Binpack, vec![])).expect("nothing to place");
    assert_eq!((p.placement_count, p.allocations.len()), (0, 0));
}

#[test]
fn required_services_must_pass_on_the_node() {
    use crate::domain::scheduler::{ServiceInstance, ServiceRequirement};
    let mut with_llm = node("b", 4, 4000);
    with_llm.services = vec![ServiceInstance {
        name: "llm".into(),
        tags: vec!["gpu".into()],
        origin: None,
    }];
    let nodes = vec![node("a", 4, 4000), with_llm];
    let mut t = task("t1", 1, 100);
    t.requires_services = ServiceRequirement::parse_list(&json!(["llm"]), "r").expect("valid");
    let p = plan(&nodes, &[], &job(Strategy::Binpack, vec![t.clone()])).expect("b runs llm");
    assert_eq!(placements(&p), pairs(&[("t1", "b")]));
    t.requires_services =
        ServiceRequirement::parse_list(&json!([{"name": "llm", "tags": ["gpu", "fp8"]}]), "r")
            .expect("valid");
    let err = plan(&nodes, &[], &job(Strategy::Binpack, vec![t])).expect_err("tag missing");
    assert_eq!(
        err.to_string(),
        "agent t1 needs a passing llm service on its node; no candidate node runs a passing llm instance: start one there (service llm filtered 2 nodes)"
    );
}

#[test]
fn required_service_shapes() {
    use crate::domain::scheduler::ServiceRequirement;
    let cases: &[(serde_json::Value, &[&str])] = &[
        (
            json!(["a", {"name": "b"}, {"name": "c", "required": false}]),
            &["a", "b"],
        ),
        (json!({"name": "solo", "tags": ["x"]}), &["solo"]),
        (
            json!({"db": {"tags": ["primary"]}, "cache": {}}),
            &["cache", "db"],
        ),
    ];
    for (v, want) in cases {
        let got: Vec<String> = ServiceRequirement::parse_list(v, "r")
            .expect("valid")
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(got, *want, "case {v}");
    }
    let err = ServiceRequirement::parse_list(&json!([{"tags": []}]), "nodes[1].requires_services")
        .expect_err("no name");
    assert_eq!(
        err.to_string(),
        "nodes[1].requires_services[0].name: name must be a service name"
    );
}
