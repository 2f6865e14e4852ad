//! Discovery (core-spec 9.1): the filters of `list`, `resolve` (= passing only), and what
//! placement needs to know: which passing instances each node hosts.

use std::collections::BTreeMap;

use serde_json::Value;

use super::health::HealthStatus;
use super::record::ServiceRecord;
use crate::domain::scheduler::ServiceInstance;

/// A discovery request. Every field set must match; `tags` must all be on the instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceQuery {
    pub name: Option<String>,
    pub node: Option<String>,
    pub job_id: Option<String>,
    pub agent_id: Option<String>,
    pub status: Option<HealthStatus>,
    /// `deployment_role` (or `role`); asking for one also shows candidates.
    pub role: Option<String>,
    pub tags: Vec<String>,
    pub passing_only: bool,
    pub include_candidates: bool,
}

impl ServiceQuery {
    /// Reads a `query_json` object; empty strings mean "no filter" (what the CLI sends for
    /// options left out).
    pub fn from_json(v: &Value) -> Result<ServiceQuery, String> {
        let map = match v {
            Value::Null => return Ok(ServiceQuery::default()),
            Value::Object(m) => m,
            other => return Err(format!("query must be a JSON object, got {other}")),
        };
        let text = |k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let flag = |k: &str| map.get(k).and_then(Value::as_bool).unwrap_or(false);
        let status = match text("status") {
            None => None,
            Some(s) => Some(HealthStatus::parse(&s).ok_or_else(|| {
                format!("status must be passing, warning or critical, got {s:?}")
            })?),
        };
        let tags = match map.get("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(t)) if t.is_empty() => Vec::new(),
            Some(Value::String(t)) => vec![t.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            Some(other) => return Err(format!("tags must be a list, got {other}")),
        };
        Ok(ServiceQuery {
            name: text("name"),
            node: text("node"),
            job_id: text("job_id"),
            agent_id: text("agent_id"),
            status,
            role: text("deployment_role").or_else(|| text("role")),
            tags,
            passing_only: flag("passing_only"),
            include_candidates: flag("include_candidates"),
        })
    }

    pub fn matches(&self, r: &ServiceRecord) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        eq(&self.name, Some(r.service.name.as_str()))
            && eq(&self.node, r.node.as_deref())
            && eq(&self.job_id, Some(r.job_id.as_str()))
            && eq(&self.agent_id, r.agent_id.as_deref())
            && self.status.is_none_or(|s| s == r.status)
            && self.tags.iter().all(|t| r.service.tags.contains(t))
            && (!self.passing_only || r.status == HealthStatus::Passing)
            && match &self.role {
                Some(role) => r.deployment_role.as_deref().unwrap_or("primary") == role,
                None => self.include_candidates || r.is_primary(),
            }
    }

    /// The matching instances, ordered by name then id.
    pub fn select<'a>(
        &self,
        records: impl IntoIterator<Item = &'a ServiceRecord>,
    ) -> Vec<&'a ServiceRecord> {
        let mut out: Vec<&ServiceRecord> =
            records.into_iter().filter(|r| self.matches(r)).collect();
        out.sort_by(|a, b| (&a.service.name, &a.id).cmp(&(&b.service.name, &b.id)));
        out
    }
}

/// The passing instances each node hosts, as the scheduler reads them (instances with no
/// node are not on any node and cannot satisfy a node-scoped requirement).
pub fn passing_by_node<'a>(
    records: impl IntoIterator<Item = &'a ServiceRecord>,
) -> BTreeMap<String, Vec<ServiceInstance>> {
    let mut out: BTreeMap<String, Vec<ServiceInstance>> = BTreeMap::new();
    for r in records {
        if r.status != HealthStatus::Passing {
            continue;
        }
        if let Some(node) = r.node.as_deref().filter(|n| !n.is_empty()) {
            out.entry(node.to_string())
                .or_default()
                .push(ServiceInstance {
                    name: r.service.name.clone(),
                    tags: r.service.tags.clone(),
                    origin: Some(r.service.origin_or_default().as_str().to_string()),
                });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::scheduler::ServiceRequirement;
    use crate::domain::service::record::Registration;
    use crate::domain::service::spec::ServiceSpec;

    fn rec(
        name: &str,
        node: &str,
        status: HealthStatus,
        role: Option<&str>,
        tags: &[&str],
    ) -> ServiceRecord {
        let mut spec = ServiceSpec::named(name);
        spec.tags = tags.iter().map(|t| t.to_string()).collect();
        let mut r = ServiceRecord::new(
            spec,
            &Registration {
                job_id: format!("job-{node}"),
                node: Some(node.into()),
                deployment_role: role.map(str::to_string),
                ..Registration::default()
            },
        );
        r.status = status;
        r
    }

    fn names(q: &ServiceQuery, all: &[ServiceRecord]) -> Vec<String> {
        q.select(all)
            .iter()
            .map(|r| format!("{}@{}", r.service.name, r.node.as_deref().unwrap_or("")))
            .collect()
    }

    #[test]
    fn filters_combine_and_candidates_hide_unless_asked() {
        use HealthStatus::*;
        let all = vec![
            rec("api", "a", Passing, None, &["http", "v1"]),
            rec("api", "b", Critical, None, &["http"]),
            rec("api", "c", Passing, Some("canary"), &["http"]),
            rec("db", "a", Passing, Some("primary"), &[]),
        ];
        let q = |v| ServiceQuery::from_json(&v).expect("valid query");
        assert_eq!(names(&q(json!({})), &all), ["api@a", "api@b", "db@a"]);
        assert_eq!(
            names(&q(json!({"name": "api", "passing_only": true})), &all),
            ["api@a"]
        );
        assert_eq!(names(&q(json!({"tags": ["http", "v1"]})), &all), ["api@a"]);
        assert_eq!(
            names(&q(json!({"include_candidates": true, "name": "api"})), &all).len(),
            3
        );
        assert_eq!(names(&q(json!({"role": "canary"})), &all), ["api@c"]);
        assert_eq!(names(&q(json!({"status": "critical"})), &all), ["api@b"]);
        assert_eq!(
            names(&q(json!({"node": "a", "name": "", "tags": "http"})), &all),
            ["api@a"]
        );
        assert!(ServiceQuery::from_json(&json!({"status": "meh"})).is_err());
    }

    #[test]
    fn node_requirements_see_only_passing_instances_on_that_node() {
        use HealthStatus::*;
        let all = vec![
            rec("llm", "a", Passing, None, &["gpu"]),
            rec("llm", "b", Warning, None, &["gpu"]),
        ];
        let by_node = passing_by_node(&all);
        let req = ServiceRequirement {
            name: "llm".into(),
            tags: vec!["gpu".into()],
            origin: Some("internal".into()),
        };
        assert!(by_node["a"].iter().any(|i| req.met_by(i)));
        assert!(!by_node.contains_key("b"));
    }
}
