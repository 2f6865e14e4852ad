//! Reading the fields of a client's schedule JSON: the accepted types and aliases of each,
//! and an error naming the field's path when a value cannot be used.

use chrono::{DateTime, NaiveDateTime, TimeZone};
use serde_json::{Map, Value};

use super::cron::parse_timezone;
use super::error::SpecError;
use super::filter::Filters;
use super::spec::{Timing, validate_event_type};

pub(super) fn str_field(o: &Map<String, Value>, key: &str) -> Result<Option<String>, SpecError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => Err(SpecError::new(
            &format!("schedule.{key}"),
            format!("must be a string, got {other}"),
        )),
    }
}

pub(super) fn int_field(o: &Map<String, Value>, key: &str) -> Result<Option<i64>, SpecError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| {
                SpecError::new(
                    &format!("schedule.{key}"),
                    format!("must be an integer, got {v}"),
                )
            }),
    }
}

/// Booleans, also as the strings the original accepted (`1/true/yes/on`, `0/false/no/off`).
pub(super) fn bool_field(o: &Map<String, Value>, key: &str) -> Result<Option<bool>, SpecError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => match v.as_str().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some("1" | "true" | "yes" | "on") => Ok(Some(true)),
            Some("0" | "false" | "no" | "off") => Ok(Some(false)),
            _ => Err(SpecError::new(
                &format!("schedule.{key}"),
                format!("must be true or false, got {v}"),
            )),
        },
    }
}

/// `crons` (a list) or `cron` (a string or a list), with the field name for errors.
pub(super) fn cron_list(o: &Map<String, Value>) -> Result<(&'static str, Vec<String>), SpecError> {
    let (field, value) = match (o.get("crons"), o.get("cron")) {
        (Some(v), _) if !v.is_null() => ("schedule.crons", v),
        (_, Some(v)) if !v.is_null() => ("schedule.cron", v),
        _ => {
            return Err(SpecError::new(
                "schedule.cron",
                "periodic schedules require cron or crons",
            ));
        }
    };
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    SpecError::new(
                        &format!("{field}[{i}]"),
                        format!("must be a string, got {v}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(SpecError::new(
                field,
                format!("must be a cron string or a list of them, got {other}"),
            ));
        }
    };
    Ok((field, list))
}

/// `run_at`/`at` (ISO 8601, or Unix ms) or `delay_ms` from now. An ISO time without an
/// offset is wall time in the schedule's zone.
pub(super) fn run_at(
    o: &Map<String, Value>,
    (tz_field, tz): (&str, String),
    now_ms: i64,
) -> Result<i64, SpecError> {
    let at = ["run_at", "at"]
        .into_iter()
        .find_map(|k| o.get(k).filter(|v| !v.is_null()).map(|v| (k, v)));
    if let Some((key, v)) = at {
        let field = format!("schedule.{key}");
        return match v {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| SpecError::new(&field, "must be whole milliseconds")),
            Value::String(s) => parse_instant(&field, s, tz_field, &tz),
            other => Err(SpecError::new(
                &field,
                format!("must be an ISO 8601 time or Unix milliseconds, got {other}"),
            )),
        };
    }
    match int_field(o, "delay_ms")? {
        Some(d) if d >= 0 => Ok(now_ms.saturating_add(d)),
        Some(d) => Err(SpecError::new(
            "schedule.delay_ms",
            format!("must not be negative, got {d}"),
        )),
        None => Err(SpecError::new(
            "schedule.run_at",
            "delayed schedules require a valid run_at or delay_ms",
        )),
    }
}

pub(super) fn parse_instant(
    field: &str,
    s: &str,
    tz_field: &str,
    tz: &str,
) -> Result<i64, SpecError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.timestamp_millis());
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
    .ok_or_else(|| {
        SpecError::new(
            field,
            format!("{s:?} is not an ISO 8601 time (e.g. 2026-11-25T10:00:00+01:00)"),
        )
    })?;
    let zone = parse_timezone(tz_field, tz)?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| SpecError::new(field, format!("{s} does not exist in {tz} (a DST gap)")))
}

pub(super) fn event_timing(
    o: &Map<String, Value>,
    trigger: Option<&Value>,
) -> Result<Timing, SpecError> {
    let t = match trigger {
        Some(Value::Object(t)) => Some(t),
        Some(other) => {
            return Err(SpecError::new(
                "schedule.trigger",
                format!("must be an object, got {other}"),
            ));
        }
        None => None,
    };
    let found = t
        .and_then(|t| {
            ["event_type", "type"]
                .into_iter()
                .find_map(|k| t.get(k).map(|v| (format!("trigger.{k}"), v)))
        })
        .or_else(|| {
            o.get("event_type")
                .map(|v| ("schedule.event_type".to_string(), v))
        });
    let Some((field, value)) = found else {
        return Err(SpecError::new(
            "trigger.event_type",
            "event schedules require trigger.event_type",
        ));
    };
    let event_types: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    SpecError::new(
                        &format!("{field}[{i}]"),
                        format!("must be a string, got {v}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(SpecError::new(
                &field,
                format!("must be an event type or a non-empty list of them, got {other}"),
            ));
        }
    };
    for (i, e) in event_types.iter().enumerate() {
        let path = if event_types.len() > 1 {
            format!("{field}[{i}]")
        } else {
            field.clone()
        };
        validate_event_type(&path, e)?;
    }
    let (ffield, fvalue) = match (t.and_then(|t| t.get("filters")), o.get("filters")) {
        (Some(v), _) => ("trigger.filters", v),
        (None, Some(v)) => ("schedule.filters", v),
        (None, None) => ("trigger.filters", &Value::Null),
    };
    Ok(Timing::Event {
        event_types,
        filters: Filters::parse(ffield, fvalue)?,
    })
}
