//! An instance in the registry, and the fold of the three service events into the registry of
//! one job. The whole registry is the union over active jobs (built by the job projection).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::health::{Health, HealthStatus};
use super::spec::ServiceSpec;

/// One registered instance: the resolved declaration plus where and whose it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// `<job_id>:<agent_id|job>:<name>` unless the declaration set an id.
    pub id: String,
    pub service: ServiceSpec,
    pub status: HealthStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    pub job_id: String,
    /// `None` for a job-level service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_agent_id: Option<String>,
    /// The node that hosts it and checks it; `None` means any node may check it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_version: Option<String>,
    /// `primary` (or empty) instances are discoverable; others only when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Who registers a declaration, and where.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub job_id: String,
    pub agent_id: Option<String>,
    pub node: Option<String>,
    pub bundle_root: Option<String>,
    pub deployment_role: Option<String>,
    /// The deployment the registering job or agent runs for (fills the deployment fields;
    /// its role applies unless `deployment_role` is set).
    pub deployment: Option<crate::domain::job::JobDeployment>,
    pub now_ms: i64,
}

impl ServiceRecord {
    /// A new instance of an already resolved declaration. It starts `warning` when it has
    /// checks (nothing has been seen yet) and `passing` when it has none.
    pub fn new(spec: ServiceSpec, at: &Registration) -> ServiceRecord {
        let id = spec.id.clone().unwrap_or_else(|| {
            format!(
                "{}:{}:{}",
                at.job_id,
                at.agent_id.as_deref().unwrap_or("job"),
                spec.name
            )
        });
        let status = if spec.checks.is_empty() {
            HealthStatus::Passing
        } else {
            HealthStatus::Warning
        };
        ServiceRecord {
            id,
            status,
            health: None,
            job_id: at.job_id.clone(),
            agent_id: at.agent_id.clone(),
            source_agent_id: at.agent_id.clone(),
            node: at.node.clone(),
            bundle_root: at.bundle_root.clone(),
            deployment_key: at.deployment.as_ref().map(|d| d.deployment_key.clone()),
            deployment_id: at.deployment.as_ref().map(|d| d.deployment_id.clone()),
            deployment_version: at.deployment.as_ref().map(|d| d.version.to_string()),
            deployment_role: at
                .deployment_role
                .clone()
                .or_else(|| at.deployment.as_ref().map(|d| d.role.as_str().to_string())),
            last_check_at: None,
            created_at: at.now_ms,
            updated_at: at.now_ms,
            service: spec,
        }
    }

    /// Whether discovery shows it without being asked for candidates.
    pub fn is_primary(&self) -> bool {
        self.deployment_role
            .as_deref()
            .is_none_or(|r| r.is_empty() || r == "primary")
    }

    /// The published shape: the declaration's fields with the record's beside them.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::to_value(&self.service).unwrap_or(Value::Null);
        if let (Value::Object(map), Ok(Value::Object(record))) =
            (&mut out, serde_json::to_value(self))
        {
            for (k, v) in record {
                if k != "service" {
                    map.insert(k, v);
                }
            }
            map.insert(
                "origin".into(),
                Value::String(self.service.origin_or_default().as_str().into()),
            );
        }
        out
    }
}

/// One job's instances by id.
pub type Registry = BTreeMap<String, ServiceRecord>;

/// `service_registered`: a re-registration (an agent moved) replaces the instance.
pub fn registered(registry: &mut Registry, record: &ServiceRecord) {
    registry.insert(record.id.clone(), record.clone());
}

/// `service_deregistered`.
pub fn deregistered(registry: &mut Registry, service_id: &str) {
    registry.remove(service_id);
}

/// `service_health_changed` at `at_ms`.
pub fn health_changed(registry: &mut Registry, service_id: &str, health: &Health, at_ms: i64) {
    if let Some(r) = registry.get_mut(service_id) {
        r.status = health.status;
        r.health = Some(health.clone());
        r.last_check_at = Some(at_ms);
        r.updated_at = at_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::service::spec::{CheckSpec, Probe};

    fn at(agent: Option<&str>) -> Registration {
        Registration {
            job_id: "j1".into(),
            agent_id: agent.map(str::to_string),
            node: Some("n1".into()),
            now_ms: 5,
            ..Registration::default()
        }
    }

    #[test]
    fn ids_and_initial_status() {
        let plain = ServiceRecord::new(ServiceSpec::named("api"), &at(None));
        assert_eq!(plain.id, "j1:job:api");
        assert_eq!(plain.status, HealthStatus::Passing);
        let mut checked = ServiceSpec::named("llm");
        checked.checks.push(CheckSpec {
            name: "tcp".into(),
            timeout_ms: 1,
            interval_ms: 1,
            required: true,
            failures_before_critical: 1,
            address: None,
            port: None,
            probe: Probe::Tcp,
        });
        let r = ServiceRecord::new(checked, &at(Some("w")));
        assert_eq!(r.id, "j1:w:llm");
        assert_eq!(r.status, HealthStatus::Warning);
        let json = r.to_json();
        assert_eq!(json["name"], "llm");
        assert_eq!(json["origin"], "internal");
        assert_eq!(json["status"], "warning");
        assert_eq!(json["node"], "n1");
    }

    #[test]
    fn given_an_instance_when_health_changes_and_it_is_deregistered_then_the_registry_follows() {
        let mut reg = Registry::new();
        let r = ServiceRecord::new(ServiceSpec::named("api"), &at(None));
        registered(&mut reg, &r);
        let health = Health {
            status: HealthStatus::Critical,
            checks: vec![],
        };
        health_changed(&mut reg, &r.id, &health, 9);
        assert_eq!(reg[&r.id].status, HealthStatus::Critical);
        assert_eq!(reg[&r.id].last_check_at, Some(9));
        deregistered(&mut reg, &r.id);
        assert!(reg.is_empty());
    }

    #[test]
    fn a_record_survives_the_event_encoding() {
        let r = ServiceRecord::new(ServiceSpec::named("api"), &at(Some("w")));
        let bytes = rmp_serde::to_vec_named(&r).expect("encodes");
        let back: ServiceRecord = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(back, r);
    }
}
