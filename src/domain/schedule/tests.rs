//! Decider tests with an injected clock: what a sequence of sweeps does to a schedule.

use chrono::{NaiveDate, TimeZone};
use serde_json::{Value, json};

use super::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    chrono::Utc
        .from_utc_datetime(
            &NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|d| d.and_hms_opt(h, mi, 0))
                .expect("date"),
        )
        .timestamp_millis()
}

/// Applies a command, returning the new state and the events it produced.
fn run(state: ScheduleState, cmd: ScheduleCommand) -> (ScheduleState, Vec<ScheduleEvent>) {
    let events = decide(&state, &cmd).expect("command accepted");
    (events.iter().fold(state, evolve), events)
}

fn created(spec: Value, now_ms: i64) -> ScheduleState {
    let spec = ScheduleSpec::parse(&spec, now_ms).expect("valid spec");
    run(
        ScheduleState::new("sched_1"),
        ScheduleCommand::Create {
            spec,
            bundle_path: "/b".into(),
            graph_id: "g".into(),
            job_name: "j".into(),
            source: json!({}),
            now_ms,
        },
    )
    .0
}

fn tick(
    state: ScheduleState,
    now_ms: i64,
    previous_active: bool,
) -> (ScheduleState, Vec<ScheduleEvent>) {
    run(
        state,
        ScheduleCommand::Tick {
            now_ms,
            previous_active,
        },
    )
}

fn dispatched(events: &[ScheduleEvent]) -> Vec<Dispatch> {
    events
        .iter()
        .filter_map(|e| match e {
            ScheduleEvent::Dispatched(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn skipped(events: &[ScheduleEvent], why: SkipReason) -> u64 {
    events
        .iter()
        .map(|e| match e {
            ScheduleEvent::Skipped { reason, count, .. } if *reason == why => *count,
            _ => 0,
        })
        .sum()
}

#[test]
fn a_periodic_schedule_runs_each_occurrence_once() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let s = created(json!({"cron": "0 * * * *"}), t0 + 1);
    assert_eq!(s.next_due_ms, Some(t0 + HOUR));
    let (s, ev) = tick(s, t0 + HOUR - 1, false);
    assert!(ev.is_empty(), "not yet due: {ev:?}");
    let (s, ev) = tick(s, t0 + HOUR + 400, false);
    let d = dispatched(&ev);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].job_id, format!("sched_1-t{}", t0 + HOUR));
    assert_eq!(d[0].reason, DispatchReason::Cron);
    assert_eq!(s.next_due_ms, Some(t0 + 2 * HOUR));
    let (_, ev) = tick(s, t0 + HOUR + 900, false);
    assert!(
        ev.is_empty(),
        "a second sweep in the same hour does nothing: {ev:?}"
    );
}

#[test]
fn catch_up_after_downtime_runs_the_newest_occurrences_up_to_the_limit() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let spec = json!({"cron": "0 * * * *", "missed_policy": "catchup", "catchup_limit": 3,
                      "prohibit_overlap": false});
    let s = created(spec, t0 + 1);
    // Down for ten hours: occurrences 01:00 .. 10:00 all passed.
    let (s, ev) = tick(s, t0 + 10 * HOUR + 30_000, false);
    let runs: Vec<i64> = dispatched(&ev)
        .iter()
        .filter_map(|d| d.scheduled_for_ms)
        .collect();
    assert_eq!(runs, vec![t0 + 8 * HOUR, t0 + 9 * HOUR, t0 + 10 * HOUR]);
    assert_eq!(skipped(&ev, SkipReason::Missed), 7);
    let reasons: Vec<DispatchReason> = dispatched(&ev).iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons,
        [
            DispatchReason::Catchup,
            DispatchReason::Catchup,
            DispatchReason::Cron
        ]
    );
    assert_eq!(s.counters.missed, 7);
    assert_eq!(s.pending().count(), 3);
    assert_eq!(s.next_due_ms, Some(t0 + 11 * HOUR));
}

#[test]
fn skip_policy_runs_only_an_occurrence_within_the_grace_period() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let s = created(
        json!({"cron": "0 * * * *", "missed_grace_ms": 60000}),
        t0 + 1,
    );
    // Five minutes late for 01:00: missed, and nothing runs until 02:00.
    let (s, ev) = tick(s, t0 + HOUR + 5 * 60_000, false);
    assert!(dispatched(&ev).is_empty());
    assert_eq!(skipped(&ev, SkipReason::Missed), 1);
    assert_eq!(s.next_due_ms, Some(t0 + 2 * HOUR));
    // Down from 02:00 to 05:00:20: 02..04 missed, 05:00 is within grace and runs.
    let (s, ev) = tick(s, t0 + 5 * HOUR + 20_000, false);
    let runs: Vec<i64> = dispatched(&ev)
        .iter()
        .filter_map(|d| d.scheduled_for_ms)
        .collect();
    assert_eq!(runs, vec![t0 + 5 * HOUR]);
    assert_eq!(skipped(&ev, SkipReason::Missed), 3);
    assert_eq!(s.counters.missed, 4);
}

#[test]
fn overlap_is_skipped_while_the_previous_run_is_active() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let s = created(json!({"cron": "0 * * * *"}), t0 + 1);
    let (s, ev) = tick(s, t0 + HOUR, false);
    assert_eq!(dispatched(&ev).len(), 1);
    let (s, ev) = tick(s, t0 + 2 * HOUR, true);
    assert!(dispatched(&ev).is_empty());
    assert_eq!(skipped(&ev, SkipReason::Overlap), 1);
    assert_eq!(
        s.next_due_ms,
        Some(t0 + 3 * HOUR),
        "the occurrence is skipped, not retried"
    );
    let (_, ev) = tick(s, t0 + 3 * HOUR, false);
    assert_eq!(dispatched(&ev).len(), 1);
}

#[test]
fn a_catch_up_that_would_overlap_itself_collapses_to_the_newest_occurrence() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let spec = json!({"cron": "0 * * * *", "missed_policy": "catchup", "catchup_limit": 5});
    let s = created(spec, t0 + 1);
    let (_, ev) = tick(s, t0 + 4 * HOUR, false);
    let runs: Vec<i64> = dispatched(&ev)
        .iter()
        .filter_map(|d| d.scheduled_for_ms)
        .collect();
    assert_eq!(runs, vec![t0 + 4 * HOUR]);
    assert_eq!(skipped(&ev, SkipReason::Overlap), 3);
}

#[test]
fn a_daily_job_across_spring_forward_runs_once_at_three() {
    let tz = chrono_tz::Europe::Berlin;
    let local = |d: u32, h: u32, m: u32| {
        tz.from_local_datetime(
            &NaiveDate::from_ymd_opt(2026, 3, d)
                .and_then(|x| x.and_hms_opt(h, m, 0))
                .expect("date"),
        )
        .earliest()
        .expect("exists")
        .timestamp_millis()
    };
    let mut s = created(
        json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin"}),
        local(28, 12, 0),
    );
    let mut runs = Vec::new();
    // A sweep every minute from the 28th noon to the 29th noon.
    let mut now = local(28, 12, 0);
    while now <= local(29, 12, 0) {
        let (next, ev) = tick(s, now, false);
        runs.extend(dispatched(&ev).iter().filter_map(|d| d.scheduled_for_ms));
        s = next;
        now += 60_000;
    }
    assert_eq!(runs, vec![local(29, 3, 0)]);
}

#[test]
fn a_delayed_schedule_runs_once_and_completes() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let s = created(json!({"kind": "delayed", "delay_ms": 600000}), t0);
    let (s, ev) = tick(s, t0 + 599_999, false);
    assert!(ev.is_empty());
    // Even a day late, a delayed run still runs: it was asked for once, explicitly.
    let (s, ev) = tick(s, t0 + DAY, true);
    assert_eq!(dispatched(&ev).len(), 1);
    assert_eq!(s.status, Some(ScheduleStatus::Completed));
    assert_eq!(
        s.due_score(),
        Some(t0 + DAY),
        "due again until the job is confirmed"
    );
    let id = dispatched(&ev)[0].dispatch_id.clone();
    let (s, _) = run(
        s,
        ScheduleCommand::ConfirmStart {
            dispatch_id: id,
            now_ms: t0 + DAY,
        },
    );
    assert_eq!(s.due_score(), None);
    let (_, ev) = tick(s, t0 + 2 * DAY, false);
    assert!(ev.is_empty());
}

#[test]
fn pause_resume_delete() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let s = created(json!({"cron": "0 * * * *"}), t0 + 1);
    let (s, ev) = run(
        s,
        ScheduleCommand::Pause {
            reason: None,
            now_ms: t0 + 2,
        },
    );
    assert_eq!(ev.len(), 1);
    assert_eq!(s.due_score(), None);
    let (s, ev) = tick(s, t0 + 5 * HOUR, false);
    assert!(ev.is_empty(), "paused schedules do not run");
    // Resuming does not catch up what passed while paused.
    let (s, _) = run(
        s,
        ScheduleCommand::Resume {
            now_ms: t0 + 5 * HOUR + 10,
        },
    );
    assert_eq!(s.next_due_ms, Some(t0 + 6 * HOUR));
    let (s, ev) = run(
        s,
        ScheduleCommand::Resume {
            now_ms: t0 + 5 * HOUR + 11,
        },
    );
    assert!(ev.is_empty(), "already active");
    let spec = ScheduleSpec::parse(&json!({"cron": "30 * * * *"}), 0).expect("spec");
    let (s, _) = run(
        s,
        ScheduleCommand::Update {
            spec,
            now_ms: t0 + 5 * HOUR + 11,
        },
    );
    assert_eq!(
        s.next_due_ms,
        Some(t0 + 5 * HOUR + HOUR / 2),
        "the new cron decides"
    );
    let (s, _) = run(
        s,
        ScheduleCommand::Delete {
            reason: None,
            now_ms: t0 + 5 * HOUR + 12,
        },
    );
    assert_eq!(s.status, Some(ScheduleStatus::Deleted));
    assert_eq!(
        decide(
            &s,
            &ScheduleCommand::Pause {
                reason: None,
                now_ms: 0
            }
        ),
        Err(ScheduleError::NotFound)
    );
    assert_eq!(
        decide(
            &ScheduleState::new("x"),
            &ScheduleCommand::Resume { now_ms: 0 }
        ),
        Err(ScheduleError::NotFound)
    );
}

#[test]
fn run_now_records_a_deterministic_job_before_it_starts() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let s = created(json!({"cron": "0 0 1 1 *", "payload": {"k": 1}}), t0);
    let (s, ev) = run(
        s,
        ScheduleCommand::RunNow {
            payload: None,
            now_ms: t0 + 5,
        },
    );
    let d = dispatched(&ev);
    assert_eq!(d[0].job_id, "sched_1-m2");
    assert_eq!(d[0].payload, json!({"k": 1}));
    assert_eq!(s.pending().count(), 1);
    assert_eq!(s.last_job_id(), Some("sched_1-m2"));
    let (s, ev) = run(
        s,
        ScheduleCommand::RunNow {
            payload: Some(json!({"k": 2})),
            now_ms: t0 + 6,
        },
    );
    assert_eq!(dispatched(&ev)[0].payload, json!({"k": 2}));
    let (s, ev) = run(
        s,
        ScheduleCommand::FailStart {
            dispatch_id: "sched_1-m2".into(),
            error: "gone".into(),
            now_ms: t0 + 7,
        },
    );
    assert_eq!(ev.len(), 1);
    assert_eq!(s.counters.failed, 1);
    let (_, ev) = run(
        s,
        ScheduleCommand::ConfirmStart {
            dispatch_id: "sched_1-m2".into(),
            now_ms: t0 + 8,
        },
    );
    assert!(ev.is_empty(), "a settled dispatch is not confirmed again");
}

fn event(id: &str, event_type: &str, payload: Value) -> EmittedEvent {
    EmittedEvent {
        event_id: id.into(),
        event_type: event_type.into(),
        source: "api".into(),
        payload,
        created_at_ms: 1,
    }
}

fn on_event(
    s: ScheduleState,
    e: EmittedEvent,
    previous_active: bool,
) -> (ScheduleState, Vec<ScheduleEvent>) {
    run(
        s,
        ScheduleCommand::MatchEvent {
            event: e,
            previous_active,
            now_ms: 10,
        },
    )
}

#[test]
fn triggers_dispatch_matching_events_once_each() {
    let spec = json!({"kind": "event", "trigger": {"event_type": "order.created",
                      "filters": {"order.total": {"gte": 100}}}});
    let s = created(spec, 1);
    assert_eq!(s.due_score(), None, "triggers are not in the due index");
    let (s, ev) = on_event(
        s,
        event("event_a", "order.created", json!({"order": {"total": 50}})),
        false,
    );
    assert!(ev.is_empty(), "filter refuses");
    let (s, ev) = on_event(
        s,
        event("event_b", "order.updated", json!({"order": {"total": 500}})),
        false,
    );
    assert!(ev.is_empty(), "other type");
    let e = event("event_c", "order.created", json!({"order": {"total": 500}}));
    let (s, ev) = on_event(s, e.clone(), false);
    assert_eq!(ev[0].type_name(), "trigger_matched");
    let d = dispatched(&ev);
    assert_eq!(d[0].job_id, "sched_1-e-event_c");
    assert_eq!(
        d[0].event.as_ref().map(|e| e.payload.clone()),
        Some(json!({"order": {"total": 500}}))
    );
    let (s, ev) = on_event(s, e, false);
    assert!(ev.is_empty(), "the same event twice dispatches once");
    let (s, ev) = on_event(
        s,
        event("event_d", "order.created", json!({"order": {"total": 100}})),
        true,
    );
    assert_eq!(skipped(&ev, SkipReason::Overlap), 1);
    let (s, _) = run(
        s,
        ScheduleCommand::Pause {
            reason: None,
            now_ms: 11,
        },
    );
    let (_, ev) = on_event(
        s,
        event("event_e", "order.created", json!({"order": {"total": 900}})),
        false,
    );
    assert!(ev.is_empty(), "a paused trigger does not fire");
}

#[test]
fn history_round_trips_through_json() {
    let t0 = utc(2026, 5, 1, 0, 0);
    let s = created(
        json!({"cron": "*/10 * * * * *", "timezone": "America/New_York"}),
        t0,
    );
    let (s, ev) = tick(s, t0 + 10_000, false);
    let mut all = vec![];
    let first = decide(
        &ScheduleState::new("sched_1"),
        &ScheduleCommand::Create {
            spec: ScheduleSpec::parse(
                &json!({"cron": "*/10 * * * * *", "timezone": "America/New_York"}),
                t0,
            )
            .expect("spec"),
            bundle_path: "/b".into(),
            graph_id: "g".into(),
            job_name: "j".into(),
            source: json!({}),
            now_ms: t0,
        },
    )
    .expect("create");
    all.extend(first);
    all.extend(ev);
    let decoded: Vec<ScheduleEvent> = all
        .iter()
        .map(|e| ScheduleEvent::from_json(&e.to_json()).expect("decodes"))
        .collect();
    assert_eq!(decoded, all);
    let again = fold("sched_1", &decoded);
    assert_eq!(again.next_due_ms, s.next_due_ms);
    assert_eq!(view(&again), view(&s));
}
