//! given(events) / when(command) / then(events | error) tests of the job decider.

use serde_json::json;

use super::*;
use crate::domain::event::{EventEnvelope, JobEvent, SCHEMA_VERSION};

fn envelopes(events: Vec<JobEvent>) -> Vec<EventEnvelope> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, payload)| EventEnvelope {
            event_id: format!("e{i}"),
            job_id: "job".into(),
            seq: i as u64 + 1,
            event_type: payload.type_name().into(),
            schema_version: SCHEMA_VERSION,
            timestamp_ms: 1000 + i as i64,
            epoch: 0,
            causation_id: None,
            correlation_id: None,
            payload,
        })
        .collect()
}

struct Spec {
    state: JobState,
}

fn given(events: Vec<JobEvent>) -> Spec {
    Spec {
        state: fold("job", &envelopes(events)),
    }
}

impl Spec {
    fn when(self, command: JobCommand) -> Result<Vec<JobEvent>, DomainError> {
        decide(&self.state, &command)
    }
}

fn submitted() -> JobEvent {
    let cmd = JobCommand::Submit {
        graph_id: "g".into(),
        job_name: "n".into(),
        manifest: json!({}),
        bundle_path: None,
        bundle_digest: None,
        deployment: None,
        now_ms: 7,
    };
    decide(&JobState::new("job"), &cmd).unwrap().remove(0)
}

#[test]
fn submit_creates_a_pending_job() {
    let events = given(vec![]).when(JobCommand::Submit {
        graph_id: "g".into(),
        job_name: "n".into(),
        manifest: json!({"a": 1}),
        bundle_path: Some("/b".into()),
        bundle_digest: None,
        deployment: None,
        now_ms: 7,
    });
    let state = fold("job", &envelopes(events.unwrap()));
    assert_eq!(state.status, Some(JobStatus::Pending));
    assert_eq!(state.graph_id, "g");
    assert_eq!(state.submitted_at_ms, 7);
}

#[test]
fn submit_twice_is_refused() {
    let cmd = JobCommand::Submit {
        graph_id: "g".into(),
        job_name: "n".into(),
        manifest: json!({}),
        bundle_path: None,
        bundle_digest: None,
        deployment: None,
        now_ms: 1,
    };
    assert_eq!(
        given(vec![submitted()]).when(cmd),
        Err(DomainError::AlreadyExists)
    );
}

#[test]
fn commands_on_a_missing_job_are_not_found() {
    assert_eq!(
        given(vec![]).when(JobCommand::Resume),
        Err(DomainError::NotFound)
    );
}

#[test]
fn start_queues_seeds_after_the_transition() {
    let events = given(vec![submitted()]).when(JobCommand::Start).unwrap();
    assert_eq!(events, vec![JobEvent::JobStarted]);
}

#[test]
fn pause_only_from_running() {
    let then = given(vec![submitted()]).when(JobCommand::Pause { reason: None });
    assert_eq!(
        then,
        Err(DomainError::WrongStatus {
            action: "pause",
            status: JobStatus::Pending
        })
    );
    let then =
        given(vec![submitted(), JobEvent::JobStarted]).when(JobCommand::Pause { reason: None });
    assert_eq!(then, Ok(vec![JobEvent::JobPaused { reason: None }]));
}

#[test]
fn resume_of_a_running_job_is_a_no_op() {
    let then = given(vec![submitted(), JobEvent::JobStarted]).when(JobCommand::Resume);
    assert_eq!(then, Ok(vec![]));
}

#[test]
fn nothing_changes_a_terminal_job() {
    let done = vec![
        submitted(),
        JobEvent::JobStarted,
        JobEvent::JobCompleted { result: json!(1) },
    ];
    for cmd in [
        JobCommand::Pause { reason: None },
        JobCommand::Resume,
        JobCommand::Cancel { reason: "x".into() },
        JobCommand::Complete { result: json!(2) },
        JobCommand::Fail { result: json!(3) },
    ] {
        let then = given(done.clone()).when(cmd.clone());
        assert!(
            matches!(
                then,
                Err(DomainError::WrongStatus {
                    status: JobStatus::Completed,
                    ..
                })
            ),
            "{} on a completed job gave {then:?}",
            cmd.name()
        );
    }
}

#[test]
fn cancel_records_the_reason_as_result() {
    let events = vec![
        submitted(),
        JobEvent::JobStarted,
        JobEvent::JobCancelled {
            reason: "op".into(),
        },
    ];
    let state = fold("job", &envelopes(events));
    assert_eq!(state.status, Some(JobStatus::Cancelled));
    assert_eq!(state.result, Some(json!({"reason": "op"})));
}

#[test]
fn lease_epochs_only_move_forward() {
    let base = vec![
        submitted(),
        JobEvent::LeaseAcquired {
            owner: "a".into(),
            epoch: 3,
            local_run: false,
        },
    ];
    let then = given(base.clone()).when(JobCommand::AcquireLease {
        owner: "b".into(),
        epoch: 3,
        local_run: false,
    });
    assert_eq!(
        then,
        Err(DomainError::StaleLease {
            offered: 3,
            recorded: 3
        })
    );
    let then = given(base).when(JobCommand::AcquireLease {
        owner: "b".into(),
        epoch: 4,
        local_run: true,
    });
    assert_eq!(
        then,
        Ok(vec![JobEvent::LeaseAcquired {
            owner: "b".into(),
            epoch: 4,
            local_run: true,
        }])
    );
}

#[test]
fn replaying_an_old_event_changes_nothing() {
    let history = envelopes(vec![submitted(), JobEvent::JobStarted]);
    let state = fold("job", &history);
    let again = evolve(state.clone(), &history[0]);
    assert_eq!(again, state);
}

fn a_plan(node: &str) -> serde_json::Value {
    json!({
        "status": "planned", "job_id": "job", "job_type": "batch", "strategy": "binpack",
        "placement_count": 1,
        "requirements": {"cpu_millis": 500, "memory_mb": 0, "disk_mb": 0, "gpu_count": 1},
        "placements": [{"agent_id": "w", "node": node, "cpu_millis": 500, "memory_mb": 0,
                        "disk_mb": 0, "gpus": 1, "device_ids": ["0"]}],
    })
}

#[test]
fn a_plan_is_recorded_once_and_read_back_per_agent() {
    let plan = a_plan("gpu-box");
    let events = given(vec![submitted()])
        .when(JobCommand::RecordPlan {
            plan: plan.clone(),
            reason: None,
        })
        .unwrap();
    assert_eq!(
        events,
        vec![JobEvent::JobPlanned {
            plan: plan.clone(),
            reason: None
        }]
    );
    let spec = given(vec![submitted(), events[0].clone()]);
    assert_eq!(spec.state.planned_node("w"), Some("gpu-box"));
    assert_eq!(spec.state.planned_node("other"), None);
    // The same plan again is already so; a re-placement is a new fact.
    let same = spec.when(JobCommand::RecordPlan {
        plan: plan.clone(),
        reason: None,
    });
    assert_eq!(same.unwrap(), vec![]);
    let moved = given(vec![submitted(), events[0].clone()])
        .when(JobCommand::RecordPlan {
            plan: a_plan("other-box"),
            reason: Some("node gpu-box lost".into()),
        })
        .unwrap();
    assert_eq!(moved.len(), 1);
}

#[test]
fn a_blocked_placement_is_recorded_once_per_spell_and_a_plan_ends_the_spell() {
    let blocked = |reason: &str| JobCommand::RecordPlacementBlocked {
        reason: reason.into(),
        agent_id: None,
    };
    let first = given(vec![submitted()])
        .when(blocked("needs 1 gpu"))
        .unwrap();
    assert_eq!(
        first,
        vec![JobEvent::JobPlacementBlocked {
            reason: "needs 1 gpu".into(),
            agent_id: None
        }]
    );
    let spec = given(vec![submitted(), first[0].clone()]);
    assert_eq!(spec.state.placement_blocked.as_deref(), Some("needs 1 gpu"));
    assert_eq!(
        spec.when(blocked("needs 1 gpu, most free 0")).unwrap(),
        vec![]
    );
    let planned = JobEvent::JobPlanned {
        plan: a_plan("n"),
        reason: None,
    };
    let spec = given(vec![submitted(), first[0].clone(), planned]);
    assert_eq!(spec.state.placement_blocked, None);
    assert_eq!(spec.when(blocked("again")).unwrap().len(), 1);
}

#[test]
fn a_finished_job_is_neither_planned_nor_blocked() {
    let done = JobEvent::JobCancelled { reason: "x".into() };
    assert!(
        given(vec![submitted(), done.clone()])
            .when(JobCommand::RecordPlan {
                plan: a_plan("n"),
                reason: None
            })
            .is_err()
    );
    assert!(
        given(vec![submitted(), done])
            .when(JobCommand::RecordPlacementBlocked {
                reason: "r".into(),
                agent_id: None
            })
            .is_err()
    );
}

#[test]
fn start_counts_the_inputs_the_fold_rebuilds() {
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "g", "entrypoints": ["a", "b", "c"],
        "initial_inputs": {"a": [{"i": 1}, {"i": 2}], "c": []},
        "nodes": [
            {"node_id": "a", "agent_type": "router", "config": {"emit_type": "x"}},
            {"node_id": "b", "agent_type": "router", "config": {"emit_type": "x"}},
            {"node_id": "c", "agent_type": "router", "config": {"emit_type": "x"}}
        ],
        "edges": []
    });
    let parsed = crate::domain::manifest::parse_manifest(&manifest).expect("valid manifest");
    let submit = JobCommand::Submit {
        graph_id: "g".into(),
        job_name: "g".into(),
        manifest: parsed.to_value(),
        bundle_path: None,
        bundle_digest: None,
        deployment: None,
        now_ms: 1,
    };
    let submitted = decide(&JobState::new("job"), &submit).unwrap().remove(0);
    let started = given(vec![submitted.clone()])
        .when(JobCommand::Start)
        .unwrap();
    let counts = match &started[..] {
        [JobEvent::JobStarted, JobEvent::InputsQueued { counts }] => counts.clone(),
        other => panic!("unexpected {other:?}"),
    };
    // `a` has two inputs, `b` none listed (one empty input), `c` an empty list (none).
    assert_eq!(counts, [("a".to_string(), 2), ("b".to_string(), 1)].into());
    let mut history = vec![submitted];
    history.extend(started);
    let state = given(history).state;
    assert_eq!(state.agents["a"].queue.len(), 2);
    assert_eq!(state.agents["b"].queue.len(), 1);
    assert!(state.agents.get("c").is_none_or(|c| c.queue.is_empty()));
    assert_eq!(state.agents["a"].queue[1].body, json!({"i": 2}));
}

mod services {
    use super::*;
    use crate::domain::service::{Health, HealthStatus, Registration, ServiceRecord, ServiceSpec};

    fn instance(name: &str, node: &str) -> ServiceRecord {
        ServiceRecord::new(
            ServiceSpec::named(name),
            &Registration {
                job_id: "job".into(),
                node: Some(node.into()),
                ..Registration::default()
            },
        )
    }

    fn registered(name: &str, node: &str) -> JobEvent {
        JobEvent::ServiceRegistered {
            instance: instance(name, node),
        }
    }

    fn health(status: HealthStatus) -> Health {
        Health {
            status,
            checks: vec![],
        }
    }

    #[test]
    fn registering_twice_records_once_and_a_move_registers_again() {
        let spec = given(vec![
            submitted(),
            JobEvent::JobStarted,
            registered("api", "a"),
        ]);
        let same = JobCommand::RegisterServices {
            instances: vec![instance("api", "a")],
        };
        assert_eq!(spec.when(same), Ok(vec![]));
        let spec = given(vec![
            submitted(),
            JobEvent::JobStarted,
            registered("api", "a"),
        ]);
        let moved = JobCommand::RegisterServices {
            instances: vec![instance("api", "b")],
        };
        assert_eq!(
            spec.when(moved),
            Ok(vec![
                JobEvent::ServiceDeregistered {
                    service_id: "job:job:api".into(),
                    service_name: "api".into(),
                    reason: "agent_moved".into(),
                },
                registered("api", "b"),
            ])
        );
    }

    #[test]
    fn health_is_recorded_only_when_the_status_changes() {
        let history = || vec![submitted(), JobEvent::JobStarted, registered("api", "a")];
        let id = instance("api", "a").id;
        let same = JobCommand::RecordServiceHealth {
            service_id: id.clone(),
            health: health(HealthStatus::Passing),
        };
        assert_eq!(given(history()).when(same), Ok(vec![]));
        let worse = JobCommand::RecordServiceHealth {
            service_id: id.clone(),
            health: health(HealthStatus::Critical),
        };
        assert_eq!(
            given(history()).when(worse),
            Ok(vec![JobEvent::ServiceHealthChanged {
                service_id: id,
                service_name: "api".into(),
                status: HealthStatus::Critical,
                previous_status: HealthStatus::Passing,
                health: health(HealthStatus::Critical),
            }])
        );
    }

    #[test]
    fn a_job_that_ends_deregisters_its_services_before_the_terminal_event() {
        let events = given(vec![
            submitted(),
            JobEvent::JobStarted,
            registered("api", "a"),
        ])
        .when(JobCommand::Cancel {
            reason: "stop".into(),
        })
        .expect("a running job can be cancelled");
        assert_eq!(
            events,
            vec![
                JobEvent::ServiceDeregistered {
                    service_id: "job:job:api".into(),
                    service_name: "api".into(),
                    reason: "job_ended".into(),
                },
                JobEvent::JobCancelled {
                    reason: "stop".into()
                },
            ]
        );
        let state = fold(
            "job",
            &envelopes(
                [
                    vec![submitted(), JobEvent::JobStarted, registered("api", "a")],
                    events,
                ]
                .concat(),
            ),
        );
        assert!(state.services.is_empty());
    }
}
