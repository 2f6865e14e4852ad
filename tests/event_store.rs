//! The fenced, optimistic append against a real Redis.

mod common;

use std::collections::HashSet;

use mirror_neuron::domain::event::{JobEvent, JobSubmitted};
use mirror_neuron::domain::job::{JobCommand, JobStatus};
use mirror_neuron::runtime::commands;
use mirror_neuron::store::{AppendError, AppendOutcome, LeaseGrant, Store, seal};
use serde_json::json;

fn submitted(job: &str) -> JobEvent {
    JobEvent::JobSubmitted(JobSubmitted {
        graph_id: "g".into(),
        job_name: job.into(),
        manifest: json!({"nodes": []}),
        bundle_path: None,
        bundle_digest: None,
        deployment: None,
        submitted_at_ms: 1,
    })
}

async fn create(store: &Store, job: &str) {
    let env = seal(job, 0, 0, 1, None, None, vec![submitted(job)]);
    store.append(job, 0, 0, &env).await.expect("create job");
}

fn note(i: u64) -> JobEvent {
    JobEvent::AgentEventRecorded {
        agent_id: "a".into(),
        name: "n".into(),
        payload: json!(i),
    }
}

#[tokio::test]
async fn appends_are_numbered_from_one_and_read_back_identically() {
    let store = common::store().await;
    create(&store, "j1").await;
    let batch = seal(
        "j1",
        1,
        0,
        5,
        Some("cause"),
        Some("corr"),
        vec![note(1), note(2)],
    );
    let out = store.append("j1", 1, 0, &batch).await.unwrap();
    assert_eq!(out, AppendOutcome::Appended { first: 2, last: 3 });
    let history = store.history("j1", 1, None).await.unwrap();
    let seqs: Vec<u64> = history.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(history[1].event.as_ref().unwrap(), &batch[0]);
    assert_eq!(store.version("j1").await.unwrap(), 3);
    assert_eq!(store.version("missing").await.unwrap(), 0);
}

#[tokio::test]
async fn fenced_append_rejects_a_stale_epoch() {
    let store = common::store().await;
    create(&store, "j").await;
    let LeaseGrant::Granted { epoch: e1 } =
        store.acquire_job_lease("j", "node-a", 100).await.unwrap()
    else {
        panic!("lease should be free")
    };
    assert_eq!(e1, 1);
    // The pre-lease writer (epoch 0) is now fenced off.
    let stale = seal("j", 1, 0, 2, None, None, vec![note(0)]);
    match store.append("j", 1, 0, &stale).await {
        Err(AppendError::StaleEpoch {
            writer: 0,
            current: 1,
        }) => {}
        other => panic!("expected StaleEpoch, got {other:?}"),
    }
    // Another node cannot take a live lease...
    assert_eq!(
        store.acquire_job_lease("j", "node-b", 100).await.unwrap(),
        LeaseGrant::HeldBy {
            owner: "node-a".into()
        }
    );
    // ...but can once it expired, with a new epoch; node-a's writes then fail.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(
        store.acquire_job_lease("j", "node-b", 5000).await.unwrap(),
        LeaseGrant::Granted { epoch: 2 }
    );
    let late = seal("j", 1, e1, 3, None, None, vec![note(1)]);
    match store.append("j", 1, e1, &late).await {
        Err(AppendError::StaleEpoch {
            writer: 1,
            current: 2,
        }) => {}
        other => panic!("expected StaleEpoch, got {other:?}"),
    }
    assert!(
        !store
            .renew_job_lease("j", "node-a", e1, 1000)
            .await
            .unwrap()
    );
    let fresh = seal("j", 1, 2, 4, None, None, vec![note(2)]);
    assert!(store.append("j", 1, 2, &fresh).await.is_ok());
    // An epoch that was never issued is a caller bug, reported as such.
    let future = seal("j", 2, 9, 5, None, None, vec![note(3)]);
    assert!(matches!(
        store.append("j", 2, 9, &future).await,
        Err(AppendError::FutureEpoch {
            writer: 9,
            current: 2
        })
    ));
    assert_eq!(
        store.version("j").await.unwrap(),
        2,
        "no rejected write reached the history"
    );
}

#[tokio::test]
async fn concurrent_appends_with_the_same_expected_version_have_one_winner() {
    let store = common::store().await;
    create(&store, "race").await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch = seal("race", 1, 0, 2, None, None, vec![note(i)]);
            store.append("race", 1, 0, &batch).await
        }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(AppendOutcome::Appended { first: 2, last: 2 }) => wins += 1,
            Err(AppendError::Conflict {
                expected: 1,
                actual: 2,
            }) => conflicts += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((wins, conflicts), (1, 15));
}

#[tokio::test]
async fn sequences_stay_gapless_under_concurrent_writers() {
    let store = common::store().await;
    create(&store, "busy").await;
    let writers = 8;
    let per_writer = 40;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < per_writer {
                let v = store.version("busy").await.unwrap();
                let batch = seal("busy", v, 0, 1, None, None, vec![note(w * 1000 + done)]);
                match store.append("busy", v, 0, &batch).await {
                    Ok(_) => done += 1,
                    Err(AppendError::Conflict { .. }) => tokio::task::yield_now().await,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let history = store.history("busy", 1, None).await.unwrap();
    let total = 1 + writers * per_writer;
    assert_eq!(history.len() as u64, total);
    for (i, h) in history.iter().enumerate() {
        let env = h.event.as_ref().unwrap();
        assert_eq!(env.seq, i as u64 + 1, "gap or reorder at position {i}");
    }
    let ids: HashSet<_> = history
        .iter()
        .map(|h| h.event.as_ref().unwrap().event_id.clone())
        .collect();
    assert_eq!(ids.len() as u64, total, "every event id is unique");
    assert_eq!(
        store.feed_len().await.unwrap(),
        total,
        "the feed mirrors every event once"
    );
}

#[tokio::test]
async fn a_retried_batch_is_recognised_not_duplicated() {
    let store = common::store().await;
    create(&store, "retry").await;
    let batch = seal("retry", 1, 0, 2, None, None, vec![note(1), note(2)]);
    assert_eq!(
        store.append("retry", 1, 0, &batch).await.unwrap(),
        AppendOutcome::Appended { first: 2, last: 3 }
    );
    // The reply was "lost"; the writer sends the same batch again.
    assert_eq!(
        store.append("retry", 1, 0, &batch).await.unwrap(),
        AppendOutcome::AlreadyAppended { first: 2, last: 3 }
    );
    assert_eq!(store.version("retry").await.unwrap(), 3);
    // A different batch at the same position is a real conflict.
    let other = seal("retry", 1, 0, 2, None, None, vec![note(9)]);
    assert!(matches!(
        store.append("retry", 1, 0, &other).await,
        Err(AppendError::Conflict {
            expected: 1,
            actual: 3
        })
    ));
}

#[tokio::test]
async fn malformed_batches_are_refused_before_reaching_redis() {
    let store = common::store().await;
    let batch = seal("x", 5, 0, 1, None, None, vec![note(1)]);
    assert!(matches!(
        store.append("x", 0, 0, &batch).await,
        Err(AppendError::InvalidBatch(_))
    ));
    assert!(matches!(
        store.append("x", 0, 0, &[]).await,
        Err(AppendError::InvalidBatch(_))
    ));
}

#[tokio::test]
async fn commands_follow_the_decider_and_retry_on_conflict() {
    let store = common::store().await;
    let submit = JobCommand::Submit {
        graph_id: "g".into(),
        job_name: "n".into(),
        manifest: json!({}),
        bundle_path: None,
        bundle_digest: None,
        deployment: None,
        now_ms: 1,
    };
    commands::execute(&store, "cmd", &submit, None)
        .await
        .unwrap();
    let started = commands::execute(&store, "cmd", &JobCommand::Start, None)
        .await
        .unwrap();
    assert_eq!(started.state.status, Some(JobStatus::Running));
    // Concurrent pause + cancel: both are decided against fresh state; the loser retries.
    let (pause, cancel) = (
        JobCommand::Pause { reason: None },
        JobCommand::Cancel {
            reason: "stop".into(),
        },
    );
    let (a, b) = tokio::join!(
        commands::execute(&store, "cmd", &pause, None),
        commands::execute(&store, "cmd", &cancel, None),
    );
    let state = store.load_state("cmd").await.unwrap();
    assert_eq!(state.status, Some(JobStatus::Cancelled));
    assert!(b.is_ok());
    // Pause either won before cancel, or was refused after it: never both appended after.
    if let Err(e) = a {
        assert!(e.to_string().contains("cancelled"), "{e}");
    }
    let err = commands::execute(&store, "cmd", &JobCommand::Pause { reason: None }, None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "cannot pause a job that is cancelled");
    let missing = commands::execute(&store, "nope", &JobCommand::Resume, None)
        .await
        .unwrap_err();
    assert_eq!(missing.to_string(), "job was not found");
}
