//! Schedules, triggers and events against a real Redis: delayed runs, trigger matching,
//! idempotent emits, catch-up after downtime (an injected "now"), and racing sweepers.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use mirror_neuron::domain::schedule::ScheduleCommand;
use mirror_neuron::runtime::bundle::{Bundle, load_bundle};
use mirror_neuron::runtime::clock::now_ms;
use mirror_neuron::runtime::schedules::{create, dispatch_due, emit, execute, run_now};
use mirror_neuron::store::Store;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

fn bundle() -> Bundle {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/research_flow");
    load_bundle(&path).expect("example bundle loads")
}

async fn jobs(store: &Store) -> BTreeSet<String> {
    store
        .job_ids()
        .await
        .expect("job ids")
        .into_iter()
        .collect()
}

/// The initial inputs recorded in a job's `job_submitted` event.
async fn initial_inputs(store: &Store, job_id: &str) -> Value {
    let first = store.history(job_id, 1, Some(1)).await.expect("history");
    match first.first().map(|item| &item.event) {
        Some(Ok(env)) => match &env.payload {
            mirror_neuron::domain::event::JobEvent::JobSubmitted(s) => {
                s.manifest["initial_inputs"].clone()
            }
            other => panic!("the first event is {other:?}"),
        },
        other => panic!("no job_submitted for {job_id}: {other:?}"),
    }
}

#[tokio::test]
async fn a_delayed_job_runs_once() {
    let store = common::store().await;
    let s = create(
        &store,
        &bundle(),
        &json!({"kind": "delayed", "delay_ms": 1000}),
        json!({}),
    )
    .await
    .expect("created");
    let early = dispatch_due(&store, now_ms()).await.expect("sweep");
    assert!(early.started.is_empty(), "not due yet: {early:?}");
    let report = dispatch_due(&store, now_ms() + 2000).await.expect("sweep");
    assert_eq!(report.started.len(), 1, "{report:?}");
    let job_id = &report.started[0];
    assert!(job_id.starts_with(&s.schedule_id));
    let again = dispatch_due(&store, now_ms() + 60_000)
        .await
        .expect("sweep");
    assert_eq!(
        again.checked, 0,
        "a completed delayed schedule is out of the due index"
    );
    assert_eq!(jobs(&store).await, BTreeSet::from([job_id.clone()]));
    let view = store
        .schedule_view(&s.schedule_id)
        .await
        .expect("view")
        .expect("exists");
    assert_eq!(view["status"], "completed");
    assert_eq!(view["dispatches"][0]["status"], "submitted");
    assert_eq!(view["job_id"], json!(job_id));
    let inputs = initial_inputs(&store, job_id).await;
    assert_eq!(
        inputs["ingress"][0]["topic"], "edge inference",
        "the bundle's own input stays"
    );
    assert_eq!(
        inputs["ingress"][0]["schedule"]["schedule_id"],
        json!(s.schedule_id)
    );
    assert_eq!(inputs["ingress"][0]["schedule"]["reason"], "delay");
}

#[tokio::test]
async fn an_event_matching_two_triggers_starts_two_jobs_and_a_non_matching_one_none() {
    let store = common::store().await;
    let b = bundle();
    let any = create(
        &store,
        &b,
        &json!({"kind": "event", "trigger": {"event_type": "order.created"}, "allow_overlap": true}),
        json!({}),
    )
    .await
    .expect("trigger");
    let big = create(
        &store,
        &b,
        &json!({"trigger": {"event_type": ["order.created", "order.updated"],
                            "filters": {"order.total": {"gte": 100}, "order.region": {"prefix": "eu-"}}}}),
        json!({}),
    )
    .await
    .expect("trigger");
    let other = create(
        &store,
        &b,
        &json!({"event_type": "invoice.paid"}),
        json!({}),
    )
    .await
    .expect("trigger");
    let payload = json!({"order": {"id": "o-1", "total": 250, "region": "eu-west"}});
    let report = emit(&store, "order.created", payload.clone(), "test", None)
        .await
        .expect("emit");
    let matched: BTreeSet<String> = report.matched.iter().cloned().collect();
    assert_eq!(
        matched,
        BTreeSet::from([any.schedule_id.clone(), big.schedule_id.clone()])
    );
    assert_eq!(report.runs.len(), 2);
    assert_eq!(jobs(&store).await.len(), 2);
    for (_, job_id) in &report.runs {
        let inputs = initial_inputs(&store, job_id).await;
        assert_eq!(
            inputs["ingress"][0]["event"]["payload"], payload,
            "the run carries the event"
        );
        assert_eq!(inputs["ingress"][0]["event"]["event_type"], "order.created");
    }
    // Filtered out by `big`, matched by `any` only.
    let small = emit(
        &store,
        "order.created",
        json!({"order": {"total": 5}}),
        "test",
        None,
    )
    .await
    .expect("emit");
    assert_eq!(small.matched, vec![any.schedule_id.clone()]);
    // No trigger listens for this type.
    let none = emit(&store, "order.deleted", json!({}), "test", None)
        .await
        .expect("emit");
    assert!(none.matched.is_empty() && none.runs.is_empty());
    assert_eq!(jobs(&store).await.len(), 3);
    let view = store
        .schedule_view(&other.schedule_id)
        .await
        .expect("view")
        .expect("exists");
    assert_eq!(view["counters"]["dispatched"], 0);
    let listed = store.emitted_events(10).await.expect("events");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["event_type"], "order.deleted", "newest first");
}

#[tokio::test]
async fn an_emit_repeated_with_its_idempotency_key_starts_nothing_new() {
    let store = common::store().await;
    create(
        &store,
        &bundle(),
        &json!({"trigger": {"event_type": "tick"}, "prohibit_overlap": false}),
        json!({}),
    )
    .await
    .expect("trigger");
    let first = emit(&store, "tick", json!({"n": 1}), "test", Some("key-1"))
        .await
        .expect("emit");
    assert!(!first.duplicate);
    assert_eq!(first.runs.len(), 1);
    let second = emit(&store, "tick", json!({"n": 2}), "test", Some("key-1"))
        .await
        .expect("emit");
    assert!(second.duplicate);
    assert_eq!(second.event.event_id, first.event.event_id);
    assert_eq!(
        second.event.payload,
        json!({"n": 1}),
        "the first event stands"
    );
    assert_eq!(
        second.runs, first.runs,
        "it reports the run the first emit started"
    );
    assert_eq!(jobs(&store).await.len(), 1);
    assert_eq!(store.emitted_events(10).await.expect("events").len(), 1);
    let third = emit(&store, "tick", json!({"n": 3}), "test", Some("key-2"))
        .await
        .expect("emit");
    assert!(!third.duplicate);
    assert_eq!(jobs(&store).await.len(), 2);
}

#[tokio::test]
async fn catch_up_after_downtime_honours_catchup_limit() {
    let store = common::store().await;
    let spec = json!({"cron": "0 * * * *", "missed_policy": "catchup", "catchup_limit": 3,
                      "prohibit_overlap": false});
    let s = create(&store, &bundle(), &spec, json!({}))
        .await
        .expect("created");
    let created = s.created_at_ms;
    // Ten and a half hours without a sweep.
    let back = created + 10 * HOUR + HOUR / 2;
    let report = dispatch_due(&store, back).await.expect("sweep");
    let occurrences = (back / HOUR - created / HOUR) as u64;
    assert_eq!(report.dispatched, 3, "{report:?}");
    assert_eq!(report.started.len(), 3);
    assert_eq!(report.skipped, occurrences - 3);
    let newest = back / HOUR * HOUR;
    let expected: BTreeSet<String> = (0..3)
        .map(|i| format!("{}-t{}", s.schedule_id, newest - i * HOUR))
        .collect();
    assert_eq!(
        jobs(&store).await,
        expected,
        "the newest three occurrences ran"
    );
    let view = store
        .schedule_view(&s.schedule_id)
        .await
        .expect("view")
        .expect("exists");
    assert_eq!(view["counters"]["missed"], occurrences - 3);
    assert_eq!(view["next_run_at_ms"], newest + HOUR);
    let quiet = dispatch_due(&store, back + 1000).await.expect("sweep");
    assert_eq!(quiet.dispatched, 0);
}

#[tokio::test]
async fn racing_sweepers_start_exactly_one_job() {
    let store = common::store().await;
    let s = create(
        &store,
        &bundle(),
        &json!({"kind": "delayed", "delay_ms": 0}),
        json!({}),
    )
    .await
    .expect("created");
    let at = now_ms() + 10;
    let sweeps: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { dispatch_due(&store, at).await.expect("sweep") })
        })
        .collect();
    let mut dispatched = 0;
    for sweep in sweeps {
        dispatched += sweep.await.expect("task").dispatched;
    }
    assert_eq!(dispatched, 1, "one sweeper recorded the dispatch");
    assert_eq!(jobs(&store).await.len(), 1);
    let view = store
        .schedule_view(&s.schedule_id)
        .await
        .expect("view")
        .expect("exists");
    assert_eq!(view["counters"]["dispatched"], 1);
    assert_eq!(view["dispatches"][0]["status"], "submitted");
}

#[tokio::test]
async fn a_crash_between_record_and_start_is_finished_by_the_next_sweep() {
    let store = common::store().await;
    let s = create(
        &store,
        &bundle(),
        &json!({"cron": "*/5 * * * * *", "missed_grace_ms": 3600000}),
        json!({}),
    )
    .await
    .expect("created");
    let at = now_ms() + 6000;
    // A sweeper records the dispatch and "crashes" before submitting the job.
    let (state, events) = execute(&store, &s.schedule_id, true, |_, previous_active| {
        ScheduleCommand::Tick {
            now_ms: at,
            previous_active,
        }
    })
    .await
    .expect("recorded");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.type_name() == "dispatched")
            .count(),
        1
    );
    let recorded = state.pending().next().expect("pending").job_id.clone();
    assert!(jobs(&store).await.is_empty());
    // Two sweepers now find it due (pending) at the same time.
    let (a, b) = tokio::join!(dispatch_due(&store, at), dispatch_due(&store, at));
    let (a, b) = (a.expect("sweep"), b.expect("sweep"));
    assert_eq!(a.dispatched + b.dispatched, 0, "nothing new was due");
    assert_eq!(
        jobs(&store).await,
        BTreeSet::from([recorded.clone()]),
        "the recorded job id ran"
    );
    let view = store
        .schedule_view(&s.schedule_id)
        .await
        .expect("view")
        .expect("exists");
    assert_eq!(view["dispatches"][0]["status"], "submitted");
}

#[tokio::test]
async fn run_now_pause_resume_delete() {
    let store = common::store().await;
    let s = create(
        &store,
        &bundle(),
        &json!({"cron": "0 0 1 1 *", "payload": {"p": 1}}),
        json!({"cli": "test"}),
    )
    .await
    .expect("created");
    let (_, job_id, _) = run_now(&store, &s.schedule_id, Some(json!({"p": 2})))
        .await
        .expect("run now");
    assert_eq!(jobs(&store).await, BTreeSet::from([job_id.clone()]));
    let inputs = initial_inputs(&store, &job_id).await;
    assert_eq!(inputs["ingress"][0]["schedule"]["payload"], json!({"p": 2}));
    let id = s.schedule_id.clone();
    let paused = execute(&store, &id, false, |_, _| ScheduleCommand::Pause {
        reason: None,
        now_ms: now_ms(),
    })
    .await
    .expect("pause");
    assert_eq!(
        mirror_neuron::runtime::schedules::view_of(&paused.0)["status"],
        "paused"
    );
    let due: Vec<String> = store.due_schedules(i64::MAX, 10).await.expect("due");
    assert!(due.is_empty(), "a paused schedule is out of the due index");
    execute(&store, &id, false, |_, _| ScheduleCommand::Resume {
        now_ms: now_ms(),
    })
    .await
    .expect("resume");
    assert_eq!(
        store.due_schedules(i64::MAX, 10).await.expect("due"),
        vec![id.clone()]
    );
    execute(&store, &id, false, |_, _| ScheduleCommand::Delete {
        reason: None,
        now_ms: now_ms(),
    })
    .await
    .expect("delete");
    assert!(store.schedule_view(&id).await.expect("view").is_none());
    assert!(
        store
            .due_schedules(i64::MAX, 10)
            .await
            .expect("due")
            .is_empty()
    );
    let err = run_now(&store, &id, None).await.expect_err("deleted");
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn invalid_specs_are_refused_naming_the_field() {
    let store = common::store().await;
    let err = create(
        &store,
        &bundle(),
        &json!({"cron": ["* * * * *", "99 * * * *"]}),
        json!({}),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().starts_with("schedule.cron[1]:"), "{err}");
    let err = create(
        &store,
        &bundle(),
        &json!({"cron": "* * * * *", "timezone": "Moon/Base"}),
        json!({}),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().starts_with("schedule.timezone:"), "{err}");
    assert!(store.schedule_views().await.expect("views").is_empty());
}

#[tokio::test]
async fn a_trigger_that_prohibits_overlap_skips_events_while_its_run_is_active() {
    let store = common::store().await;
    let t = create(
        &store,
        &bundle(),
        &json!({"trigger": {"event_type": "build"}}),
        json!({}),
    )
    .await
    .expect("trigger");
    let first = emit(&store, "build", json!({}), "test", None)
        .await
        .expect("emit");
    assert_eq!(first.runs.len(), 1);
    // Nothing runs the job in this test, so it stays pending: the next event overlaps.
    let second = emit(&store, "build", json!({}), "test", None)
        .await
        .expect("emit");
    assert_eq!(second.matched, vec![t.schedule_id.clone()]);
    assert!(second.runs.is_empty());
    assert_eq!(second.dispatch.skipped, 1);
    let view = store
        .schedule_view(&t.schedule_id)
        .await
        .expect("view")
        .expect("exists");
    assert_eq!(view["counters"]["blocked"], 1);
    assert_eq!(view["last_skip"]["reason"], "overlap");
}

#[tokio::test]
async fn the_loop_sweeps_only_while_leader_and_stops_when_told() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    let store = common::store().await;
    create(
        &store,
        &bundle(),
        &json!({"kind": "delayed", "delay_ms": 0}),
        json!({}),
    )
    .await
    .expect("created");
    let leader = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let flag = leader.clone();
    let handle = tokio::spawn(mirror_neuron::runtime::schedules::run_schedule_loop(
        store.clone(),
        move || flag.load(Ordering::SeqCst),
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(jobs(&store).await.is_empty(), "a follower does not sweep");
    leader.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while jobs(&store).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader swept within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("loop listening");
    tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("the loop stops promptly")
        .expect("loop task");
    assert_eq!(jobs(&store).await.len(), 1);
}

#[tokio::test]
async fn repeating_a_keyed_emit_finishes_one_that_crashed_before_dispatching() {
    let store = common::store().await;
    create(
        &store,
        &bundle(),
        &json!({"trigger": {"event_type": "paid"}}),
        json!({}),
    )
    .await
    .expect("trigger");
    // An emitter recorded the event under its key and died before matching any trigger.
    let first = json!({"event_id": "event_crashed0000000", "event_type": "paid", "source": "api",
                       "payload": {"invoice": 9}, "created_at_ms": now_ms()});
    store
        .record_emitted(&first, Some("invoice-9"), 60)
        .await
        .expect("recorded");
    let retry = emit(
        &store,
        "paid",
        json!({"invoice": 9}),
        "api",
        Some("invoice-9"),
    )
    .await
    .expect("emit");
    assert!(retry.duplicate);
    assert_eq!(retry.event.event_id, "event_crashed0000000");
    assert_eq!(
        retry.runs.len(),
        1,
        "the retry dispatched what the crash left undone"
    );
    assert_eq!(jobs(&store).await.len(), 1);
    // A trigger created after the event does not fire for a repeat of it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    create(
        &store,
        &bundle(),
        &json!({"trigger": {"event_type": "paid"}}),
        json!({}),
    )
    .await
    .expect("trigger");
    let again = emit(&store, "paid", json!({}), "api", Some("invoice-9"))
        .await
        .expect("emit");
    assert_eq!(again.matched.len(), 1);
    assert_eq!(jobs(&store).await.len(), 1);
}
