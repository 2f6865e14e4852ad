//! Built-in policies (core-spec 8 table): long-running jobs (service, system) get a short
//! window and keep trying; batch jobs get a day-long window and a single reschedule.

use super::model::{DelayFunction, LifecyclePolicy, PolicyKind, RecoveryMode, RestartMode};
use crate::domain::manifest::JobType;

const TEN_MINUTES_MS: u64 = 600_000;
const DAY_MS: u64 = 86_400_000;

/// The default `kind` policy for a job of `job_type` under the effective `recovery` mode.
pub fn defaults(kind: PolicyKind, job_type: JobType, recovery: RecoveryMode) -> LifecyclePolicy {
    let long_running = match job_type {
        JobType::Service | JobType::System => true,
        JobType::Batch | JobType::Sysbatch => false,
    };
    match kind {
        PolicyKind::Restart => restart(long_running, recovery),
        PolicyKind::Reschedule => reschedule(long_running, recovery),
    }
}

fn restart(long_running: bool, recovery: RecoveryMode) -> LifecyclePolicy {
    let base = LifecyclePolicy {
        kind: PolicyKind::Restart,
        enabled: true,
        attempts: 3,
        interval_ms: if long_running { TEN_MINUTES_MS } else { DAY_MS },
        delay_ms: 1000,
        delay_function: DelayFunction::Exponential,
        max_delay_ms: 30_000,
        mode: RestartMode::Fail,
        unlimited: false,
    };
    match recovery {
        RecoveryMode::ManualRecover => LifecyclePolicy {
            enabled: false,
            attempts: 0,
            interval_ms: DAY_MS,
            ..base
        },
        RecoveryMode::LocalRestart if long_running => LifecyclePolicy {
            mode: RestartMode::Delay,
            ..base
        },
        RecoveryMode::LocalRestart | RecoveryMode::ClusterRecover => base,
    }
}

fn reschedule(long_running: bool, recovery: RecoveryMode) -> LifecyclePolicy {
    let disabled = LifecyclePolicy {
        kind: PolicyKind::Reschedule,
        enabled: false,
        attempts: 0,
        interval_ms: DAY_MS,
        delay_ms: 5000,
        delay_function: DelayFunction::Constant,
        max_delay_ms: 5000,
        mode: RestartMode::Fail,
        unlimited: false,
    };
    match (recovery, long_running) {
        (RecoveryMode::ManualRecover | RecoveryMode::LocalRestart, _) => disabled,
        (RecoveryMode::ClusterRecover, true) => LifecyclePolicy {
            enabled: true,
            unlimited: true,
            interval_ms: TEN_MINUTES_MS,
            delay_function: DelayFunction::Exponential,
            max_delay_ms: 300_000,
            ..disabled
        },
        (RecoveryMode::ClusterRecover, false) => LifecyclePolicy {
            enabled: true,
            attempts: 1,
            ..disabled
        },
    }
}
