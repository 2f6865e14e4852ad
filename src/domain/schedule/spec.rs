//! The schedule spec: what runs when, and what happens to runs that were missed.
//!
//! Accepts the shapes the published clients send (`{"kind":"periodic","crons":[..]}`,
//! `{"kind":"delayed","delay_ms":..}`, `{"kind":"event","trigger":{"event_type":..}}`) and
//! the original's aliases (`cron`, `time_zone`, `run_at`, `type`), and normalises them into
//! one JSON form that is stored in the `created` event. A relative `delay_ms` becomes an
//! absolute `run_at` at creation, so replaying history never depends on the replay time.

use serde_json::{Value, json};

use super::cron::CronSet;
use super::error::SpecError;
use super::fields::{bool_field, cron_list, event_timing, int_field, run_at, str_field};
use super::filter::Filters;

/// What decides when the schedule runs.
#[derive(Debug, Clone)]
pub enum Timing {
    /// On every cron occurrence in the time zone.
    Periodic(CronSet),
    /// Once, at an absolute instant (Unix ms).
    Delayed { run_at_ms: i64 },
    /// Whenever an emitted event of one of these types passes the filters.
    Event {
        event_types: Vec<String>,
        filters: Filters,
    },
}

/// What a periodic schedule does with occurrences that passed while nobody dispatched them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissedPolicy {
    /// Run only an occurrence that is late by at most the grace period; skip the rest.
    Skip,
    /// Run the newest `catchup_limit` missed occurrences; skip the older ones.
    Catchup,
}

impl MissedPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MissedPolicy::Skip => "skip",
            MissedPolicy::Catchup => "catchup",
        }
    }
}

/// A validated schedule spec.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub name: String,
    pub timing: Timing,
    pub missed_policy: MissedPolicy,
    /// Most missed occurrences one catch-up runs (1..=100).
    pub catchup_limit: u32,
    /// How late an occurrence may be dispatched and still count as on time.
    pub missed_grace_ms: i64,
    /// When true, an occurrence is skipped while the previous run is still active.
    pub prohibit_overlap: bool,
    /// Given to every run as `schedule.payload` in its initial input.
    pub payload: Value,
    /// False creates the schedule paused.
    pub enabled: bool,
}

/// Default and bounds of `catchup_limit`.
pub const DEFAULT_CATCHUP_LIMIT: u32 = 10;
pub const MAX_CATCHUP_LIMIT: u32 = 100;
/// Default `missed_grace_ms`: a sweep that is late by up to a minute is not a miss.
pub const DEFAULT_MISSED_GRACE_MS: i64 = 60_000;

/// Event type names: short, printable, usable in keys and logs.
pub fn validate_event_type(field: &str, name: &str) -> Result<(), SpecError> {
    let ok = (1..=160).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            format!("event type {name:?} must be 1-160 characters of letters, digits, _ . : -"),
        ))
    }
}

impl ScheduleSpec {
    /// Validates a spec as sent by a client; `now_ms` turns `delay_ms` into an instant.
    pub fn parse(value: &Value, now_ms: i64) -> Result<ScheduleSpec, SpecError> {
        let o = value
            .as_object()
            .ok_or_else(|| SpecError::new("schedule", "schedule must be an object"))?;
        let trigger = o.get("trigger").filter(|t| !t.is_null());
        let kind = match str_field(o, "kind")? {
            Some(k) => k,
            None if trigger.is_some() || o.contains_key("event_type") => "event".into(),
            None if ["run_at", "at", "delay_ms"]
                .iter()
                .any(|k| o.contains_key(*k)) =>
            {
                "delayed".into()
            }
            None => "periodic".into(),
        };
        let timezone = match (str_field(o, "timezone")?, str_field(o, "time_zone")?) {
            (Some(tz), _) => ("schedule.timezone", tz),
            (None, Some(tz)) => ("schedule.time_zone", tz),
            (None, None) => ("schedule.timezone", "UTC".to_string()),
        };
        let timing = match kind.as_str() {
            "periodic" => {
                let (field, crons) = cron_list(o)?;
                Timing::Periodic(CronSet::parse(field, &crons, timezone.0, &timezone.1)?)
            }
            "delayed" => Timing::Delayed {
                run_at_ms: run_at(o, timezone, now_ms)?,
            },
            "event" => event_timing(o, trigger)?,
            other => {
                return Err(SpecError::new(
                    "schedule.kind",
                    format!("schedule.kind must be periodic, delayed, or event (got {other:?})"),
                ));
            }
        };
        let (missed_policy, one) = match str_field(o, "missed_policy")?.as_deref() {
            None | Some("skip") => (MissedPolicy::Skip, false),
            Some("catchup" | "catchup_all") => (MissedPolicy::Catchup, false),
            Some("catchup_one") => (MissedPolicy::Catchup, true),
            Some(other) => {
                return Err(SpecError::new(
                    "schedule.missed_policy",
                    format!("must be skip or catchup (or catchup_one, catchup_all), got {other:?}"),
                ));
            }
        };
        let catchup_limit = match int_field(o, "catchup_limit")? {
            _ if one => 1,
            None => DEFAULT_CATCHUP_LIMIT,
            Some(n) if (1..=i64::from(MAX_CATCHUP_LIMIT)).contains(&n) => n as u32,
            Some(n) => {
                return Err(SpecError::new(
                    "schedule.catchup_limit",
                    format!("must be between 1 and {MAX_CATCHUP_LIMIT}, got {n}"),
                ));
            }
        };
        let missed_grace_ms = match int_field(o, "missed_grace_ms")? {
            None => DEFAULT_MISSED_GRACE_MS,
            Some(n) if n >= 0 => n,
            Some(n) => {
                return Err(SpecError::new(
                    "schedule.missed_grace_ms",
                    format!("must not be negative, got {n}"),
                ));
            }
        };
        let prohibit_overlap = match (
            bool_field(o, "prohibit_overlap")?,
            bool_field(o, "allow_overlap")?,
        ) {
            (Some(p), _) => p,
            (None, Some(allow)) => !allow,
            (None, None) => true,
        };
        Ok(ScheduleSpec {
            name: str_field(o, "name")?.unwrap_or_default(),
            timing,
            missed_policy,
            catchup_limit,
            missed_grace_ms,
            prohibit_overlap,
            payload: o.get("payload").cloned().unwrap_or(Value::Null),
            enabled: bool_field(o, "enabled")?.unwrap_or(true),
        })
    }

    /// `periodic`, `delayed` or `event`.
    pub fn kind(&self) -> &'static str {
        match self.timing {
            Timing::Periodic(_) => "periodic",
            Timing::Delayed { .. } => "delayed",
            Timing::Event { .. } => "event",
        }
    }

    /// The normalised form: what is stored, and what [`ScheduleSpec::parse`] reads back to
    /// the same spec.
    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "kind": self.kind(),
            "name": self.name,
            "missed_policy": self.missed_policy.as_str(),
            "catchup_limit": self.catchup_limit,
            "missed_grace_ms": self.missed_grace_ms,
            "prohibit_overlap": self.prohibit_overlap,
            "payload": self.payload,
            "enabled": self.enabled,
        });
        let extra = match &self.timing {
            Timing::Periodic(c) => json!({"crons": c.sources(), "timezone": c.timezone()}),
            Timing::Delayed { run_at_ms } => json!({"run_at": run_at_ms}),
            Timing::Event {
                event_types,
                filters,
            } => {
                let event_type = match event_types.as_slice() {
                    [one] => json!(one),
                    many => json!(many),
                };
                json!({"trigger": {"event_type": event_type, "filters": filters.raw()}})
            }
        };
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000;

    fn parse(v: Value) -> Result<ScheduleSpec, SpecError> {
        ScheduleSpec::parse(&v, NOW)
    }

    #[test]
    fn client_shapes_parse_and_round_trip() {
        let periodic = json!({"kind":"periodic","crons":["*/5 * * * *"],"name":"n",
            "missed_policy":"skip","catchup_limit":10,"prohibit_overlap":true,
            "timezone":"Europe/Berlin","version":1});
        let delayed =
            json!({"kind":"delayed","delay_ms":600000,"name":"n","timezone":"UTC","version":1});
        let event = json!({"kind":"event","name":"n","prohibit_overlap":true,
            "trigger":{"event_type":"order.created","filters":{"region":{"prefix":"eu"}}},"version":1});
        for v in [periodic, delayed, event] {
            let spec = parse(v.clone()).expect("valid");
            let again =
                ScheduleSpec::parse(&spec.to_value(), 0).expect("normalised form re-parses");
            assert_eq!(again.to_value(), spec.to_value(), "{v}");
        }
        let d = parse(json!({"delay_ms": 600000})).expect("kind inferred");
        assert!(matches!(d.timing, Timing::Delayed { run_at_ms } if run_at_ms == NOW + 600_000));
        assert_eq!(
            parse(json!({"cron": "0 * * * *"}))
                .expect("periodic")
                .kind(),
            "periodic"
        );
        assert_eq!(
            parse(json!({"event_type": "x"})).expect("event").kind(),
            "event"
        );
    }

    #[test]
    fn run_at_without_offset_is_wall_time_in_the_zone() {
        let s = parse(
            json!({"kind":"delayed","run_at":"2026-07-01T09:00:00","timezone":"Europe/Berlin"}),
        )
        .expect("valid");
        let expected = chrono::DateTime::parse_from_rfc3339("2026-07-01T07:00:00Z")
            .expect("ts")
            .timestamp_millis();
        assert!(matches!(s.timing, Timing::Delayed { run_at_ms } if run_at_ms == expected));
        let gap = parse(json!({"run_at":"2026-03-29T02:30:00","timezone":"Europe/Berlin"}));
        assert_eq!(gap.expect_err("in the gap").field, "schedule.run_at");
    }

    #[test]
    fn policies_have_defaults_and_bounds() {
        let s = parse(json!({"cron":"* * * * *"})).expect("valid");
        assert_eq!(s.missed_policy, MissedPolicy::Skip);
        assert_eq!(s.catchup_limit, DEFAULT_CATCHUP_LIMIT);
        assert!(s.prohibit_overlap && s.enabled);
        let s = parse(json!({"cron":"* * * * *","missed_policy":"catchup_one","allow_overlap":true,"enabled":"off"}))
            .expect("valid");
        assert_eq!(
            (s.missed_policy, s.catchup_limit),
            (MissedPolicy::Catchup, 1)
        );
        assert!(!s.prohibit_overlap && !s.enabled);
    }

    #[test]
    fn errors_name_the_field() {
        let field = |v: Value| parse(v).expect_err("refused").field;
        assert_eq!(field(json!([])), "schedule");
        assert_eq!(field(json!({"kind":"hourly"})), "schedule.kind");
        assert_eq!(field(json!({"kind":"periodic"})), "schedule.cron");
        assert_eq!(
            field(json!({"cron":["* * * * *", "nope"]})),
            "schedule.cron[1]"
        );
        assert_eq!(
            field(json!({"crons":["* * * * *", 5]})),
            "schedule.crons[1]"
        );
        assert_eq!(
            field(json!({"cron":"* * * * *","timezone":"Nowhere/City"})),
            "schedule.timezone"
        );
        assert_eq!(
            field(json!({"cron":"* * * * *","missed_policy":"later"})),
            "schedule.missed_policy"
        );
        assert_eq!(
            field(json!({"cron":"* * * * *","catchup_limit":0})),
            "schedule.catchup_limit"
        );
        assert_eq!(
            field(json!({"cron":"* * * * *","prohibit_overlap":"maybe"})),
            "schedule.prohibit_overlap"
        );
        assert_eq!(field(json!({"kind":"delayed"})), "schedule.run_at");
        assert_eq!(
            field(json!({"kind":"delayed","delay_ms":-1})),
            "schedule.delay_ms"
        );
        assert_eq!(
            field(json!({"kind":"delayed","at":"tomorrow"})),
            "schedule.at"
        );
        assert_eq!(field(json!({"kind":"event"})), "trigger.event_type");
        assert_eq!(
            field(json!({"trigger":{"event_type":"bad type!"}})),
            "trigger.event_type"
        );
        assert_eq!(
            field(json!({"trigger":{"event_type":["a", 1]}})),
            "trigger.event_type[1]"
        );
        assert_eq!(
            field(json!({"trigger":{"type":"a","filters":{"x":{"bogus":1}}}})),
            "trigger.filters.x.bogus"
        );
    }
}
