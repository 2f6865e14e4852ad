//! Projection workers, rebuilds, dead-lettering of bad events, and feed retention.

mod common;

use std::sync::Arc;
use std::time::Duration;

/// The one feed shard of a single Redis.
const S0: mirror_neuron::store::Shard = mirror_neuron::store::Shard(0);

use mirror_neuron::domain::event::{EventEnvelope, JobEvent, JobSubmitted, SCHEMA_VERSION, encode};
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::domain::message::Message;
use mirror_neuron::runtime::projector::{self, PROJECTION_GROUP, ProjectorConfig, ProjectorStats};
use mirror_neuron::runtime::rebuild::{live_views, rebuild_all};
use mirror_neuron::runtime::{Projectors, wait_projections_caught_up};
use mirror_neuron::store::{JobListFilter, Store, seal};
use redis::AsyncCommands;
use serde_json::json;

fn msg(job: &str, id: &str, to: &str) -> Message {
    Message {
        message_id: id.into(),
        job_id: job.into(),
        from: "runtime".into(),
        to: to.into(),
        message_type: "init".into(),
        class: "command".into(),
        correlation_id: None,
        causation_id: None,
        content_type: "application/json".into(),
        content_encoding: "identity".into(),
        headers: Default::default(),
        body: json!({"n": id}),
        artifacts: vec![],
        stream: None,
        timestamp_ms: 0,
    }
}

/// A job history with lifecycle, messages, steps (one failing), a dead letter and an end.
fn script(job: &str, i: usize) -> Vec<JobEvent> {
    let mut ev = vec![
        JobEvent::JobSubmitted(JobSubmitted {
            graph_id: format!("g{}", i % 3),
            job_name: job.into(),
            manifest: json!({"nodes": [{"node_id": "a"}, {"node_id": "b"}]}),
            bundle_path: None,
            bundle_digest: None,
            deployment: None,
            submitted_at_ms: 1_000 + i as i64,
        }),
        JobEvent::JobStarted,
    ];
    for m in 0..4 {
        let id = format!("m{m}");
        let to = if m % 2 == 0 { "a" } else { "b" };
        ev.push(JobEvent::MessageSent {
            message: msg(job, &id, to),
        });
        ev.push(JobEvent::AgentStepStarted {
            agent_id: to.into(),
            message_id: id.clone(),
            attempt: 1,
            node: None,
        });
        if m == 3 {
            ev.push(JobEvent::AgentStepFailed {
                agent_id: to.into(),
                message_id: id.clone(),
                attempt: 1,
                error: json!("boom"),
                will_retry: true,
            });
            ev.push(JobEvent::AgentStepStarted {
                agent_id: to.into(),
                message_id: id.clone(),
                attempt: 2,
                node: None,
            });
        }
        ev.push(JobEvent::AgentStepFinished {
            agent_id: to.into(),
            message_id: id,
            state: Some(json!({"count": m})),
        });
    }
    ev.push(JobEvent::DeadLettered {
        agent_id: Some("b".into()),
        reason: "no route".into(),
        message: json!({"x": i}),
    });
    match i % 3 {
        0 => ev.push(JobEvent::JobCompleted {
            result: json!({"ok": i}),
        }),
        1 => ev.push(JobEvent::JobPaused { reason: None }),
        _ => {}
    }
    ev
}

/// Appends each job's script one event at a time (many small appends, like a live job).
async fn populate(store: &Store, jobs: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..jobs {
        let job = format!("job-{i}");
        for (n, event) in script(&job, i).into_iter().enumerate() {
            let batch = seal(
                &job,
                n as u64,
                0,
                10_000 + n as i64,
                None,
                None,
                vec![event],
            );
            store.append(&job, n as u64, 0, &batch).await.unwrap();
        }
        ids.push(job);
    }
    ids
}

async fn snapshot(store: &Store, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(format!("{:?}", live_views(store, id).await.unwrap()));
    }
    out
}

fn quick(consumer: &str) -> ProjectorConfig {
    let mut cfg = ProjectorConfig::new(consumer);
    cfg.block = Duration::from_millis(50);
    cfg.claim_idle = Duration::from_millis(100);
    cfg.batch = 7; // small batches so crashes land mid-job
    cfg
}

#[tokio::test]
async fn live_views_match_a_rebuild_from_history() {
    let store = common::store().await;
    let ids = populate(&store, 12).await;
    let workers = Projectors::start(&store, "node", 2);
    wait_projections_caught_up(&store, Duration::from_secs(20))
        .await
        .unwrap();
    workers.stop().await;

    let view = store.job_view("job-0").await.unwrap().unwrap();
    assert_eq!(view.status, Some(JobStatus::Completed));
    assert_eq!(
        (
            view.messages_sent,
            view.steps_finished,
            view.steps_failed,
            view.dead_letters
        ),
        (4, 4, 1, 1)
    );
    let agents = store.agent_views("job-0").await.unwrap();
    assert_eq!(agents.len(), 2);
    assert!(
        agents
            .iter()
            .all(|a| a.processed == 2 && a.queued == 0 && a.inflight_message_id.is_none())
    );
    assert_eq!(store.dead_letter_views("job-0").await.unwrap().len(), 1);
    let paused = store
        .list_jobs(&JobListFilter {
            status: Some(JobStatus::Paused),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(paused.len(), 4);
    let all = store
        .list_jobs(&JobListFilter {
            status: None,
            limit: 5,
        })
        .await
        .unwrap();
    assert_eq!(
        all.first().map(|v| v.job_id.as_str()),
        Some("job-11"),
        "newest first"
    );
    assert_eq!(all.len(), 5);

    let before = snapshot(&store, &ids).await;
    let check = rebuild_all(&store, false, |_, _| {}).await.unwrap();
    assert_eq!(check.jobs, 12);
    assert!(check.differences.is_empty(), "{:?}", check.differences);
    let written = rebuild_all(&store, true, |_, _| {}).await.unwrap();
    assert_eq!(written.written, 12);
    assert_eq!(
        snapshot(&store, &ids).await,
        before,
        "rebuilt views are identical to live ones"
    );
    let counts = store.job_counts().await.unwrap();
    assert_eq!(
        counts[&JobStatus::Completed] + counts[&JobStatus::Paused] + counts[&JobStatus::Running],
        12
    );
}

#[tokio::test]
async fn a_crash_between_view_write_and_ack_double_applies_nothing() {
    if common::skip_on_cluster("reads the one feed of a single Redis directly") {
        return;
    }
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let store = common::store().await;
    let ids = populate(&store, 3).await;
    store.ensure_feed_group(S0, PROJECTION_GROUP).await.unwrap();
    // Worker "doomed" reads a batch and writes its views, then dies before acknowledging.
    let mut conn = store
        .blocking_conn(Duration::from_millis(100))
        .await
        .unwrap();
    let entries = store
        .read_feed_group(
            &mut conn,
            S0,
            PROJECTION_GROUP,
            "doomed",
            20,
            Duration::from_millis(100),
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 20);
    let stats = ProjectorStats::default();
    projector::apply_batch(&store, entries, &stats)
        .await
        .unwrap();
    assert!(store.feed_backlog(PROJECTION_GROUP).await.unwrap() > 0);

    // A healthy worker reclaims the dead one's entries and finishes the feed.
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stats = Arc::new(ProjectorStats::default());
    let worker = tokio::spawn(projector::run(
        store.clone(),
        quick("healthy"),
        stats.clone(),
        rx,
    ));
    wait_projections_caught_up(&store, Duration::from_secs(20))
        .await
        .unwrap();
    tx.send(true).unwrap();
    worker.await.unwrap();
    assert!(
        stats.skipped.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "redelivered entries were skipped"
    );

    let report = rebuild_all(&store, false, |_, _| {}).await.unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    let view = store.job_view(&ids[0]).await.unwrap().unwrap();
    assert_eq!(view.messages_sent, 4, "no event counted twice");
}

#[tokio::test]
async fn workers_killed_at_random_points_lose_nothing_and_double_apply_nothing() {
    if common::skip_on_cluster("reads the one feed of a single Redis directly") {
        return;
    }
    let store = common::store().await;
    let ids = populate(&store, 10).await;
    let stats = Arc::new(ProjectorStats::default());
    for round in 0..8u64 {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(projector::run(
            store.clone(),
            quick(&format!("w{round}")),
            stats.clone(),
            rx,
        ));
        tokio::time::sleep(Duration::from_millis(3 + round * 7)).await;
        task.abort(); // a crash: no cleanup, no ack of the batch in hand
        let _ = task.await;
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let last = tokio::spawn(projector::run(
        store.clone(),
        quick("survivor"),
        stats.clone(),
        rx,
    ));
    wait_projections_caught_up(&store, Duration::from_secs(30))
        .await
        .unwrap();
    tx.send(true).unwrap();
    last.await.unwrap();
    let report = rebuild_all(&store, false, |_, _| {}).await.unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    for id in &ids {
        let v = store.job_view(id).await.unwrap().unwrap();
        assert_eq!(
            (v.messages_sent, v.steps_finished, v.dead_letters),
            (4, 4, 1),
            "{id}"
        );
    }
}

#[tokio::test]
async fn corrupt_and_future_events_are_dead_lettered_and_the_group_moves_on() {
    let store = common::store().await;
    populate(&store, 1).await;
    let feed = store.keys().feed(S0);
    let mut conn = store.conn();
    // A malformed feed entry (no seq range) and one naming an impossible job id.
    let no_range: String = conn.xadd(&feed, "*", &[("j", "job-z")]).await.unwrap();
    let bad_job: String = conn
        .xadd(&feed, "*", &[("j", "a}b"), ("f", "1"), ("l", "1")])
        .await
        .unwrap();
    // Job "bad": seq 1 is fine, seq 2 is garbage, seq 3 is from a newer schema, seq 4 is fine.
    let first = seal("bad", 0, 0, 1, None, None, script("bad", 2)[..1].to_vec());
    store.append("bad", 0, 0, &first).await.unwrap();
    let history = store.keys().job_events("bad");
    let _: String = conn
        .xadd(
            &history,
            "2-0",
            &[("id", b"x".as_slice()), ("e", b"\xc1garbage")],
        )
        .await
        .unwrap();
    let future = EventEnvelope {
        event_id: "f".into(),
        job_id: "bad".into(),
        seq: 3,
        event_type: "from_the_future".into(),
        schema_version: SCHEMA_VERSION + 1,
        timestamp_ms: 0,
        epoch: 0,
        causation_id: None,
        correlation_id: None,
        payload: JobEvent::JobStarted,
    };
    let _: String = conn
        .xadd(
            &history,
            "3-0",
            &[("id", b"f".as_slice()), ("e", &encode(&future))],
        )
        .await
        .unwrap();
    let last = seal("bad", 3, 0, 4, None, None, vec![JobEvent::JobStarted]);
    store.append("bad", 3, 0, &last).await.unwrap();

    let workers = Projectors::start(&store, "node", 1);
    wait_projections_caught_up(&store, Duration::from_secs(20))
        .await
        .unwrap();
    workers.stop().await;
    let dead = store.event_dead_letters().await.unwrap();
    let sources: Vec<&str> = dead.iter().filter_map(|d| d["source"].as_str()).collect();
    for s in [
        format!("feed/{no_range}"),
        "job:bad/2-0".to_string(),
        "job:bad/3-0".to_string(),
    ] {
        assert!(sources.contains(&s.as_str()), "{s} missing from {dead:?}");
    }
    let bad = dead
        .iter()
        .find(|d| d["source"] == json!(format!("feed/{bad_job}")))
        .expect("bad job id entry");
    assert!(bad["reason"].as_str().unwrap().contains("a}b"), "{bad}");
    let future_reason = dead.iter().find(|d| d["source"] == "job:bad/3-0").unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        future_reason.contains("newer than supported"),
        "{future_reason}"
    );
    let view = store.job_view("bad").await.unwrap().unwrap();
    assert_eq!(
        (view.last_seq, view.status),
        (4, Some(JobStatus::Running)),
        "the events after the bad ones were applied"
    );
    assert_eq!(
        store.feed_backlog(PROJECTION_GROUP).await.unwrap(),
        0,
        "nothing is stuck"
    );
    let report = rebuild_all(&store, false, |_, _| {}).await.unwrap();
    assert!(
        report.differences.is_empty(),
        "rebuild skips the same entries: {:?}",
        report.differences
    );
}

#[tokio::test]
async fn trimming_keeps_every_entry_some_group_has_not_acknowledged() {
    if common::skip_on_cluster("reads the one feed of a single Redis directly") {
        return;
    }
    let store = common::store().await;
    store.ensure_feed_group(S0, "fast").await.unwrap();
    store.ensure_feed_group(S0, "slow").await.unwrap();
    populate(&store, 2).await;
    let total = store.feed_len().await.unwrap();
    let mut conn = store
        .blocking_conn(Duration::from_millis(100))
        .await
        .unwrap();
    let fast = store
        .read_feed_group(
            &mut conn,
            S0,
            "fast",
            "c",
            10_000,
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    store
        .ack_feed(
            S0,
            "fast",
            &fast.iter().map(|e| e.stream_id.clone()).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    // "slow" reads 10 entries and acknowledges only the first 6: entry 7 is pending.
    let slow = store
        .read_feed_group(&mut conn, S0, "slow", "c", 10, Duration::from_millis(50))
        .await
        .unwrap();
    store
        .ack_feed(
            S0,
            "slow",
            &slow[..6]
                .iter()
                .map(|e| e.stream_id.clone())
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    // The projections group (created by the migration) has read nothing yet: trim nothing.
    assert_eq!(store.trim_feed(S0, None).await.unwrap().trimmed, 0);
    let workers = Projectors::start(&store, "node", 1);
    wait_projections_caught_up(&store, Duration::from_secs(20))
        .await
        .unwrap();
    workers.stop().await;
    let report = store.trim_feed(S0, None).await.unwrap();
    assert_eq!(
        report.trimmed, 6,
        "only the entries every group acknowledged"
    );
    assert_eq!(report.min_id, slow[6].stream_id);
    assert_eq!(store.feed_len().await.unwrap(), total - 6);
    // The pending entry is still there to be reclaimed and processed.
    let reclaimed = store
        .reclaim_feed(S0, "slow", "other", Duration::ZERO, "0-0", 10)
        .await
        .unwrap();
    assert_eq!(reclaimed.entries.len(), 4);
    assert_eq!(reclaimed.entries[0].stream_id, slow[6].stream_id);
    assert!(reclaimed.deleted.is_empty());
}
