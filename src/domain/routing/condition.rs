//! Edge conditions: parsed once when the manifest is validated, so a typo in a condition is a
//! submit-time error instead of an edge that silently never matches.
//!
//! Grammar (core-spec 2.4): `{}`/`null` is always true; `{"all":[...]}`, `{"any":[...]}`,
//! `{"not":{...}}` combine; `{"expr":"${dotted.path} OP value"}` and
//! `{"path":"...","op":OP,"value":v}` compare one field of the evaluation context.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::expr;

/// A parsed edge condition.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum Condition {
    /// `{}` or `null`: the edge always matches.
    #[default]
    Always,
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Compares the value at `path` (dot-separated; list indices are integers) with `value`.
    Compare {
        path: String,
        op: Op,
        value: Value,
    },
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// Substring of a string, member of a list, or key of an object.
    Contains,
    /// The field equals one member of the (list) value.
    In,
    /// The field is present and not null; takes no value.
    Exists,
}

impl Op {
    /// Every operator with its spelling, longest symbols first so `>=` wins over `>`.
    pub(crate) const ALL: [(Op, &'static str); 9] = [
        (Op::Eq, "=="),
        (Op::Ne, "!="),
        (Op::Ge, ">="),
        (Op::Le, "<="),
        (Op::Gt, ">"),
        (Op::Lt, "<"),
        (Op::Contains, "contains"),
        (Op::In, "in"),
        (Op::Exists, "exists"),
    ];

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(op, _)| *op)
    }

    pub fn as_str(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map(|(_, name)| *name)
            .unwrap_or("==")
    }
}

impl Condition {
    /// Parses the JSON grammar. The error says what is wrong, without a path: the caller
    /// knows where the condition sits.
    pub fn parse(value: &Value) -> Result<Condition, String> {
        match value {
            Value::Null => Ok(Condition::Always),
            Value::Object(map) if map.is_empty() => Ok(Condition::Always),
            Value::Object(map) => parse_object(map),
            other => Err(format!("a condition must be an object, got {other}")),
        }
    }

    /// The canonical JSON form (`expr` conditions are written in `path` form).
    pub fn to_value(&self) -> Value {
        match self {
            Condition::Always => json!({}),
            Condition::All(cs) => {
                json!({ "all": cs.iter().map(Condition::to_value).collect::<Vec<_>>() })
            }
            Condition::Any(cs) => {
                json!({ "any": cs.iter().map(Condition::to_value).collect::<Vec<_>>() })
            }
            Condition::Not(c) => json!({ "not": c.to_value() }),
            Condition::Compare {
                path,
                op: Op::Exists,
                ..
            } => json!({ "path": path, "op": "exists" }),
            Condition::Compare { path, op, value } => {
                json!({ "path": path, "op": op.as_str(), "value": value })
            }
        }
    }
}

fn parse_object(map: &Map<String, Value>) -> Result<Condition, String> {
    const FORMS: [&str; 5] = ["all", "any", "not", "expr", "path"];
    let present: Vec<&str> = FORMS
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    match present.as_slice() {
        ["all"] => parse_list(&map["all"], "all").map(Condition::All),
        ["any"] => parse_list(&map["any"], "any").map(Condition::Any),
        ["not"] => Condition::parse(&map["not"]).map(|c| Condition::Not(Box::new(c))),
        ["expr"] => match &map["expr"] {
            Value::String(s) => expr::parse(s),
            other => Err(format!("expr must be a string, got {other}")),
        },
        ["path"] => parse_path_form(map),
        [] => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            Err(format!(
                "unknown condition keys {keys:?}; expected one of all, any, not, expr, path"
            ))
        }
        several => Err(format!(
            "a condition must use exactly one of all, any, not, expr, path (found {several:?})"
        )),
    }
}

fn parse_list(value: &Value, key: &str) -> Result<Vec<Condition>, String> {
    let Value::Array(items) = value else {
        return Err(format!("{key} must be a list of conditions"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, c)| Condition::parse(c).map_err(|e| format!("{key}[{i}]: {e}")))
        .collect()
}

fn parse_path_form(map: &Map<String, Value>) -> Result<Condition, String> {
    let path = match &map["path"] {
        Value::String(s) => normalise_path(s)?,
        other => return Err(format!("path must be a string, got {other}")),
    };
    let op = match map.get("op") {
        None | Some(Value::Null) => Op::Eq,
        Some(Value::String(s)) => Op::parse(s).ok_or_else(|| unknown_op(s))?,
        Some(other) => return Err(format!("op must be a string, got {other}")),
    };
    let value = match (op, map.get("value")) {
        (Op::Exists, v) => v.cloned().unwrap_or(Value::Null),
        (_, Some(v)) => v.clone(),
        (_, None) => {
            return Err(format!(
                "condition on {path} with op {} requires a value",
                op.as_str()
            ));
        }
    };
    compare(path, op, value)
}

/// Builds a comparison, checking what can be checked without data.
pub(crate) fn compare(path: String, op: Op, value: Value) -> Result<Condition, String> {
    if op == Op::In && !value.is_array() {
        return Err(format!("op in requires a list value, got {value}"));
    }
    let value = if op == Op::Exists { Value::Null } else { value };
    Ok(Condition::Compare { path, op, value })
}

/// Strips an optional `${...}` wrapper and checks the path has no empty segment.
pub(crate) fn normalise_path(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let inner = trimmed
        .strip_prefix("${")
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(trimmed)
        .trim();
    if inner.is_empty() || inner.split('.').any(str::is_empty) {
        return Err(format!("invalid path {raw:?}"));
    }
    Ok(inner.to_string())
}

pub(crate) fn unknown_op(s: &str) -> String {
    format!("unsupported op {s:?}; expected ==, !=, >, >=, <, <=, contains, in or exists")
}

impl TryFrom<Value> for Condition {
    type Error = String;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Condition::parse(&value)
    }
}

impl From<Condition> for Value {
    fn from(c: Condition) -> Value {
        c.to_value()
    }
}
