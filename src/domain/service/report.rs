//! Preflight's verdict on `required_services` as a `validation.report/v1` (core-spec 9.1).
//! The runtime gathers what it saw per requirement; this turns it into the report.

use serde_json::{Value, json};

use super::health::{Health, HealthStatus};
use super::spec::ServiceSpec;

pub const REPORT_VERSION: &str = "validation.report/v1";
/// The error a job fails to start with, followed by `: <report json>`.
pub const NOT_MET: &str = "service_requirements_not_met";

/// What preflight saw for one requirement.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// It was checked directly (it had checks, an address, a port or a url).
    Checked(Health),
    /// The registry had this many passing instances with the name and tags.
    Registry { passing: usize },
    /// The registry could not be read.
    RegistryUnavailable(String),
}

/// One requirement: its index in `required_services`, the (resolved) entry, what was seen.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub index: usize,
    pub spec: ServiceSpec,
    pub seen: Seen,
}

impl Requirement {
    /// Met, or excused: optional requirements never fail preflight.
    pub fn ok(&self) -> bool {
        !self.spec.required
            || match &self.seen {
                Seen::Checked(h) => h.status != HealthStatus::Critical,
                Seen::Registry { passing } => *passing > 0,
                Seen::RegistryUnavailable(_) => false,
            }
    }

    fn issue(&self) -> Value {
        let name = &self.spec.name;
        let (code, message, help, actual) = match &self.seen {
            Seen::Checked(h) => {
                let failed: Vec<&str> = h
                    .checks
                    .iter()
                    .filter(|c| c.status == HealthStatus::Critical && c.required)
                    .map(|c| c.name.as_str())
                    .collect();
                (
                    "service.health_failed",
                    format!(
                        "required service {name} is not healthy (failed: {})",
                        failed.join(", ")
                    ),
                    "start the service or fix its address, port and checks",
                    json!(h.status.as_str()),
                )
            }
            Seen::Registry { .. } => (
                "service.required_missing",
                format!("no passing instance of required service {name} is registered"),
                "run a job that declares the service, and wait for its checks to pass",
                json!("missing"),
            ),
            Seen::RegistryUnavailable(e) => (
                "service.registry_unavailable",
                format!("the service registry could not be read to find {name}: {e}"),
                "retry when the store is reachable",
                json!("unavailable"),
            ),
        };
        let path = format!("required_services[{}]", self.index);
        json!({
            "code": code, "message": message, "help": help, "severity": "error",
            "location": {"source": "services", "path": path,
                         "pointer": format!("/required_services/{}", self.index)},
            "expected": "passing", "actual": actual, "service": name,
        })
    }

    fn result(&self) -> Value {
        let mut out =
            json!({"name": self.spec.name, "required": self.spec.required, "ok": self.ok()});
        match &self.seen {
            Seen::Checked(h) => {
                out["source"] = json!("checks");
                out["status"] = json!(h.status.as_str());
                out["health"] = serde_json::to_value(h).unwrap_or(Value::Null);
            }
            Seen::Registry { passing } => {
                out["source"] = json!("registry");
                out["passing_instances"] = json!(passing);
            }
            Seen::RegistryUnavailable(e) => {
                out["source"] = json!("registry");
                out["error"] = json!(e);
            }
        }
        out
    }
}

/// The report; `ok` when every requirement is met or optional.
pub fn report(requirements: &[Requirement]) -> Value {
    let issues: Vec<Value> = requirements
        .iter()
        .filter(|r| !r.ok())
        .map(Requirement::issue)
        .collect();
    let errors: Vec<Value> = issues.iter().map(|i| i["message"].clone()).collect();
    let ok = issues.is_empty();
    json!({
        "version": REPORT_VERSION, "ok": ok, "status": if ok { "passed" } else { "failed" },
        "error_count": issues.len(), "errors": errors, "issues": issues,
        "results": requirements.iter().map(Requirement::result).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, required: bool, seen: Seen) -> Requirement {
        let mut spec = ServiceSpec::named(name);
        spec.required = required;
        Requirement {
            index: 0,
            spec,
            seen,
        }
    }

    #[test]
    fn a_missing_required_service_fails_with_its_name() {
        let r = report(&[req("llm", true, Seen::Registry { passing: 0 })]);
        assert_eq!(r["ok"], false);
        assert_eq!(r["status"], "failed");
        assert_eq!(r["error_count"], 1);
        assert_eq!(r["issues"][0]["code"], "service.required_missing");
        assert_eq!(r["issues"][0]["location"]["path"], "required_services[0]");
        assert!(r["errors"][0].as_str().is_some_and(|m| m.contains("llm")));
    }

    #[test]
    fn optional_and_warning_requirements_pass() {
        let warning = Health {
            status: HealthStatus::Warning,
            checks: vec![],
        };
        let r = report(&[
            req("a", false, Seen::Registry { passing: 0 }),
            req("b", true, Seen::Checked(warning)),
            req("c", true, Seen::Registry { passing: 2 }),
        ]);
        assert_eq!(r["ok"], true);
        assert_eq!(r["status"], "passed");
        assert_eq!(r["results"].as_array().map(Vec::len), Some(3));
    }
}
