//! Node-local service requirements (core-spec 1.3 `requires_services`, 9.1): an agent may only
//! land on a node where a passing instance of each required service runs, e.g. a model server
//! it talks to over localhost.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fields::{lower_str, str_list};
use super::resources::DemandError;

/// A service the agent needs on its own node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceRequirement {
    pub name: String,
    /// Every tag must be on the instance.
    pub tags: Vec<String>,
    /// `internal` or `external`; any when absent.
    pub origin: Option<String>,
}

/// A passing service instance on a node, as the service registry reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    pub name: String,
    pub tags: Vec<String>,
    pub origin: Option<String>,
}

impl ServiceRequirement {
    /// The placement side of a validated `requires_services` entry.
    pub fn of(spec: &crate::domain::service::ServiceSpec) -> ServiceRequirement {
        ServiceRequirement {
            name: spec.name.clone(),
            tags: spec.tags.clone(),
            origin: spec.origin.map(|o| o.as_str().to_string()),
        }
    }

    /// Whether `instance` satisfies this requirement (the caller lists only passing ones).
    pub fn met_by(&self, instance: &ServiceInstance) -> bool {
        instance.name == self.name
            && self.tags.iter().all(|t| instance.tags.contains(t))
            && self
                .origin
                .as_ref()
                .is_none_or(|o| instance.origin.as_deref().unwrap_or("internal") == o)
    }

    /// Reads `requires_services`: a list of names or objects, one object, or an object keyed by
    /// name. Entries with `required: false` do not constrain placement and are dropped.
    pub fn parse_list(value: &Value, path: &str) -> Result<Vec<ServiceRequirement>, DemandError> {
        let entries: Vec<(String, Value)> = match value {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), v.clone()))
                .collect(),
            Value::Object(map) if map.contains_key("name") => {
                vec![(path.to_string(), value.clone())]
            }
            Value::Object(map) => map
                .iter()
                .map(|(name, spec)| {
                    let mut obj = spec.as_object().cloned().unwrap_or_default();
                    obj.insert("name".into(), Value::String(name.clone()));
                    (format!("{path}.{name}"), Value::Object(obj))
                })
                .collect(),
            _ => {
                return Err(DemandError::new(
                    path,
                    "requires_services must be a list or an object",
                ));
            }
        };
        let mut out = Vec::new();
        for (p, entry) in entries {
            if let Some(req) = parse_one(&entry, &p)? {
                out.push(req);
            }
        }
        Ok(out)
    }
}

fn parse_one(entry: &Value, path: &str) -> Result<Option<ServiceRequirement>, DemandError> {
    let map = match entry {
        Value::String(name) if !name.trim().is_empty() => {
            return Ok(Some(ServiceRequirement {
                name: name.trim().into(),
                tags: Vec::new(),
                origin: None,
            }));
        }
        Value::Object(map) => map,
        _ => {
            return Err(DemandError::new(
                path,
                "must be a service name or an object",
            ));
        }
    };
    if required(map, path)? == Some(false) {
        return Ok(None);
    }
    let name = match map.get("name").and_then(Value::as_str) {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => {
            return Err(DemandError::new(
                format!("{path}.name"),
                "name must be a service name",
            ));
        }
    };
    Ok(Some(ServiceRequirement {
        name,
        tags: str_list(map, "tags", path, false)?,
        origin: lower_str(map, "origin", path)?,
    }))
}

fn required(map: &Map<String, Value>, path: &str) -> Result<Option<bool>, DemandError> {
    match map.get("required") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(DemandError::new(
            format!("{path}.required"),
            "required must be a boolean",
        )),
    }
}
