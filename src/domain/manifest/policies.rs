//! `policies` checks (core-spec 1.5 and 8): the policy objects stay JSON for the scheduler and
//! lifecycle code, but a typo (`recovery_mode: "atuo"`, `attempts: -1`) fails at submit time.

use serde_json::{Map, Value};

use super::error::{Errors, join, kind};
use super::fields::{expect_bool, expect_list, expect_non_negative_int, expect_one_of, opt_str};
use super::model::JobType;
use crate::domain::policy::UpdatePolicy;

const RECOVERY_MODES: [&str; 4] = ["auto", "local_restart", "cluster_recover", "manual_recover"];
const STRATEGIES: [&str; 2] = ["binpack", "spread"];
const DELAY_FUNCTIONS: [&str; 3] = ["constant", "exponential", "fibonacci"];
const RESTART_MODES: [&str; 2] = ["fail", "delay"];

/// Validates job-level `policies`; returns the job type it names, with the field's path.
pub(crate) fn check_job_policies(
    policies: Option<&Value>,
    errs: &mut Errors,
) -> Option<(JobType, String)> {
    let map = as_object(policies, "policies", errs)?;
    expect_one_of(map, "recovery_mode", &RECOVERY_MODES, "policies", errs);
    expect_one_of(map, "scheduler_strategy", &STRATEGIES, "policies", errs);
    expect_max_restart_attempts(map, errs);
    expect_constraints(map, "policies", errs);
    let mut job_type = job_type_field(map, "policies", errs);
    if let Some(scheduler) = as_object(map.get("scheduler"), "policies.scheduler", errs) {
        expect_one_of(
            scheduler,
            "strategy",
            &STRATEGIES,
            "policies.scheduler",
            errs,
        );
        expect_constraints(scheduler, "policies.scheduler", errs);
        job_type = job_type.or_else(|| job_type_field(scheduler, "policies.scheduler", errs));
    }
    check_lifecycle(map, "policies", errs);
    job_type
}

/// `policies.update`, typed, when declared (core-spec 9.2).
pub(crate) fn update_policy(policies: Option<&Value>, errs: &mut Errors) -> Option<UpdatePolicy> {
    let update = policies?.get("update").filter(|v| !v.is_null())?;
    match UpdatePolicy::parse(update, "policies.update") {
        Ok(p) => Some(p),
        Err(found) => {
            for e in found {
                errs.push(e.path, e.message);
            }
            None
        }
    }
}

/// Validates a node's `policies` (`restart`, `reschedule`, `scheduler.preferred_node`).
pub(crate) fn check_node_policies(policies: Option<&Value>, path: &str, errs: &mut Errors) {
    let Some(map) = as_object(policies, path, errs) else {
        return;
    };
    check_lifecycle(map, path, errs);
    let scheduler_path = join(path, "scheduler");
    if let Some(scheduler) = as_object(map.get("scheduler"), &scheduler_path, errs) {
        opt_str(
            scheduler.get("preferred_node"),
            &join(&scheduler_path, "preferred_node"),
            errs,
        );
    }
}

fn as_object<'a>(
    value: Option<&'a Value>,
    path: &str,
    errs: &mut Errors,
) -> Option<&'a Map<String, Value>> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => {
            errs.push(path, format!("must be an object, got {}", kind(other)));
            None
        }
    }
}

fn job_type_field(
    map: &Map<String, Value>,
    parent: &str,
    errs: &mut Errors,
) -> Option<(JobType, String)> {
    let path = join(parent, "job_type");
    let s = opt_str(map.get("job_type"), &path, errs)?;
    match JobType::parse(s) {
        Some(t) => Some((t, path)),
        None => {
            errs.push(
                path,
                format!("unsupported job_type {s:?}; expected batch, service, system or sysbatch"),
            );
            None
        }
    }
}

/// `restart` and `reschedule`: counts are non-negative integers, names come from fixed sets.
fn check_lifecycle(map: &Map<String, Value>, parent: &str, errs: &mut Errors) {
    for kind_key in ["restart", "reschedule"] {
        let path = join(parent, kind_key);
        let Some(policy) = as_object(map.get(kind_key), &path, errs) else {
            continue;
        };
        for key in ["attempts", "interval_ms", "delay_ms", "max_delay_ms"] {
            expect_non_negative_int(policy, key, &path, errs);
        }
        expect_one_of(policy, "delay_function", &DELAY_FUNCTIONS, &path, errs);
        expect_bool(policy, "enabled", &path, errs);
        if kind_key == "restart" {
            expect_one_of(policy, "mode", &RESTART_MODES, &path, errs);
        } else {
            expect_bool(policy, "unlimited", &path, errs);
        }
    }
}

/// Legacy attempt count: a non-negative integer or a string holding one.
fn expect_max_restart_attempts(map: &Map<String, Value>, errs: &mut Errors) {
    let key = "max_agent_restart_attempts";
    let ok = match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().parse::<u64>().is_ok(),
        Some(v) => v.as_u64().is_some(),
    };
    if !ok {
        errs.push(
            join("policies", key),
            format!("{key} must be a non-negative integer"),
        );
    }
}

/// Job-wide placement constraints: a list of constraint objects/strings, or one object.
fn expect_constraints(map: &Map<String, Value>, parent: &str, errs: &mut Errors) {
    if map.get("constraints").is_some_and(Value::is_object) {
        return;
    }
    expect_list(map, "constraints", parent, errs);
}
