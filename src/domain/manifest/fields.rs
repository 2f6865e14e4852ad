//! Small typed readers over JSON objects that report a wrong type instead of guessing.

use serde_json::{Map, Value};

use super::error::{Errors, join, kind};

/// The first of `keys` present in `map` (aliases: `["node_id", "id"]`), with the key found.
pub(crate) fn aliased<'a>(
    map: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter().find_map(|k| map.get(*k).map(|v| (*k, v)))
}

/// A string field: `None` when absent or null; an error (and `None`) when of another type.
pub(crate) fn opt_str<'a>(
    value: Option<&'a Value>,
    path: &str,
    errs: &mut Errors,
) -> Option<&'a str> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            errs.push(path, format!("must be a string, got {}", kind(other)));
            None
        }
    }
}

/// Checks that an optional field, when present and not null, is an object.
pub(crate) fn expect_object(map: &Map<String, Value>, key: &str, parent: &str, errs: &mut Errors) {
    if let Some(v) = map.get(key).filter(|v| !v.is_null() && !v.is_object()) {
        errs.push(
            join(parent, key),
            format!("{key} must be an object, got {}", kind(v)),
        );
    }
}

/// Checks that an optional field, when present and not null, is a boolean.
pub(crate) fn expect_bool(map: &Map<String, Value>, key: &str, parent: &str, errs: &mut Errors) {
    if let Some(v) = map.get(key).filter(|v| !v.is_null() && !v.is_boolean()) {
        errs.push(
            join(parent, key),
            format!("{key} must be a boolean, got {}", kind(v)),
        );
    }
}

/// Checks that an optional field, when present and not null, is a list.
pub(crate) fn expect_list(map: &Map<String, Value>, key: &str, parent: &str, errs: &mut Errors) {
    if let Some(v) = map.get(key).filter(|v| !v.is_null() && !v.is_array()) {
        errs.push(
            join(parent, key),
            format!("{key} must be a list, got {}", kind(v)),
        );
    }
}

/// Checks that an optional field is a non-negative JSON integer.
pub(crate) fn expect_non_negative_int(
    map: &Map<String, Value>,
    key: &str,
    parent: &str,
    errs: &mut Errors,
) {
    if let Some(v) = map
        .get(key)
        .filter(|v| !v.is_null() && v.as_u64().is_none())
    {
        errs.push(
            join(parent, key),
            format!("{key} must be a non-negative integer, got {v}"),
        );
    }
}

/// Checks that an optional string field holds one of `allowed`.
pub(crate) fn expect_one_of(
    map: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
    parent: &str,
    errs: &mut Errors,
) {
    let path = join(parent, key);
    if let Some(s) = opt_str(map.get(key), &path, errs).filter(|s| !allowed.contains(s)) {
        errs.push(
            path,
            format!(
                "{key} has unsupported value {s:?}; expected one of {}",
                allowed.join(", ")
            ),
        );
    }
}
