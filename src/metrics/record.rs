//! The recording functions: one per thing worth counting, each a line at its call site.

use std::future::Future;
use std::time::{Duration, Instant};

use ::metrics::{counter, gauge, histogram};

use super::names::*;
use crate::domain::event::{EventEnvelope, JobEvent};
use crate::domain::job::{JobState, JobStatus};

/// Outcome labels of [`APPENDS_TOTAL`] / [`APPEND_DURATION_SECONDS`].
pub const APPEND_OUTCOMES: [&str; 5] =
    ["appended", "duplicate", "conflict", "stale_epoch", "error"];

/// The method label for calls to paths no service serves (keeps the label set bounded
/// whatever clients send).
pub const UNKNOWN_METHOD: &str = "unknown";

const LEASE_JOB: &str = "job";
const LEASE_LEADER: &str = "leader";
const HEALTH_CHECK: &str = "grpc.health.v1.Health/Check";

/// Creates every series whose labels are known up front, at zero.
pub(super) fn register_initial(pools: &[String]) {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for s in JobStatus::ALL {
        gauge!(JOBS, "status" => s.as_str()).set(0.0);
    }
    for s in JobStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
        let _ = histogram!(JOB_DURATION_SECONDS, "status" => s.as_str());
    }
    counter!(AGENT_MESSAGES_PROCESSED_TOTAL).absolute(0);
    counter!(AGENT_STEP_FAILURES_TOTAL).absolute(0);
    gauge!(QUEUED_MESSAGES).increment(0.0);
    gauge!(INFLIGHT_MESSAGES).increment(0.0);
    gauge!(OWNED_JOBS).increment(0.0);
    for pool in pools {
        for outcome in ["ok", "failed"] {
            counter!(EXECUTOR_RUNS_TOTAL, "pool" => pool.clone(), "outcome" => outcome).absolute(0);
        }
        let _ = histogram!(EXECUTOR_RUN_DURATION_SECONDS, "pool" => pool.clone());
    }
    for source in ["message", "event"] {
        counter!(DEAD_LETTERS_TOTAL, "source" => source).absolute(0);
    }
    for t in EVENT_TYPES {
        counter!(EVENTS_APPENDED_TOTAL, "event_type" => *t).absolute(0);
    }
    for o in APPEND_OUTCOMES {
        counter!(APPENDS_TOTAL, "outcome" => o).absolute(0);
        let _ = histogram!(APPEND_DURATION_SECONDS, "outcome" => o);
    }
    for kind in [LEASE_JOB, LEASE_LEADER] {
        counter!(LEASE_RENEWALS_TOTAL, "kind" => kind).absolute(0);
        counter!(LEASE_LOSSES_TOTAL, "kind" => kind).absolute(0);
    }
    counter!(LEADER_CHANGES_TOTAL).absolute(0);
    gauge!(IS_LEADER).set(0.0);
    // This node is alive; the node inventory overwrites it with the cluster's count.
    cluster_nodes(1);
    counter!(NODES_LOST_TOTAL).absolute(0);
    let (cpu, mem) = detect_node_resources();
    node_resources(cpu, mem);
    // Unknown until the first PING answers.
    gauge!(REDIS_UP).set(0.0);
    let _ = histogram!(REDIS_PING_SECONDS);
    counter!(GRPC_REQUESTS_TOTAL, "method" => HEALTH_CHECK, "code" => "OK").absolute(0);
    let _ = histogram!(GRPC_REQUEST_DURATION_SECONDS, "method" => HEALTH_CHECK);
    for status in ["passing", "warning", "critical"] {
        gauge!(SERVICES, "status" => status).set(0.0);
    }
    for t in ["tcp", "http", "grpc", "script"] {
        for status in ["passing", "critical"] {
            counter!(SERVICE_CHECKS_TOTAL, "type" => t, "status" => status).absolute(0);
        }
        counter!(SERVICE_CHECK_FAILURES_TOTAL, "type" => t).absolute(0);
        let _ = histogram!(SERVICE_CHECK_DURATION_SECONDS, "type" => t);
    }
    for status in crate::domain::deployment::DeploymentStatus::ALL {
        gauge!(DEPLOYMENTS, "status" => status.as_str()).set(0.0);
    }
    for outcome in [
        "successful",
        "failed",
        "reverted",
        "noop",
        "version_recorded",
    ] {
        counter!(DEPLOYMENT_ROLLOUTS_TOTAL, "outcome" => outcome).absolute(0);
        let _ = histogram!(DEPLOYMENT_ROLLOUT_DURATION_SECONDS, "outcome" => outcome);
    }
    counter!(DEPLOYMENT_REVERTS_TOTAL).absolute(0);
}

/// CPU cores available to this process and total memory (Linux `/proc/meminfo`; 0 elsewhere).
pub fn detect_node_resources() -> (f64, u64) {
    let cpu = std::thread::available_parallelism().map_or(0, |n| n.get()) as f64;
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024);
    (cpu, mem)
}

// ----------------------------------------------------------------------------------------
// Event store

/// One fenced append finished: its latency and outcome; on success, what the events were.
pub fn append_finished(events: &[EventEnvelope], elapsed: Duration, outcome: &'static str) {
    counter!(APPENDS_TOTAL, "outcome" => outcome).increment(1);
    histogram!(APPEND_DURATION_SECONDS, "outcome" => outcome).record(elapsed.as_secs_f64());
    if outcome != "appended" {
        return;
    }
    for env in events {
        counter!(EVENTS_APPENDED_TOTAL, "event_type" => env.payload.type_name()).increment(1);
        match &env.payload {
            JobEvent::AgentStepFinished { .. } => {
                counter!(AGENT_MESSAGES_PROCESSED_TOTAL).increment(1)
            }
            JobEvent::AgentStepped(step) => {
                counter!(AGENT_MESSAGES_PROCESSED_TOTAL).increment(1);
                let dead = step.emits.iter().filter(|e| e.dead.is_some()).count();
                if dead > 0 {
                    counter!(DEAD_LETTERS_TOTAL, "source" => "message").increment(dead as u64);
                }
            }
            JobEvent::AgentStepFailed { .. } => counter!(AGENT_STEP_FAILURES_TOTAL).increment(1),
            JobEvent::DeadLettered { .. } => {
                counter!(DEAD_LETTERS_TOTAL, "source" => "message").increment(1)
            }
            _ => {}
        }
    }
}

/// An undecodable feed entry or history event was dead-lettered.
pub fn event_dead_lettered() {
    counter!(DEAD_LETTERS_TOTAL, "source" => "event").increment(1);
}

/// Pending plus undelivered feed entries of a consumer group.
pub fn projection_lag(group: &str, entries: u64) {
    gauge!(PROJECTION_LAG, "group" => group.to_string()).set(entries as f64);
}

/// Jobs in `status`, from the status index.
pub fn jobs_in_status(status: JobStatus, count: u64) {
    gauge!(JOBS, "status" => status.as_str()).set(count as f64);
}

/// A periodic Redis PING: its round trip, or `None` when it failed or timed out.
pub fn redis_ping(rtt: Option<Duration>) {
    match rtt {
        Some(d) => {
            gauge!(REDIS_UP).set(1.0);
            histogram!(REDIS_PING_SECONDS).record(d.as_secs_f64());
        }
        None => gauge!(REDIS_UP).set(0.0),
    }
}

// ----------------------------------------------------------------------------------------
// Jobs, agents, executors

/// Records the job's duration (submission to terminal event) when `appended`, just written
/// by this node, holds the terminal event; `after` is the job's state with them applied.
pub fn job_ended_by(appended: &[EventEnvelope], after: &JobState) {
    if !appended.iter().any(|e| e.payload.is_terminal()) {
        return;
    }
    if let Some(status) = after.status.filter(|s| s.is_terminal()) {
        let secs = (after.updated_at_ms - after.submitted_at_ms).max(0) as f64 / 1000.0;
        histogram!(JOB_DURATION_SECONDS, "status" => status.as_str()).record(secs);
    }
}

/// Runs an executor future, counting it by pool and outcome and timing it.
pub async fn executor_run<T, E>(
    pool: &str,
    run: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = run.await;
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    counter!(EXECUTOR_RUNS_TOTAL, "pool" => pool.to_string(), "outcome" => outcome).increment(1);
    histogram!(EXECUTOR_RUN_DURATION_SECONDS, "pool" => pool.to_string())
        .record(started.elapsed().as_secs_f64());
    result
}

/// A job owned by this node: counts in [`OWNED_JOBS`] while alive, and keeps its share of the
/// queue gauges current. Dropping it takes the job's share back out.
#[derive(Debug, Default)]
pub struct OwnedJob {
    queued: u64,
    inflight: u64,
}

impl OwnedJob {
    pub fn new() -> OwnedJob {
        gauge!(OWNED_JOBS).increment(1.0);
        OwnedJob::default()
    }

    /// Re-reads the job's queue depths from its state (call after each append).
    pub fn update(&mut self, state: &JobState) {
        let queued: u64 = state.agents.values().map(|a| a.queue.len() as u64).sum();
        let inflight: u64 = state.agents.values().map(|a| a.inflight.len() as u64).sum();
        gauge!(QUEUED_MESSAGES).increment(queued as f64 - self.queued as f64);
        gauge!(INFLIGHT_MESSAGES).increment(inflight as f64 - self.inflight as f64);
        (self.queued, self.inflight) = (queued, inflight);
    }
}

impl Drop for OwnedJob {
    fn drop(&mut self) {
        gauge!(OWNED_JOBS).decrement(1.0);
        gauge!(QUEUED_MESSAGES).decrement(self.queued as f64);
        gauge!(INFLIGHT_MESSAGES).decrement(self.inflight as f64);
    }
}

// ----------------------------------------------------------------------------------------
// Leases, leadership, nodes (the cluster code calls these)

/// The owner renewed a job lease.
pub fn job_lease_renewed() {
    counter!(LEASE_RENEWALS_TOTAL, "kind" => LEASE_JOB).increment(1);
}

/// The owner found its job lease taken over or expired.
pub fn job_lease_lost() {
    counter!(LEASE_LOSSES_TOTAL, "kind" => LEASE_JOB).increment(1);
}

/// This node renewed its leader lease.
pub fn lease_renewed() {
    counter!(LEASE_RENEWALS_TOTAL, "kind" => LEASE_LEADER).increment(1);
}

/// This node lost its leader lease (expiry or takeover).
pub fn lease_lost() {
    counter!(LEASE_LOSSES_TOTAL, "kind" => LEASE_LEADER).increment(1);
}

/// The cluster leader changed (any node observing a new leader calls this once).
pub fn leader_changed() {
    counter!(LEADER_CHANGES_TOTAL).increment(1);
}

/// Whether this node is the leader now.
pub fn set_leader(is_leader: bool) {
    gauge!(IS_LEADER).set(if is_leader { 1.0 } else { 0.0 });
}

/// This node's resources: CPU cores and memory in bytes.
pub fn node_resources(cpu_cores: f64, memory_bytes: u64) {
    gauge!(NODE_CPU_CORES).set(cpu_cores);
    gauge!(NODE_MEMORY_BYTES).set(memory_bytes as f64);
}

/// Nodes of the cluster currently alive in the inventory.
pub fn cluster_nodes(alive: usize) {
    gauge!(CLUSTER_NODES).set(alive as f64);
}

/// One monitor round's health of one instance: each check's result and latency.
pub fn service_checked(health: &crate::domain::service::Health) {
    for c in &health.checks {
        let failed = c.suppressed_status.is_some()
            || c.status == crate::domain::service::HealthStatus::Critical;
        counter!(SERVICE_CHECKS_TOTAL, "type" => c.kind.clone(), "status" => c.status.as_str())
            .increment(1);
        if failed {
            counter!(SERVICE_CHECK_FAILURES_TOTAL, "type" => c.kind.clone()).increment(1);
        }
        histogram!(SERVICE_CHECK_DURATION_SECONDS, "type" => c.kind.clone())
            .record(c.duration_ms as f64 / 1000.0);
    }
}

/// How many instances this node monitors in each status after a round.
pub fn services_by_status(counts: &[(crate::domain::service::HealthStatus, usize)]) {
    for (status, n) in counts {
        gauge!(SERVICES, "status" => status.as_str()).set(*n as f64);
    }
}

/// A deployment append: rollouts that ended (and how long they took) and reverts started.
pub fn deployment_events(
    events: &[crate::domain::deployment::DeploymentEvent],
    after: &crate::domain::deployment::DeploymentState,
) {
    use crate::domain::deployment::DeploymentEvent as E;
    for e in events {
        let (outcome, at_ms) = match e {
            E::DeploymentSuccessful { at_ms, .. } => ("successful", *at_ms),
            E::DeploymentFailed { at_ms, .. } => ("failed", *at_ms),
            E::DeploymentReverted { at_ms, .. } => ("reverted", *at_ms),
            E::DeploymentNoop { at_ms, .. } => ("noop", *at_ms),
            E::DeploymentVersionRecorded { at_ms, .. } => ("version_recorded", *at_ms),
            E::DeploymentReverting { .. } => {
                counter!(DEPLOYMENT_REVERTS_TOTAL).increment(1);
                continue;
            }
            _ => continue,
        };
        counter!(DEPLOYMENT_ROLLOUTS_TOTAL, "outcome" => outcome).increment(1);
        if let Some(created) = after.rollout_created_at_ms() {
            let seconds = (at_ms - created).max(0) as f64 / 1000.0;
            histogram!(DEPLOYMENT_ROLLOUT_DURATION_SECONDS, "outcome" => outcome).record(seconds);
        }
    }
}

/// Deployment keys by the status of their latest rollout.
pub fn deployments_by_status(counts: &[(&str, usize)]) {
    for (status, n) in counts {
        gauge!(DEPLOYMENTS, "status" => status.to_string()).set(*n as f64);
    }
}

/// The inventory declared a node lost.
pub fn node_lost() {
    counter!(NODES_LOST_TOTAL).increment(1);
}

// ----------------------------------------------------------------------------------------
// gRPC

/// One gRPC call answered: `method` as `package.Service/Method` (or [`UNKNOWN_METHOD`]),
/// `code` as the canonical name (`OK`, `NOT_FOUND`, ...).
pub fn grpc_request(method: &str, code: &'static str, elapsed: Duration) {
    counter!(GRPC_REQUESTS_TOTAL, "method" => method.to_string(), "code" => code).increment(1);
    histogram!(GRPC_REQUEST_DURATION_SECONDS, "method" => method.to_string())
        .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_resources_are_detected_here() {
        let (cpu, mem) = detect_node_resources();
        assert!(cpu >= 1.0);
        if cfg!(target_os = "linux") {
            assert!(mem > 1 << 20, "MemTotal parsed: {mem}");
        }
    }
}
