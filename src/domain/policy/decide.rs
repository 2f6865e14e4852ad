//! The attempt decision over a sliding window (core-spec 8): attempts whose time is less than
//! `interval_ms` before now are active; fewer active than allowed means go, with a delay that
//! grows by the policy's function. Attempts are charged when scheduled, not when they succeed.

use serde::{Deserialize, Serialize};

use super::model::{DelayFunction, LifecyclePolicy, RestartMode};

/// One scheduled restart or reschedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What to do about a failed agent under its restart policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RestartDecision {
    /// Restart after `delay_ms` (at `eligible_at_ms`); record the attempt now.
    Restart {
        attempt: u32,
        delay_ms: u64,
        eligible_at_ms: u64,
        attempts_remaining: Option<u32>,
    },
    /// Attempts used up but mode `delay`: restart when the window frees a slot.
    Wait { until_ms: u64, reason: String },
    /// Give up; `wait_until_ms` says when a slot would free, if ever.
    Exhausted {
        reason: String,
        wait_until_ms: Option<u64>,
    },
}

/// What to do about an agent that must move to another node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RescheduleDecision {
    Reschedule {
        attempt: u32,
        delay_ms: u64,
        eligible_at_ms: u64,
        attempts_remaining: Option<u32>,
    },
    Exhausted {
        reason: String,
        wait_until_ms: Option<u64>,
    },
}

/// The delay before attempt `attempt` (1-based), capped at `max_delay_ms`; never overflows.
pub fn delay_for(policy: &LifecyclePolicy, attempt: u32) -> u64 {
    let n = attempt.max(1);
    let raw = match policy.delay_function {
        DelayFunction::Constant => policy.delay_ms,
        DelayFunction::Exponential => {
            let factor = 1u64.checked_shl(n - 1).unwrap_or(u64::MAX);
            policy.delay_ms.saturating_mul(factor)
        }
        DelayFunction::Fibonacci => policy.delay_ms.saturating_mul(fibonacci(n)),
    };
    raw.min(policy.max_delay_ms.max(policy.delay_ms))
}

fn fibonacci(n: u32) -> u64 {
    let (mut a, mut b) = (1u64, 1u64);
    for _ in 2..n {
        (a, b) = (b, a.saturating_add(b));
    }
    b
}

/// The common part: `Ok((attempt, delay, remaining))` or `Err((reason, wait_until))`.
type Verdict = Result<(u32, u64, Option<u32>), (String, Option<u64>)>;

fn verdict(policy: &LifecyclePolicy, history: &[Attempt], now_ms: u64, what: &str) -> Verdict {
    if !policy.enabled {
        return Err((format!("{what} policy is disabled"), None));
    }
    let active: Vec<u64> = history
        .iter()
        .map(|a| a.at_ms)
        .filter(|&at| in_window(policy, at, now_ms))
        .collect();
    let used = u32::try_from(active.len()).unwrap_or(u32::MAX);
    if policy.unlimited || used < policy.attempts {
        let attempt = used.saturating_add(1);
        let remaining = (!policy.unlimited).then(|| policy.attempts - attempt);
        return Ok((attempt, delay_for(policy, attempt), remaining));
    }
    let wait_until = match policy.interval_ms {
        0 => None,
        interval => active
            .iter()
            .min()
            .map(|oldest| oldest.saturating_add(interval)),
    };
    Err((format!("{what} attempts exhausted"), wait_until))
}

fn in_window(policy: &LifecyclePolicy, at_ms: u64, now_ms: u64) -> bool {
    policy.interval_ms == 0 || now_ms.saturating_sub(at_ms) < policy.interval_ms
}

/// Decides a restart from the agent's restart history.
pub fn decide_restart(
    policy: &LifecyclePolicy,
    history: &[Attempt],
    now_ms: u64,
) -> RestartDecision {
    match verdict(policy, history, now_ms, "restart") {
        Ok((attempt, delay_ms, attempts_remaining)) => RestartDecision::Restart {
            attempt,
            delay_ms,
            eligible_at_ms: now_ms.saturating_add(delay_ms),
            attempts_remaining,
        },
        Err((reason, Some(until_ms))) if policy.enabled && policy.mode == RestartMode::Delay => {
            RestartDecision::Wait { until_ms, reason }
        }
        Err((reason, wait_until_ms)) => RestartDecision::Exhausted {
            reason,
            wait_until_ms,
        },
    }
}

/// Decides a reschedule from the agent's reschedule history.
pub fn decide_reschedule(
    policy: &LifecyclePolicy,
    history: &[Attempt],
    now_ms: u64,
) -> RescheduleDecision {
    match verdict(policy, history, now_ms, "reschedule") {
        Ok((attempt, delay_ms, attempts_remaining)) => RescheduleDecision::Reschedule {
            attempt,
            delay_ms,
            eligible_at_ms: now_ms.saturating_add(delay_ms),
            attempts_remaining,
        },
        Err((reason, wait_until_ms)) => RescheduleDecision::Exhausted {
            reason,
            wait_until_ms,
        },
    }
}

/// Appends an attempt and drops the ones that left the window. Unlike the original's fixed cap
/// of 50 entries, nothing still counting towards `attempts` is ever dropped; with no window
/// (`interval_ms` 0) only the last `max(attempts, 50)` are kept.
pub fn record_attempt(history: &mut Vec<Attempt>, attempt: Attempt, policy: &LifecyclePolicy) {
    let now = attempt.at_ms;
    history.push(attempt);
    if policy.interval_ms > 0 {
        history.retain(|a| in_window(policy, a.at_ms, now));
    } else {
        let keep = (policy.attempts as usize).max(50);
        let drop = history.len().saturating_sub(keep);
        history.drain(..drop);
    }
}
