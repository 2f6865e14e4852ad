//! Scalar executor settings. Strict on purpose: `"2"` is not an integer and `"sixty"` is not
//! a timeout, because guessing would run the job with a value the author never wrote.

use std::time::Duration;

use serde_json::{Map, Value};

use super::super::error::{Errors, join};

pub(super) fn opt_string(
    config: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<String> {
    match config.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errs.push(
                join(path, key),
                format!("{key} must be a string, got {other}"),
            );
            None
        }
    }
}

pub(super) fn opt_bool(
    config: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<bool> {
    match config.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            errs.push(
                join(path, key),
                format!("{key} must be a boolean, got {other}"),
            );
            None
        }
    }
}

/// `timeout_seconds`: a finite number > 0 (integer or float).
pub(super) fn timeout(value: Option<&Value>, path: &str, errs: &mut Errors) -> Option<Duration> {
    let secs = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => None,
    };
    match secs {
        Some(s) if s.is_finite() && s > 0.0 && s < 1.0e9 => Some(Duration::from_secs_f64(s)),
        _ => {
            let shown = value.map_or_else(String::new, Value::to_string);
            errs.push(
                path,
                format!("timeout_seconds must be a number > 0, got {shown}"),
            );
            None
        }
    }
}

/// An integer >= 1 under `key`, if present.
pub(super) fn positive(
    config: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<u64> {
    match non_negative(config, key, path, errs) {
        Some(0) => {
            errs.push(
                join(path, key),
                format!("{key} must be a positive integer, got 0"),
            );
            None
        }
        other => other,
    }
}

/// A positive integer that fits in 32 bits (slot and attempt counts).
pub(super) fn positive_u32(
    config: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<u32> {
    let v = positive(config, key, path, errs)?;
    match u32::try_from(v) {
        Ok(v) => Some(v),
        Err(_) => {
            errs.push(join(path, key), format!("{key} is too large: {v}"));
            None
        }
    }
}

/// An integer >= 0 under `key`, if present (`2.0` is accepted; `2.5` and `"2"` are not).
pub(super) fn non_negative(
    config: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut Errors,
) -> Option<u64> {
    let message = match config.get(key) {
        None | Some(Value::Null) => return None,
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => return Some(v),
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 1.0e15 => return Some(f as u64),
            _ => format!("{key} must be a non-negative integer, got {n}"),
        },
        Some(other) => format!("{key} must be an integer, got {other}"),
    };
    errs.push(join(path, key), message);
    None
}
