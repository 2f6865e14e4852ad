//! Preflight (core-spec 9.1): before a job starts, each `required_services` entry is checked
//! directly when it says where the service is (checks, address, port or url), else looked up
//! in the registry (passing instances with its name and tags). The verdict is the pure
//! `domain::service::report`.

use serde_json::Value;

use super::{checks, registry};
use crate::domain::service::report::{self, Requirement, Seen};
use crate::domain::service::{HealthStatus, ServiceSpec};
use crate::store::Store;

/// `Ok(())` when every requirement is met (or optional); else the failed report.
pub async fn run(store: Option<&Store>, required: &[ServiceSpec]) -> Result<(), Value> {
    if required.is_empty() {
        return Ok(());
    }
    let verdict = check(store, required).await;
    if verdict["ok"] == Value::Bool(true) {
        Ok(())
    } else {
        Err(verdict)
    }
}

/// The report for `required`, whatever it says (`CheckServices` answers with it).
pub async fn check(store: Option<&Store>, required: &[ServiceSpec]) -> Value {
    let mut seen = Vec::new();
    let registered = match store {
        Some(s) => registry::all(s).await.map_err(|e| e.to_string()),
        None => Ok(Vec::new()),
    };
    for (index, spec) in required.iter().enumerate() {
        let what = if spec.directly_checkable() {
            let mut direct = spec.clone();
            direct.checks = checks::preflight_checks(spec);
            Seen::Checked(checks::check_service(&direct, None).await)
        } else {
            match &registered {
                Err(e) => Seen::RegistryUnavailable(e.clone()),
                Ok(all) => Seen::Registry {
                    passing: all
                        .iter()
                        .filter(|r| {
                            r.status == HealthStatus::Passing
                                && r.service.name == spec.name
                                && spec.tags.iter().all(|t| r.service.tags.contains(t))
                                && spec
                                    .origin
                                    .is_none_or(|o| r.service.origin_or_default() == o)
                        })
                        .count(),
                },
            }
        };
        seen.push(Requirement {
            index,
            spec: spec.clone(),
            seen: what,
        });
    }
    report::report(&seen)
}
