//! Check results and the health they add up to (core-spec 9.1).
//!
//! `failures_before_critical` is applied here: a check that failed fewer consecutive times than
//! its threshold reports `passing` with `suppressed_status: "critical"` and
//! `transient_failure: true`, so one lost packet does not move a service off its nodes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::CheckSpec;

/// A service's or a check's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Passing,
    Warning,
    Critical,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Passing => "passing",
            HealthStatus::Warning => "warning",
            HealthStatus::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<HealthStatus> {
        match s {
            "passing" => Some(HealthStatus::Passing),
            "warning" => Some(HealthStatus::Warning),
            "critical" => Some(HealthStatus::Critical),
            _ => None,
        }
    }
}

/// What one run of one check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    pub status: HealthStatus,
    pub duration_ms: u64,
    /// What was checked and seen (secrets redacted by the runner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The status the check really had when the threshold turned it into `passing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_status: Option<HealthStatus>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transient_failure: bool,
    /// Critical results in a row, this one included (what the next run's threshold counts).
    #[serde(default)]
    pub consecutive_failures: u32,
}

/// A service's health: the aggregate and the results it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub checks: Vec<CheckResult>,
}

/// None → passing; a required critical → critical; only optional criticals → warning.
pub fn aggregate(checks: &[CheckResult]) -> HealthStatus {
    let critical = |required| {
        checks
            .iter()
            .any(|c| c.status == HealthStatus::Critical && c.required == required)
    };
    if critical(true) {
        HealthStatus::Critical
    } else if critical(false) {
        HealthStatus::Warning
    } else {
        HealthStatus::Passing
    }
}

/// The health after a round of raw results: each result counted against the same check's
/// previous run and its threshold, then aggregated.
pub fn next_health(
    previous: Option<&Health>,
    specs: &[CheckSpec],
    raw: Vec<CheckResult>,
) -> Health {
    let checks: Vec<CheckResult> = raw
        .into_iter()
        .map(|r| {
            let before = previous
                .and_then(|h| h.checks.iter().find(|c| c.name == r.name))
                .map_or(0, |c| c.consecutive_failures);
            let threshold = specs
                .iter()
                .find(|s| s.name == r.name)
                .map_or(1, |s| s.failures_before_critical);
            apply_threshold(r, before, threshold)
        })
        .collect();
    Health {
        status: aggregate(&checks),
        checks,
    }
}

/// One result against its threshold, given the failures in a row before it.
pub fn apply_threshold(
    mut result: CheckResult,
    failures_before: u32,
    threshold: u32,
) -> CheckResult {
    if result.status != HealthStatus::Critical {
        result.consecutive_failures = 0;
        return result;
    }
    result.consecutive_failures = failures_before.saturating_add(1);
    if result.consecutive_failures < threshold {
        result.suppressed_status = Some(HealthStatus::Critical);
        result.transient_failure = true;
        result.status = HealthStatus::Passing;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: HealthStatus, required: bool) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: "tcp".into(),
            required,
            status,
            duration_ms: 1,
            details: None,
            error: None,
            suppressed_status: None,
            transient_failure: false,
            consecutive_failures: 0,
        }
    }

    fn spec(name: &str, threshold: u32) -> CheckSpec {
        CheckSpec {
            name: name.into(),
            timeout_ms: 100,
            interval_ms: 100,
            required: true,
            failures_before_critical: threshold,
            address: None,
            port: None,
            probe: super::super::spec::Probe::Tcp,
        }
    }

    #[test]
    fn aggregate_rules() {
        use HealthStatus::*;
        assert_eq!(aggregate(&[]), Passing);
        assert_eq!(aggregate(&[result("a", Critical, false)]), Warning);
        assert_eq!(
            aggregate(&[result("a", Critical, false), result("b", Critical, true)]),
            Critical
        );
        assert_eq!(aggregate(&[result("a", Passing, true)]), Passing);
    }

    #[test]
    fn given_a_threshold_of_two_when_one_failure_then_passing_is_reported_with_the_suppression() {
        let specs = [spec("tcp", 2)];
        let first = next_health(
            None,
            &specs,
            vec![result("tcp", HealthStatus::Critical, true)],
        );
        assert_eq!(first.status, HealthStatus::Passing);
        assert_eq!(
            first.checks[0].suppressed_status,
            Some(HealthStatus::Critical)
        );
        assert!(first.checks[0].transient_failure);
        // The second failure in a row crosses the threshold.
        let second = next_health(
            Some(&first),
            &specs,
            vec![result("tcp", HealthStatus::Critical, true)],
        );
        assert_eq!(second.status, HealthStatus::Critical);
        assert_eq!(second.checks[0].consecutive_failures, 2);
        assert!(!second.checks[0].transient_failure);
        // A pass resets the count.
        let third = next_health(
            Some(&second),
            &specs,
            vec![result("tcp", HealthStatus::Passing, true)],
        );
        assert_eq!(third.status, HealthStatus::Passing);
        let fourth = next_health(
            Some(&third),
            &specs,
            vec![result("tcp", HealthStatus::Critical, true)],
        );
        assert_eq!(fourth.status, HealthStatus::Passing);
    }

    #[test]
    fn a_threshold_of_one_reports_the_first_failure() {
        let out = next_health(
            None,
            &[spec("tcp", 1)],
            vec![result("tcp", HealthStatus::Critical, true)],
        );
        assert_eq!(out.status, HealthStatus::Critical);
    }
}
