//! The normalised policy shape shared by restart and reschedule.

use serde::{Deserialize, Serialize};

/// Which policy: restarting an agent in place, or moving it to another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    Restart,
    Reschedule,
}

impl PolicyKind {
    /// The key under `policies` (`restart` / `reschedule`).
    pub fn key(self) -> &'static str {
        match self {
            PolicyKind::Restart => "restart",
            PolicyKind::Reschedule => "reschedule",
        }
    }
}

/// How the delay grows with the attempt number `n` (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayFunction {
    /// `delay_ms` every time.
    #[default]
    Constant,
    /// `delay_ms × 2^(n−1)`.
    Exponential,
    /// `delay_ms × fib(n)` with fib 1, 1, 2, 3, 5, ...
    Fibonacci,
}

impl DelayFunction {
    /// Unknown names fall back to constant, as the original did.
    pub fn parse(s: &str) -> DelayFunction {
        match s {
            "exponential" => DelayFunction::Exponential,
            "fibonacci" => DelayFunction::Fibonacci,
            _ => DelayFunction::Constant,
        }
    }
}

/// What a restart policy does once its attempts are used up inside the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartMode {
    /// Give up (fail the job, pause for review, or hand over to reschedule).
    #[default]
    Fail,
    /// Wait until the oldest attempt leaves the window, then restart.
    Delay,
}

/// The recovery policy in force for a job (core-spec 6.8, after `auto` is resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryMode {
    LocalRestart,
    ClusterRecover,
    ManualRecover,
}

/// One normalised restart or reschedule policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePolicy {
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    pub enabled: bool,
    /// Attempts allowed inside one `interval_ms` window.
    pub attempts: u32,
    /// Sliding window; 0 means attempts never expire.
    pub interval_ms: u64,
    pub delay_ms: u64,
    pub delay_function: DelayFunction,
    /// Never below `delay_ms`.
    pub max_delay_ms: u64,
    /// Only meaningful for restart.
    pub mode: RestartMode,
    /// Reschedule only: ignore `attempts`. Always false for restart.
    pub unlimited: bool,
}
