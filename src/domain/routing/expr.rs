//! The string form `${dotted.path} OP value`, e.g. `${payload.outputs.branch} == "high_risk"`.
//!
//! The value is read as JSON when it parses (`5`, `true`, `["a","b"]`, `"x"`), otherwise as a
//! bare word with one pair of surrounding quotes stripped (`'high'` and `high` both mean "high").

use serde_json::Value;

use super::condition::{Condition, Op, compare, normalise_path, unknown_op};

/// Parses one expression into a comparison.
pub(crate) fn parse(expr: &str) -> Result<Condition, String> {
    let text = expr.trim();
    let (path, rest) = split_path(text)
        .ok_or_else(|| format!("expr {expr:?} must start with ${{path}} or a path"))?;
    let path = normalise_path(path)?;
    let rest = rest.trim_start();
    let (op, rest) = split_op(rest).ok_or_else(|| {
        let word = rest.split_whitespace().next().unwrap_or("");
        if word.is_empty() {
            format!("expr {expr:?} has no operator")
        } else {
            unknown_op(word)
        }
    })?;
    let raw_value = rest.trim();
    if op == Op::Exists {
        if !raw_value.is_empty() {
            return Err(format!("expr {expr:?}: exists takes no value"));
        }
        return compare(path, op, Value::Null);
    }
    if raw_value.is_empty() {
        return Err(format!(
            "expr {expr:?} is missing a value after {}",
            op.as_str()
        ));
    }
    compare(path, op, parse_value(raw_value))
}

/// Splits off `${...}` (or a bare path up to the first space) from the start.
fn split_path(text: &str) -> Option<(&str, &str)> {
    if text.starts_with("${") {
        let end = text.find('}')?;
        return Some((&text[..=end], &text[end + 1..]));
    }
    let end = text.find(char::is_whitespace)?;
    Some((&text[..end], &text[end..]))
}

/// Splits off the operator. Word operators must be followed by a space or the end.
fn split_op(text: &str) -> Option<(Op, &str)> {
    Op::ALL.iter().find_map(|(op, name)| {
        let rest = text.strip_prefix(name)?;
        let is_word = name.chars().all(char::is_alphabetic);
        if is_word && !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            return None;
        }
        Some((*op, rest))
    })
}

fn parse_value(raw: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(raw) {
        return v;
    }
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| raw.strip_prefix(*q).and_then(|s| s.strip_suffix(*q)))
        .unwrap_or(raw);
    Value::String(unquoted.to_string())
}
