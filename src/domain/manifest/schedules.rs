//! The manifest's `schedule` and `triggers` (core-spec 1.2, 9.4, 9.5), checked with the very
//! parser that creating the schedule runs, so a bad cron or filter is refused with the bundle
//! rather than when someone later turns the manifest into a schedule.

use serde_json::{Map, Value};

use crate::domain::schedule::{ScheduleSpec, SpecError};

use super::error::{Errors, kind};

/// Validation has no clock; a `delay_ms` only needs to be a valid delay, not an instant.
const NO_CLOCK_MS: i64 = 0;

/// `schedule`, when present: a schedule spec (its errors already start with `schedule.`).
pub(crate) fn check_schedule(root: &Map<String, Value>, errs: &mut Errors) {
    let Some(value) = root.get("schedule").filter(|v| !v.is_null()) else {
        return;
    };
    if let Err(e) = ScheduleSpec::parse(value, NO_CLOCK_MS) {
        let field = match e.field.strip_prefix("trigger") {
            Some(rest) => format!("schedule.trigger{rest}"),
            None => e.field,
        };
        errs.push(field, e.message);
    }
}

/// `triggers`: a list of event schedules, or one.
pub(crate) fn check_triggers(root: &Map<String, Value>, errs: &mut Errors) {
    match root.get("triggers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(t)) => check_trigger(t, "triggers", errs),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("triggers[{i}]");
                match item {
                    Value::Object(t) => check_trigger(t, &path, errs),
                    other => errs.push(
                        path,
                        format!("a trigger must be an object, got {}", kind(other)),
                    ),
                }
            }
        }
        Some(other) => errs.push(
            "triggers",
            format!(
                "triggers must be a list of event triggers, got {}",
                kind(other)
            ),
        ),
    }
}

/// One trigger, validated as an event schedule (its kind defaults to `event`).
fn check_trigger(trigger: &Map<String, Value>, path: &str, errs: &mut Errors) {
    let mut spec = trigger.clone();
    spec.entry("kind")
        .or_insert_with(|| Value::String("event".into()));
    match ScheduleSpec::parse(&Value::Object(spec), NO_CLOCK_MS) {
        Ok(s) if s.kind() == "event" => {}
        Ok(s) => errs.push(
            format!("{path}.kind"),
            format!("a trigger is an event schedule, not {}", s.kind()),
        ),
        Err(e) => {
            let field = trigger_field(&e, path, trigger.contains_key("trigger"));
            errs.push(field, e.message);
        }
    }
}

/// Maps the schedule parser's field (`schedule.filters.x`, `trigger.event_type`) onto the
/// trigger as written (`triggers[0].filters.x`, `triggers[0].event_type`).
fn trigger_field(e: &SpecError, path: &str, nested: bool) -> String {
    let rest = match (
        e.field.strip_prefix("schedule"),
        e.field.strip_prefix("trigger"),
    ) {
        (Some(rest), _) => rest.to_string(),
        (None, Some(rest)) if nested => format!(".trigger{rest}"),
        (None, Some(rest)) => rest.to_string(),
        (None, None) => format!(".{}", e.field),
    };
    format!("{path}{rest}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(root: Value) -> Vec<String> {
        let mut errs = Errors::default();
        let root = root.as_object().cloned().unwrap_or_default();
        check_schedule(&root, &mut errs);
        check_triggers(&root, &mut errs);
        errs.into_vec().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn valid_schedule_and_triggers_pass() {
        let root = json!({
            "schedule": {"kind": "periodic", "crons": ["@hourly"], "timezone": "UTC"},
            "triggers": [{"name": "t", "enabled": true, "event_type": "dataset_uploaded",
                "filters": {"path": {"prefix": "/demo/"}}}],
        });
        assert_eq!(errors(root), Vec::<String>::new());
        assert_eq!(
            errors(json!({"triggers": {"event_type": "e"}})),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_bad_cron_names_its_field() {
        let errs = errors(json!({"schedule": {"crons": ["*/5 * * * *", "61 * * * *"]}}));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("schedule.crons[1]: "), "{errs:?}");
        let errs = errors(json!({"schedule": {"cron": "@hourly", "missed_policy": "later"}}));
        assert!(errs[0].starts_with("schedule.missed_policy: "), "{errs:?}");
        let errs = errors(json!({"schedule": {"trigger": {"event_type": "bad type!"}}}));
        assert!(
            errs[0].starts_with("schedule.trigger.event_type: "),
            "{errs:?}"
        );
    }

    #[test]
    fn a_bad_filter_operator_names_the_trigger_and_operator() {
        let errs = errors(json!({"triggers": [
            {"event_type": "ok"},
            {"event_type": "e", "filters": {"amount": {"greater": 5}}},
        ]}));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("triggers[1].filters.amount.greater: unknown filter operator"),
            "{errs:?}"
        );
    }

    #[test]
    fn triggers_must_be_event_schedules() {
        assert!(
            errors(json!({"triggers": [{"name": "x"}]}))[0].starts_with("triggers[0].event_type: ")
        );
        assert!(
            errors(json!({"triggers": [{"kind": "periodic", "cron": "@daily"}]}))[0]
                .starts_with("triggers[0].kind: ")
        );
        assert!(errors(json!({"triggers": [5]}))[0].starts_with("triggers[0]: "));
        assert!(errors(json!({"triggers": "e"}))[0].starts_with("triggers: "));
    }
}
