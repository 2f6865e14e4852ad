//! What runs next (`next_actions`) and how a batch's health is judged (`batch_health`).

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::domain::job::{DeploymentRecord, JobDeployment, JobStatus};
use crate::domain::service::{HealthStatus, Registration, ServiceRecord, ServiceSpec};
use crate::domain::view::{AgentView, JobView};

fn update() -> Value {
    json!({"max_parallel": 1, "min_healthy_ms": 100})
}

#[test]
fn a_new_rollout_starts_its_whole_job_then_judges_it() {
    let mut g = given(vec![]);
    g.run(deploy(target(1, T0), service([1, 1, 1], update())));
    let start = match next_actions(&g.state).as_slice() {
        [Action::StartBatch(b), Action::Tick] => b.clone(),
        other => panic!("{other:?}"),
    };
    assert!(start.whole_job);
    assert_eq!((start.index, start.job_id.as_str()), (0, "job-1"));
    assert_eq!((start.version, start.role), (Version(1), Role::Primary));
    g.run(DeploymentCommand::BatchStarted {
        index: 0,
        now_ms: T0 + 1,
    });
    match next_actions(&g.state).as_slice() {
        [Action::CheckHealth(p), Action::Tick] => {
            assert_eq!((p.index, p.started_at_ms, p.whole_job), (0, T0 + 1, true))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_in_place_batch_names_its_agents_and_a_success_promotes_them() {
    let mut g = deployed([1, 1, 1], update());
    g.run(deploy(target(2, T0 + 100), service([2, 1, 1], update())));
    match next_actions(&g.state).as_slice() {
        [Action::StartBatch(b), Action::Tick] => {
            assert!(!b.whole_job);
            assert_eq!(
                (b.job_id.as_str(), b.agents.as_slice()),
                ("job-1", ["a".to_string()].as_slice())
            );
        }
        other => panic!("{other:?}"),
    }
    g.roll_batch(T0 + 200);
    assert_eq!(g.status(), Some(DeploymentStatus::Successful));
    assert_eq!(
        next_actions(&g.state),
        [Action::PromoteAgents {
            job_id: "job-1".into(),
            version: Version(2)
        }]
    );
}

#[test]
fn a_finished_blue_green_retires_the_old_job_and_waiting_keys_have_nothing_to_do() {
    let mut g = deployed([1, 1, 1], update());
    let mut wider = service([1, 1, 1], json!({"canary": 1, "min_healthy_ms": 100}));
    wider.edges.retain(|e| e.to_node != "c");
    g.run(deploy(target(2, T0 + 100), wider));
    g.roll_batch(T0 + 200);
    assert_eq!(g.status(), Some(DeploymentStatus::AwaitingPromotion));
    assert!(next_actions(&g.state).is_empty(), "an operator decides");
    g.run(DeploymentCommand::Promote { now_ms: T0 + 500 });
    let actions = next_actions(&g.state);
    assert!(actions.contains(&Action::CancelJob {
        job_id: "job-1".into(),
        reason: "replaced by version 2 of deployment shop".into()
    }));
    assert!(actions.contains(&Action::PromoteAgents {
        job_id: "job-2".into(),
        version: Version(2)
    }));
}

fn probe(
    agents: &[&str],
    whole_job: bool,
    mode: crate::domain::policy::HealthCheck,
) -> HealthProbe {
    HealthProbe {
        index: 0,
        job_id: "job-1".into(),
        version: Version(2),
        agents: agents.iter().map(|a| a.to_string()).collect(),
        whole_job,
        started_at_ms: 1_000,
        mode,
    }
}

fn at_version(version: u64) -> JobDeployment {
    JobDeployment {
        deployment_id: "dep".into(),
        deployment_key: "shop".into(),
        version: Version(version),
        role: Role::Primary,
        phase: None,
    }
}

/// A running job whose agent `a` was replaced by version 2 and provides `web` in `status`.
fn job(status: HealthStatus) -> JobView {
    let mut instance = ServiceRecord::new(
        ServiceSpec::named("web"),
        &Registration {
            job_id: "job-1".into(),
            agent_id: Some("a".into()),
            deployment: Some(at_version(2)),
            ..Registration::default()
        },
    );
    instance.status = status;
    JobView {
        status: Some(JobStatus::Running),
        services: BTreeMap::from([(instance.id.clone(), instance)]),
        deployment: DeploymentRecord {
            job: Some(at_version(1)),
            agents: BTreeMap::from([("a".to_string(), at_version(2))]),
            bundles: BTreeMap::new(),
            generation: 1,
        },
        ..JobView::default()
    }
}

fn with_service() -> Manifest {
    let mut m = service([2, 1, 1], update());
    m.nodes[0].services = vec![ServiceSpec::named("web")];
    m
}

#[test]
fn checks_decide_when_the_batch_declares_services() {
    use crate::domain::policy::HealthCheck::Checks;
    let m = with_service();
    assert_eq!(
        batch_health(
            &probe(&["a"], false, Checks),
            Some(&job(HealthStatus::Passing)),
            &[],
            Some(&m)
        ),
        Ok(())
    );
    let critical = batch_health(
        &probe(&["a"], false, Checks),
        Some(&job(HealthStatus::Critical)),
        &[],
        Some(&m),
    );
    assert!(critical.expect_err("critical").contains("service web"));
    let not_yet = batch_health(
        &probe(&["b"], false, Checks),
        Some(&job(HealthStatus::Passing)),
        &[],
        Some(&m),
    );
    assert!(
        not_yet
            .expect_err("b not replaced")
            .contains("not in place")
    );
    assert!(batch_health(&probe(&["a"], false, Checks), None, &[], Some(&m)).is_err());
}

#[test]
fn agent_states_see_errors_since_the_batch_started() {
    use crate::domain::policy::HealthCheck::AgentStates;
    let m = with_service();
    let row = |status: &str, at: i64| AgentView {
        agent_id: "a".into(),
        status: status.into(),
        last_error: Some(json!("boom")),
        updated_at_ms: at,
        ..AgentView::default()
    };
    let p = probe(&["a"], false, AgentStates);
    let critical = job(HealthStatus::Critical);
    assert_eq!(
        batch_health(&p, Some(&critical), &[row("idle", 2_000)], Some(&m)),
        Ok(()),
        "checks not asked for"
    );
    assert_eq!(
        batch_health(&p, Some(&critical), &[row("error", 500)], Some(&m)),
        Ok(()),
        "an old error"
    );
    let failed = batch_health(&p, Some(&critical), &[row("error", 2_000)], Some(&m));
    assert!(failed.expect_err("failed").contains("agent a failed"));
    let mut ended = job(HealthStatus::Passing);
    ended.status = Some(JobStatus::Failed);
    assert!(
        batch_health(&p, Some(&ended), &[], Some(&m))
            .expect_err("ended")
            .contains("failed")
    );
}
