//! Placement constraints (core-spec 7.3): `{attribute, operator, value}` tested against a node.
//!
//! Unlike the original, an unknown operator is refused when the job is read (with its path)
//! instead of silently matching no node, and the comparison operators Nomad offers (`<`,
//! `version`, `distinct_hosts`, ...) are there too.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fields::split_list;
use super::node::NodeCandidate;
use super::resources::DemandError;

/// A constraint operator; each variant lists the spellings it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// `==`, `=`, `is`; on a list attribute: the list holds the value.
    Equal,
    /// `!=`, `not`; true when the attribute is missing.
    NotEqual,
    /// `<`, `<=`, `>`, `>=`: numeric when both sides are numbers, else lexical.
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    /// `contains`, `set_contains`, `contains_all`, `set_contains_all`: every listed value present.
    Contains,
    /// `contains_any`, `set_contains_any`.
    ContainsAny,
    /// `in`: the attribute is one of the listed values; `not_in` the opposite.
    In,
    NotIn,
    /// `exists`, `is_set` / `not_exists`, `is_not_set`.
    Exists,
    NotExists,
    /// `version`, `semver`: value like `>= 1.2, < 2`; dotted numeric comparison.
    Version,
    /// Job-wide: no two tasks of the job on one node (the attribute is ignored).
    DistinctHosts,
}

impl Operator {
    pub fn parse(s: &str) -> Option<Operator> {
        use Operator::*;
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "==" | "=" | "is" => Equal,
            "!=" | "not" => NotEqual,
            "<" => Less,
            "<=" => LessOrEqual,
            ">" => Greater,
            ">=" => GreaterOrEqual,
            "contains" | "set_contains" | "contains_all" | "set_contains_all" => Contains,
            "contains_any" | "set_contains_any" => ContainsAny,
            "in" => In,
            "not_in" => NotIn,
            "exists" | "is_set" => Exists,
            "not_exists" | "is_not_set" => NotExists,
            "version" | "semver" => Version,
            "distinct_hosts" => DistinctHosts,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        use Operator::*;
        match self {
            Equal => "==",
            NotEqual => "!=",
            Less => "<",
            LessOrEqual => "<=",
            Greater => ">",
            GreaterOrEqual => ">=",
            Contains => "contains",
            ContainsAny => "contains_any",
            In => "in",
            NotIn => "not_in",
            Exists => "exists",
            NotExists => "not_exists",
            Version => "version",
            DistinctHosts => "distinct_hosts",
        }
    }
}

/// One normalised constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Constraint {
    /// `${...}` stripped, lowercased (`os`, `capabilities`, `node.name`, `meta.rack`).
    pub attribute: String,
    pub operator: Operator,
    /// Lists are kept comma-separated.
    pub value: String,
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operator {
            Operator::DistinctHosts => write!(f, "distinct_hosts"),
            Operator::Exists | Operator::NotExists => {
                write!(f, "{} {}", self.attribute, self.operator.as_str())
            }
            op => write!(f, "{} {} {}", self.attribute, op.as_str(), self.value),
        }
    }
}

impl Constraint {
    pub fn new(attribute: &str, operator: Operator, value: &str) -> Constraint {
        let attribute = normalise_attribute(attribute);
        let value = if matches!(attribute.as_str(), "capabilities" | "capability") {
            split_list(value)
                .map(canonical_capability)
                .collect::<Vec<_>>()
                .join(",")
        } else {
            value.trim().to_string()
        };
        Constraint {
            attribute,
            operator,
            value,
        }
    }

    /// Reads a constraint list: a list of objects or bare capability strings, one object, or
    /// an object of `attribute: value` equalities (`{"os": "linux"}`).
    pub fn parse_list(value: &Value, path: &str) -> Result<Vec<Constraint>, DemandError> {
        match value {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Constraint::parse_one(item, &format!("{path}[{i}]")))
                .collect(),
            Value::Object(map) if !is_single(map) => map
                .iter()
                .map(|(k, v)| {
                    Ok(Constraint::new(
                        k,
                        Operator::Equal,
                        &text(v, &format!("{path}.{k}"))?,
                    ))
                })
                .collect(),
            other => Ok(vec![Constraint::parse_one(other, path)?]),
        }
    }

    fn parse_one(value: &Value, path: &str) -> Result<Constraint, DemandError> {
        let map = match value {
            Value::String(s) if !s.trim().is_empty() => {
                return Ok(Constraint::new("capabilities", Operator::Contains, s));
            }
            Value::Object(map) => map,
            _ => {
                return Err(DemandError::new(
                    path,
                    "constraint must be an object or a capability name",
                ));
            }
        };
        let pick = |keys: &[&'static str]| super::fields::first(map, keys);
        let operator = match pick(&["operator", "operand"]) {
            None => Operator::Equal,
            Some((k, Value::String(s))) => Operator::parse(s).ok_or_else(|| {
                DemandError::new(
                    format!("{path}.{k}"),
                    format!("unsupported constraint operator {s:?}"),
                )
            })?,
            Some((k, _)) => {
                return Err(DemandError::new(
                    format!("{path}.{k}"),
                    "operator must be a string",
                ));
            }
        };
        let attribute = match pick(&["attribute", "target", "l_target"]) {
            Some((k, v)) => text(v, &format!("{path}.{k}"))?,
            None if operator == Operator::DistinctHosts => String::new(),
            None => {
                return Err(DemandError::new(
                    format!("{path}.attribute"),
                    "attribute is required",
                ));
            }
        };
        let value = match pick(&["value", "r_target"]) {
            Some((k, v)) => text(v, &format!("{path}.{k}"))?,
            None => String::new(),
        };
        Ok(Constraint::new(&attribute, operator, &value))
    }

    pub fn is_distinct_hosts(&self) -> bool {
        self.operator == Operator::DistinctHosts
    }

    /// Whether `node` satisfies this constraint. `distinct_hosts` always does here: it depends
    /// on the other allocations and is checked by the planner.
    pub fn matches(&self, node: &NodeCandidate) -> bool {
        use Operator::*;
        let found = lookup(node, &self.attribute);
        let Some(have) = found else {
            return matches!(self.operator, NotEqual | NotIn | NotExists | DistinctHosts);
        };
        let want: Vec<&str> = split_list(&self.value).collect();
        let holds = |v: &str| have.iter().any(|h| h.eq_ignore_ascii_case(v));
        match self.operator {
            Equal => holds(&self.value),
            NotEqual => !holds(&self.value),
            Less => compare(&have, &self.value).is_some_and(Ordering::is_lt),
            LessOrEqual => compare(&have, &self.value).is_some_and(Ordering::is_le),
            Greater => compare(&have, &self.value).is_some_and(Ordering::is_gt),
            GreaterOrEqual => compare(&have, &self.value).is_some_and(Ordering::is_ge),
            Contains => want.iter().all(|v| holds(v)),
            ContainsAny => want.iter().any(|v| holds(v)),
            In => have
                .iter()
                .any(|h| want.iter().any(|v| h.eq_ignore_ascii_case(v))),
            NotIn => !have
                .iter()
                .any(|h| want.iter().any(|v| h.eq_ignore_ascii_case(v))),
            Exists => !have.is_empty(),
            NotExists => have.is_empty(),
            Version => have
                .first()
                .is_some_and(|h| version_matches(h, &self.value)),
            DistinctHosts => true,
        }
    }
}

/// An object that is one constraint (has an attribute or operator key) rather than a map of them.
fn is_single(map: &Map<String, Value>) -> bool {
    ["attribute", "target", "l_target", "operator", "operand"]
        .iter()
        .any(|k| map.contains_key(*k))
}

fn text(v: &Value, path: &str) -> Result<String, DemandError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| text(item, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.join(",")),
        _ => Err(DemandError::new(
            path,
            "must be a string, number, boolean or list",
        )),
    }
}

fn normalise_attribute(attribute: &str) -> String {
    let a = attribute.trim();
    let a = a
        .strip_prefix("${")
        .and_then(|a| a.strip_suffix('}'))
        .unwrap_or(a);
    a.trim().to_ascii_lowercase()
}

/// The attribute's values on `node` (one for scalars); `None` when the node lacks it.
fn lookup(node: &NodeCandidate, attribute: &str) -> Option<Vec<String>> {
    let one = |s: &str| Some(vec![s.to_string()]);
    let attr = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| node.attributes.get(*k))
            .map(|v| vec![v.clone()])
    };
    match attribute {
        "node" | "node.name" | "node.unique.name" => one(&node.name),
        "status" | "node.status" => one(node.status.as_str()),
        "node_role" | "role" | "node.role" => {
            attr(&["node_role", "role"]).or_else(|| one("runtime"))
        }
        "gpu" | "node.gpu" => attr(&["gpu"]).or_else(|| {
            one(
                if node
                    .devices
                    .iter()
                    .any(|d| d.kind.eq_ignore_ascii_case("gpu"))
                {
                    "true"
                } else {
                    "false"
                },
            )
        }),
        "profiles" | "profile" | "execution_profile" => Some(node.execution_profiles.clone()),
        "capabilities" | "capability" => Some(capabilities(node)),
        "os" | "platform.os" => attr(&["os", "platform.os", "family"]),
        "arch" | "architecture" | "cpu.arch" => attr(&["arch", "architecture", "cpu.arch"]),
        other => {
            let bare = ["attr.", "meta.", "node.meta.", "node."]
                .iter()
                .find_map(|p| other.strip_prefix(p));
            attr(&[other]).or_else(|| bare.and_then(|b| attr(&[b])))
        }
    }
}

/// Node and device capabilities, lowercased with `_` read as `-` (as the original normalised).
fn capabilities(node: &NodeCandidate) -> Vec<String> {
    let device_caps = node.devices.iter().flat_map(|d| d.capabilities.iter());
    let mut caps: Vec<String> = node
        .capabilities
        .iter()
        .chain(device_caps)
        .map(|c| canonical_capability(c))
        .collect();
    caps.sort();
    caps.dedup();
    caps
}

/// The form capabilities are compared in.
pub fn canonical_capability(c: &str) -> String {
    c.trim().to_lowercase().replace('_', "-")
}

/// Compares the attribute's first value with `value`: numerically when both parse, else as text.
fn compare(have: &[String], value: &str) -> Option<Ordering> {
    let h = have.first()?;
    match (h.trim().parse::<f64>(), value.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(h.as_str().cmp(value)),
    }
}

/// `value` is a comma list of `<op> <version>` clauses; all must hold.
fn version_matches(have: &str, value: &str) -> bool {
    let Some(have) = parse_version(have) else {
        return false;
    };
    split_list(value).all(|clause| {
        let op_end = clause
            .find(|c: char| c.is_ascii_digit() || c == 'v')
            .unwrap_or(clause.len());
        let (op, ver) = clause.split_at(op_end);
        let Some(want) = parse_version(ver) else {
            return false;
        };
        let ord = cmp_versions(&have, &want);
        match op.trim() {
            "" | "=" | "==" => ord.is_eq(),
            "!=" => !ord.is_eq(),
            "<" => ord.is_lt(),
            "<=" => ord.is_le(),
            ">" => ord.is_gt(),
            ">=" => ord.is_ge(),
            _ => false,
        }
    })
}

fn parse_version(s: &str) -> Option<Vec<u64>> {
    let s = s.trim().trim_start_matches('v');
    let core = s.split(['-', '+']).next()?;
    core.split('.').map(|p| p.parse().ok()).collect()
}

fn cmp_versions(a: &[u64], b: &[u64]) -> Ordering {
    (0..a.len().max(b.len()))
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| !o.is_eq())
        .unwrap_or(Ordering::Equal)
}
