//! Evaluating a [`Condition`] against a context document. Total: a missing field or a type
//! mismatch makes the comparison false (or true for `!=`), never an error.

use serde_json::Value;

use super::condition::{Condition, Op};

impl Condition {
    /// Whether the condition holds for `ctx`, normally the document built by
    /// [`route_context`](super::route_context).
    pub fn matches(&self, ctx: &Value) -> bool {
        match self {
            Condition::Always => true,
            Condition::All(cs) => cs.iter().all(|c| c.matches(ctx)),
            Condition::Any(cs) => cs.iter().any(|c| c.matches(ctx)),
            Condition::Not(c) => !c.matches(ctx),
            Condition::Compare { path, op, value } => compare(lookup(ctx, path), *op, value),
        }
    }
}

/// Follows a dotted path: object segments are keys, list segments are integer indices.
pub fn lookup<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(ctx, |node, segment| match node {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn compare(left: Option<&Value>, op: Op, right: &Value) -> bool {
    let left = left.unwrap_or(&Value::Null);
    match op {
        Op::Eq => loose_eq(left, right),
        Op::Ne => !loose_eq(left, right),
        Op::Gt => numeric(left, right, |a, b| a > b),
        Op::Ge => numeric(left, right, |a, b| a >= b),
        Op::Lt => numeric(left, right, |a, b| a < b),
        Op::Le => numeric(left, right, |a, b| a <= b),
        Op::Contains => contains(left, right),
        Op::In => matches!(right, Value::Array(items) if items.iter().any(|i| loose_eq(left, i))),
        Op::Exists => !left.is_null(),
    }
}

/// JSON equality, plus: numbers compare by value (`"5" == 5`, `5.0 == 5`), and a string equals
/// a boolean with the same spelling (`"true" == true`). Conditions are often written in the
/// string `expr` form, where the author cannot control how the field was typed.
fn loose_eq(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x == y;
    }
    match (a, b) {
        (Value::String(s), Value::Bool(v)) | (Value::Bool(v), Value::String(s)) => {
            s == if *v { "true" } else { "false" }
        }
        _ => false,
    }
}

fn numeric(a: &Value, b: &Value, cmp: fn(f64, f64) -> bool) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => false,
    }
}

/// A number, or a string that parses as one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::String(h), Value::String(n)) => h.contains(n.as_str()),
        (Value::Array(items), n) => items.iter().any(|i| loose_eq(i, n)),
        (Value::Object(map), Value::String(k)) => map.contains_key(k),
        _ => false,
    }
}
