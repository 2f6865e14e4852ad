//! The deployment update policy (`policies.update`, core-spec 9.2): how a new version of a
//! long-running job replaces the old one. Parsed and checked when the manifest is, so a
//! deployment never starts from a policy it would have to guess at (the original quietly
//! turned an unknown strategy into `rolling`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::manifest::ValidationError;

/// How changed agents are rolled out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateStrategy {
    /// Replace changed agents `max_parallel` at a time.
    #[default]
    Rolling,
    /// Replace a few agents first and wait for promotion (or `auto_promote`).
    Canary,
    /// Start the new version beside the old one and switch over.
    BlueGreen,
}

impl UpdateStrategy {
    /// `blue_green` is accepted for `blue-green`, as the original did.
    pub fn parse(s: &str) -> Option<UpdateStrategy> {
        match s.replace('_', "-").as_str() {
            "rolling" => Some(UpdateStrategy::Rolling),
            "canary" => Some(UpdateStrategy::Canary),
            "blue-green" => Some(UpdateStrategy::BlueGreen),
            _ => None,
        }
    }
}

/// What "healthy" means while a deployment progresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheck {
    /// The service health checks of the new version's instances.
    #[default]
    Checks,
    /// The states of the new version's agents.
    AgentStates,
}

/// `policies.update` with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdatePolicy {
    pub strategy: UpdateStrategy,
    /// Agents replaced at a time (at least one, or a rollout would never progress).
    pub max_parallel: u64,
    /// Agents replaced first as canaries.
    pub canary: u64,
    pub min_healthy_ms: u64,
    pub healthy_deadline_ms: u64,
    pub progress_deadline_ms: u64,
    pub health_check: HealthCheck,
    pub auto_promote: bool,
    pub auto_revert: bool,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            strategy: UpdateStrategy::Rolling,
            max_parallel: 1,
            canary: 0,
            min_healthy_ms: 10_000,
            healthy_deadline_ms: 300_000,
            progress_deadline_ms: 600_000,
            health_check: HealthCheck::Checks,
            auto_promote: false,
            auto_revert: false,
        }
    }
}

impl UpdatePolicy {
    /// Parses the object at `path` (`policies.update`), reporting every problem.
    pub fn parse(value: &Value, path: &str) -> Result<UpdatePolicy, Vec<ValidationError>> {
        let Value::Object(map) = value else {
            return Err(vec![ValidationError::new(
                path,
                format!("{path} must be an object, got {value}"),
            )]);
        };
        let mut r = Reader {
            map,
            path,
            errs: Vec::new(),
        };
        let d = UpdatePolicy::default();
        let policy = UpdatePolicy {
            strategy: r.choice(
                "strategy",
                UpdateStrategy::parse,
                "rolling, canary or blue-green",
            ),
            max_parallel: r.int("max_parallel", 1).unwrap_or(d.max_parallel),
            canary: r.int("canary", 0).unwrap_or(d.canary),
            min_healthy_ms: r.int("min_healthy_ms", 0).unwrap_or(d.min_healthy_ms),
            healthy_deadline_ms: r
                .int("healthy_deadline_ms", 1)
                .unwrap_or(d.healthy_deadline_ms),
            progress_deadline_ms: r
                .int("progress_deadline_ms", 0)
                .unwrap_or(d.progress_deadline_ms),
            health_check: r.choice("health_check", health_check, "checks or agent_states"),
            auto_promote: r.bool("auto_promote").unwrap_or(d.auto_promote),
            auto_revert: r.bool("auto_revert").unwrap_or(d.auto_revert),
        };
        if policy.strategy == UpdateStrategy::Canary && policy.auto_promote && policy.canary == 0 {
            r.push(
                "auto_promote",
                format!("{path}.auto_promote requires canary > 0 for canary deployments"),
            );
        }
        if r.errs.is_empty() {
            Ok(policy)
        } else {
            Err(r.errs)
        }
    }
}

fn health_check(s: &str) -> Option<HealthCheck> {
    match s {
        "checks" => Some(HealthCheck::Checks),
        "agent_states" => Some(HealthCheck::AgentStates),
        _ => None,
    }
}

/// Typed reads of one object's fields, collecting errors with their paths.
struct Reader<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
    errs: Vec<ValidationError>,
}

impl Reader<'_> {
    fn push(&mut self, key: &str, message: String) {
        self.errs.push(ValidationError::new(
            format!("{}.{key}", self.path),
            message,
        ));
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// An integer of at least `min` (0: non-negative, 1: positive).
    fn int(&mut self, key: &str, min: u64) -> Option<u64> {
        let v = self.get(key)?;
        match v.as_u64().filter(|n| *n >= min) {
            Some(n) => Some(n),
            None => {
                let what = if min == 0 { "non-negative" } else { "positive" };
                let message = format!("{}.{key} must be a {what} integer, got {v}", self.path);
                self.push(key, message);
                None
            }
        }
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                let message = format!("{}.{key} must be a boolean, got {v}", self.path);
                self.push(key, message);
                None
            }
        }
    }

    /// A name from a fixed set; absent means the default.
    fn choice<T: Default>(&mut self, key: &str, parse: fn(&str) -> Option<T>, expected: &str) -> T {
        let Some(v) = self.get(key) else {
            return T::default();
        };
        if let Some(t) = v.as_str().and_then(parse) {
            return t;
        }
        let message = format!(
            "{}.{key} has unsupported value {v}; expected {expected}",
            self.path
        );
        self.push(key, message);
        T::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<UpdatePolicy, Vec<ValidationError>> {
        UpdatePolicy::parse(&v, "policies.update")
    }

    #[test]
    fn defaults_and_every_field() {
        assert_eq!(parse(json!({})), Ok(UpdatePolicy::default()));
        let p = parse(json!({"strategy": "canary", "max_parallel": 2, "canary": 1,
            "min_healthy_ms": 250, "healthy_deadline_ms": 5000, "progress_deadline_ms": 10000,
            "health_check": "agent_states", "auto_promote": false, "auto_revert": true}))
        .expect("valid");
        assert_eq!(
            (
                p.strategy,
                p.max_parallel,
                p.canary,
                p.health_check,
                p.auto_revert
            ),
            (UpdateStrategy::Canary, 2, 1, HealthCheck::AgentStates, true)
        );
        assert_eq!(
            parse(json!({"strategy": "blue_green"})).map(|p| p.strategy),
            Ok(UpdateStrategy::BlueGreen)
        );
    }

    #[test]
    fn errors_name_the_field() {
        let errs = parse(
            json!({"strategy": "big-bang", "max_parallel": 0, "canary": -1,
            "healthy_deadline_ms": 0, "health_check": "vibes", "auto_revert": "yes"}),
        )
        .expect_err("invalid");
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "policies.update.strategy",
                "policies.update.max_parallel",
                "policies.update.canary",
                "policies.update.healthy_deadline_ms",
                "policies.update.health_check",
                "policies.update.auto_revert",
            ]
        );
        assert_eq!(
            errs[0].message,
            "policies.update.strategy has unsupported value \"big-bang\"; expected rolling, canary or blue-green"
        );
        assert_eq!(
            parse(json!([])).expect_err("not an object")[0].path,
            "policies.update"
        );
    }

    #[test]
    fn auto_promote_needs_canaries_in_a_canary_deployment() {
        let errs =
            parse(json!({"strategy": "canary", "auto_promote": true})).expect_err("no canary");
        assert_eq!(
            errs,
            [ValidationError::new(
                "policies.update.auto_promote",
                "policies.update.auto_promote requires canary > 0 for canary deployments"
            )]
        );
        assert!(parse(json!({"strategy": "canary", "auto_promote": true, "canary": 1})).is_ok());
        assert!(parse(json!({"strategy": "rolling", "auto_promote": true})).is_ok());
    }
}
