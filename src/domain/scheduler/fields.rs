//! Tolerant JSON readers shared by the demand, device and constraint parsers: the manifest
//! validator already refused wrong types, but these still return errors (never panic) because
//! a stored manifest or a hand-built request may not have gone through it.

use serde_json::{Map, Value};

use super::resources::DemandError;

/// A number, or the numeric prefix of a string (`"2.5Gi"` is 2.5), with the rest of the string.
pub(crate) fn number_and_unit(v: &Value) -> Option<(f64, String)> {
    match v {
        Value::Number(n) => n.as_f64().map(|n| (n, String::new())),
        Value::String(s) => {
            let s = s.trim();
            let end = s
                .char_indices()
                .find(|(i, c)| {
                    !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+')))
                })
                .map_or(s.len(), |(i, _)| i);
            let n = s[..end].parse().ok()?;
            Some((n, s[end..].trim().to_ascii_lowercase()))
        }
        _ => None,
    }
}

/// The first of `keys` present and not null, with the key that held it.
pub(crate) fn first<'a>(
    map: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter()
        .find_map(|k| map.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

/// An optional string, lowercased and trimmed; empty strings count as absent.
pub(crate) fn lower_str(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, DemandError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_lowercase())),
        Some(_) => Err(DemandError::new(
            format!("{path}.{key}"),
            "must be a string",
        )),
    }
}

/// A list of strings (a comma-separated string is accepted too), lowercased when `lower`.
pub(crate) fn str_list(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    lower: bool,
) -> Result<Vec<String>, DemandError> {
    let norm = |s: &str| {
        let s = s.trim();
        if lower {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(split_list(s).map(norm).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(norm(s)),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(DemandError::new(
                    format!("{path}.{key}[{i}]"),
                    "must be a string",
                )),
            })
            .collect(),
        Some(_) => Err(DemandError::new(format!("{path}.{key}"), "must be a list")),
    }
}

/// The non-empty items of a comma-separated list.
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A non-negative whole number (JSON number or numeric string).
pub(crate) fn whole(v: &Value, path: &str) -> Result<u64, DemandError> {
    match number_and_unit(v) {
        Some((n, unit)) if unit.is_empty() && n >= 0.0 && n.fract() == 0.0 => Ok(n as u64),
        _ => Err(DemandError::new(
            path,
            format!("must be a non-negative integer, got {v}"),
        )),
    }
}
