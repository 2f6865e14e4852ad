//! Trigger filters: which emitted events start a trigger's job.
//!
//! A filter is a JSON object from a key to a condition. The keys `event_type` and `source`
//! read the event's own fields; any other key is a dotted path into the payload (a leading
//! `payload.` is allowed). Every filter must hold. A condition is `null` (always true), a
//! list (the value is one of them), an operator object (`prefix`, `suffix`, `contains`,
//! `in`, `exists`, `eq`, `ne`, `gt`, `gte`, `lt`, `lte`; several in one object must all
//! hold), or any other value (equality, where `"5"` equals `5` as the original compared
//! strings). Unknown operators are refused when the trigger is created, not ignored later.

use serde_json::{Map, Value};

use super::error::SpecError;

/// One condition on one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Any,
    Equals(Value),
    OneOf(Vec<Value>),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Exists(bool),
    NotEquals(Value),
    Greater(f64),
    GreaterOrEqual(f64),
    Less(f64),
    LessOrEqual(f64),
}

/// All the filters of a trigger, in key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filters {
    /// `(key as written, conditions that must all hold)`.
    rules: Vec<(String, Vec<Condition>)>,
    /// The filters as written, kept for views and for re-parsing history.
    raw: Map<String, Value>,
}

const OPERATORS: &str = "prefix, suffix, contains, in, exists, eq, ne, gt, gte, lt, lte";

impl Filters {
    /// Parses the `filters` object found at `field`.
    pub fn parse(field: &str, value: &Value) -> Result<Filters, SpecError> {
        let raw = match value {
            Value::Null => return Ok(Filters::default()),
            Value::Object(o) => o.clone(),
            other => {
                return Err(SpecError::new(
                    field,
                    format!("filters must be an object of path to condition, got {other}"),
                ));
            }
        };
        let mut rules = Vec::with_capacity(raw.len());
        for (key, cond) in &raw {
            let path = format!("{field}.{key}");
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(SpecError::new(
                    &path,
                    "filter paths need non-empty segments",
                ));
            }
            rules.push((key.clone(), parse_condition(&path, cond)?));
        }
        Ok(Filters { rules, raw })
    }

    /// The filters as written.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// True when every filter holds for an event of `event_type` from `source` with `payload`.
    pub fn matches(&self, event_type: &str, source: &str, payload: &Value) -> bool {
        self.rules.iter().all(|(key, conditions)| {
            let actual = match key.as_str() {
                "event_type" => Some(Value::String(event_type.to_string())),
                "source" => Some(Value::String(source.to_string())),
                path => lookup(payload, path.strip_prefix("payload.").unwrap_or(path)).cloned(),
            };
            conditions.iter().all(|c| holds(c, actual.as_ref()))
        })
    }
}

fn parse_condition(path: &str, cond: &Value) -> Result<Vec<Condition>, SpecError> {
    match cond {
        Value::Null => Ok(vec![Condition::Any]),
        Value::Array(items) => Ok(vec![Condition::OneOf(items.clone())]),
        Value::Object(ops) if !ops.is_empty() => ops
            .iter()
            .map(|(op, arg)| parse_operator(&format!("{path}.{op}"), op, arg))
            .collect(),
        Value::Object(_) => Err(SpecError::new(
            path,
            format!("an operator object needs one of: {OPERATORS}"),
        )),
        other => Ok(vec![Condition::Equals(other.clone())]),
    }
}

fn parse_operator(path: &str, op: &str, arg: &Value) -> Result<Condition, SpecError> {
    let text = || {
        arg.as_str()
            .map(str::to_string)
            .ok_or_else(|| SpecError::new(path, format!("{op} needs a string, got {arg}")))
    };
    let number = || {
        arg.as_f64()
            .ok_or_else(|| SpecError::new(path, format!("{op} needs a number, got {arg}")))
    };
    Ok(match op {
        "prefix" => Condition::Prefix(text()?),
        "suffix" => Condition::Suffix(text()?),
        "contains" => Condition::Contains(text()?),
        "in" => match arg {
            Value::Array(items) => Condition::OneOf(items.clone()),
            _ => return Err(SpecError::new(path, format!("in needs a list, got {arg}"))),
        },
        "exists" => match arg {
            Value::Bool(b) => Condition::Exists(*b),
            _ => {
                return Err(SpecError::new(
                    path,
                    format!("exists needs true or false, got {arg}"),
                ));
            }
        },
        "eq" => Condition::Equals(arg.clone()),
        "ne" => Condition::NotEquals(arg.clone()),
        "gt" => Condition::Greater(number()?),
        "gte" => Condition::GreaterOrEqual(number()?),
        "lt" => Condition::Less(number()?),
        "lte" => Condition::LessOrEqual(number()?),
        other => {
            return Err(SpecError::new(
                path,
                format!("unknown filter operator {other:?} (expected one of: {OPERATORS})"),
            ));
        }
    })
}

/// Follows a dotted path through objects (and list indexes, `items.0.id`).
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |v, seg| match v {
        Value::Object(o) => o.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A value as text for string operators and loose equality (`"5"` equals `5`).
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn loose_eq(actual: &Value, expected: &Value) -> bool {
    if let (Some(a), Some(b)) = (actual.as_f64(), expected.as_f64()) {
        return a == b;
    }
    actual == expected
        || (!actual.is_object() && !actual.is_array() && as_text(actual) == as_text(expected))
}

/// A number, or a string that parses as one (payloads often carry numbers as text).
fn as_number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn holds(condition: &Condition, actual: Option<&Value>) -> bool {
    let present = actual.filter(|v| !v.is_null());
    let text = || {
        present
            .filter(|v| v.is_string() || v.is_number())
            .map(as_text)
    };
    let num = || present.and_then(as_number);
    match condition {
        Condition::Any => true,
        Condition::Exists(want) => present.is_some() == *want,
        Condition::Equals(e) => {
            present.is_some_and(|a| loose_eq(a, e)) || (e.is_null() && present.is_none())
        }
        Condition::NotEquals(e) => !holds(&Condition::Equals(e.clone()), actual),
        Condition::OneOf(items) => present.is_some_and(|a| items.iter().any(|e| loose_eq(a, e))),
        Condition::Prefix(p) => text().is_some_and(|t| t.starts_with(p.as_str())),
        Condition::Suffix(s) => text().is_some_and(|t| t.ends_with(s.as_str())),
        Condition::Contains(s) => match present {
            // On a list, `contains` asks for an element; on text, for a substring.
            Some(Value::Array(items)) => items.iter().any(|i| as_text(i) == *s),
            _ => text().is_some_and(|t| t.contains(s.as_str())),
        },
        Condition::Greater(n) => num().is_some_and(|a| a > *n),
        Condition::GreaterOrEqual(n) => num().is_some_and(|a| a >= *n),
        Condition::Less(n) => num().is_some_and(|a| a < *n),
        Condition::LessOrEqual(n) => num().is_some_and(|a| a <= *n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(v: Value) -> Filters {
        Filters::parse("trigger.filters", &v).expect("valid filters")
    }

    fn order() -> Value {
        json!({"order": {"id": "ord-17", "total": 120.5, "region": "eu-west", "qty": "3",
                         "tags": ["rush", "gift"]}, "customer": null})
    }

    #[test]
    fn every_operator_on_dotted_paths() {
        let yes = |v: Value| {
            assert!(
                filters(v.clone()).matches("order.created", "api", &order()),
                "{v}"
            )
        };
        let no = |v: Value| {
            assert!(
                !filters(v.clone()).matches("order.created", "api", &order()),
                "{v}"
            )
        };
        yes(json!({}));
        yes(json!({"order.id": "ord-17"}));
        no(json!({"order.id": "ord-18"}));
        yes(json!({"payload.order.id": "ord-17"}));
        yes(json!({"order.region": {"prefix": "eu-"}}));
        no(json!({"order.region": {"prefix": "us-"}}));
        yes(json!({"order.region": {"suffix": "-west"}}));
        yes(json!({"order.region": {"contains": "west"}}));
        yes(json!({"order.tags": {"contains": "gift"}}));
        no(json!({"order.tags": {"contains": "gif"}}));
        yes(json!({"order.region": ["us-east", "eu-west"]}));
        yes(json!({"order.region": {"in": ["eu-west"]}}));
        no(json!({"order.region": {"in": ["us-east"]}}));
        yes(json!({"order.id": {"exists": true}, "order.missing": {"exists": false}}));
        no(json!({"customer": {"exists": true}}));
        yes(json!({"order.total": {"gt": 100, "lte": 120.5}}));
        no(json!({"order.total": {"gt": 120.5}}));
        yes(json!({"order.total": {"gte": 120.5, "lt": 121}}));
        yes(json!({"order.qty": {"eq": 3}}));
        yes(json!({"order.qty": 3}));
        yes(json!({"order.qty": {"ne": 4}}));
        no(json!({"order.qty": {"ne": "3"}}));
        yes(json!({"order.tags.0": "rush"}));
        yes(json!({"event_type": {"prefix": "order."}, "source": "api"}));
        no(json!({"source": "cli"}));
        yes(json!({"order.whatever": null}));
        no(json!({"order.missing": {"gt": 1}}));
    }

    #[test]
    fn bad_filters_name_their_path() {
        let err = |v: Value| Filters::parse("trigger.filters", &v).expect_err("refused");
        assert_eq!(
            err(json!({"a.b": {"startswith": "x"}})).field,
            "trigger.filters.a.b.startswith"
        );
        assert_eq!(
            err(json!({"n": {"gt": "ten"}})).field,
            "trigger.filters.n.gt"
        );
        assert_eq!(err(json!({"n": {"in": 3}})).field, "trigger.filters.n.in");
        assert_eq!(err(json!({"n": {}})).field, "trigger.filters.n");
        assert_eq!(err(json!({"a..b": 1})).field, "trigger.filters.a..b");
        assert_eq!(err(json!([1])).field, "trigger.filters");
    }
}
