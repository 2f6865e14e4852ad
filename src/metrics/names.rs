//! The one catalog of metric names, their help texts and histogram buckets.
//!
//! Dashboards (`dashboards/*.json`) and alert rules (`dashboards/alerts.yml`) query these
//! names; `tests/metrics.rs` checks that every name they use is exported by a fresh node, so a
//! rename here that is not carried over there fails the build's tests. Names follow the
//! Prometheus conventions: `mirror_neuron_` prefix, counters end in `_total`, durations are
//! in seconds and end in `_seconds`, sizes in bytes end in `_bytes`.

/// What kind of instrument a name is (decides how it is registered and described).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One catalog entry.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

pub const BUILD_INFO: &str = "mirror_neuron_build_info";
pub const JOBS: &str = "mirror_neuron_jobs";
pub const JOB_DURATION_SECONDS: &str = "mirror_neuron_job_duration_seconds";
pub const AGENT_MESSAGES_PROCESSED_TOTAL: &str = "mirror_neuron_agent_messages_processed_total";
pub const AGENT_STEP_FAILURES_TOTAL: &str = "mirror_neuron_agent_step_failures_total";
pub const QUEUED_MESSAGES: &str = "mirror_neuron_queued_messages";
pub const INFLIGHT_MESSAGES: &str = "mirror_neuron_inflight_messages";
pub const OWNED_JOBS: &str = "mirror_neuron_owned_jobs";
pub const EXECUTOR_RUNS_TOTAL: &str = "mirror_neuron_executor_runs_total";
pub const EXECUTOR_RUN_DURATION_SECONDS: &str = "mirror_neuron_executor_run_duration_seconds";
pub const DEAD_LETTERS_TOTAL: &str = "mirror_neuron_dead_letters_total";
pub const EVENTS_APPENDED_TOTAL: &str = "mirror_neuron_events_appended_total";
pub const APPENDS_TOTAL: &str = "mirror_neuron_appends_total";
pub const APPEND_DURATION_SECONDS: &str = "mirror_neuron_append_duration_seconds";
pub const PROJECTION_LAG: &str = "mirror_neuron_projection_lag";
pub const LEASE_RENEWALS_TOTAL: &str = "mirror_neuron_lease_renewals_total";
pub const LEASE_LOSSES_TOTAL: &str = "mirror_neuron_lease_losses_total";
pub const LEADER_CHANGES_TOTAL: &str = "mirror_neuron_leader_changes_total";
pub const IS_LEADER: &str = "mirror_neuron_is_leader";
pub const CLUSTER_NODES: &str = "mirror_neuron_cluster_nodes";
pub const NODES_LOST_TOTAL: &str = "mirror_neuron_nodes_lost_total";
pub const NODE_CPU_CORES: &str = "mirror_neuron_node_cpu_cores";
pub const NODE_MEMORY_BYTES: &str = "mirror_neuron_node_memory_bytes";
pub const REDIS_UP: &str = "mirror_neuron_redis_up";
pub const REDIS_PING_SECONDS: &str = "mirror_neuron_redis_ping_seconds";
pub const GRPC_REQUESTS_TOTAL: &str = "mirror_neuron_grpc_requests_total";
pub const GRPC_REQUEST_DURATION_SECONDS: &str = "mirror_neuron_grpc_request_duration_seconds";
pub const SERVICES: &str = "mirror_neuron_services";
pub const SERVICE_CHECKS_TOTAL: &str = "mirror_neuron_service_checks_total";
pub const SERVICE_CHECK_FAILURES_TOTAL: &str = "mirror_neuron_service_check_failures_total";
pub const SERVICE_CHECK_DURATION_SECONDS: &str = "mirror_neuron_service_check_duration_seconds";
pub const DEPLOYMENTS: &str = "mirror_neuron_deployments";
pub const DEPLOYMENT_ROLLOUTS_TOTAL: &str = "mirror_neuron_deployment_rollouts_total";
pub const DEPLOYMENT_ROLLOUT_DURATION_SECONDS: &str =
    "mirror_neuron_deployment_rollout_duration_seconds";
pub const DEPLOYMENT_REVERTS_TOTAL: &str = "mirror_neuron_deployment_reverts_total";

/// Every metric this runtime exports. `install` registers each one with an initial value, so
/// a freshly started node already exports every name.
pub const CATALOG: &[MetricDef] = &[
    MetricDef {
        name: BUILD_INFO,
        kind: Kind::Gauge,
        help: "Always 1; the version label says which build this node runs.",
    },
    MetricDef {
        name: JOBS,
        kind: Kind::Gauge,
        help: "Jobs per status, from the job status index (refreshed periodically by serve).",
    },
    MetricDef {
        name: JOB_DURATION_SECONDS,
        kind: Kind::Histogram,
        help: "Time from submission to the terminal event, for jobs whose terminal event this node wrote, by final status.",
    },
    MetricDef {
        name: AGENT_MESSAGES_PROCESSED_TOTAL,
        kind: Kind::Counter,
        help: "Agent steps finished (messages processed) in events this node appended.",
    },
    MetricDef {
        name: AGENT_STEP_FAILURES_TOTAL,
        kind: Kind::Counter,
        help: "Agent steps that failed in events this node appended.",
    },
    MetricDef {
        name: QUEUED_MESSAGES,
        kind: Kind::Gauge,
        help: "Messages waiting in agent queues (mailboxes) of the jobs this node owns.",
    },
    MetricDef {
        name: INFLIGHT_MESSAGES,
        kind: Kind::Gauge,
        help: "Messages taken and not finished by agents of the jobs this node owns.",
    },
    MetricDef {
        name: OWNED_JOBS,
        kind: Kind::Gauge,
        help: "Jobs this node currently owns (holds the lease of and runs).",
    },
    MetricDef {
        name: EXECUTOR_RUNS_TOTAL,
        kind: Kind::Counter,
        help: "Executor runs finished, by pool and outcome (ok or failed; retries inside a run count once).",
    },
    MetricDef {
        name: EXECUTOR_RUN_DURATION_SECONDS,
        kind: Kind::Histogram,
        help: "Executor run time by pool, from request to result (slot wait and retries included).",
    },
    MetricDef {
        name: DEAD_LETTERS_TOTAL,
        kind: Kind::Counter,
        help: "Dead letters: undeliverable messages (source=message) and undecodable events (source=event).",
    },
    MetricDef {
        name: EVENTS_APPENDED_TOTAL,
        kind: Kind::Counter,
        help: "Events appended to job histories by this node, by event type.",
    },
    MetricDef {
        name: APPENDS_TOTAL,
        kind: Kind::Counter,
        help: "Fenced append calls, by outcome (appended, duplicate, conflict, stale_epoch, error).",
    },
    MetricDef {
        name: APPEND_DURATION_SECONDS,
        kind: Kind::Histogram,
        help: "Latency of the fenced append script (one round trip), by outcome.",
    },
    MetricDef {
        name: PROJECTION_LAG,
        kind: Kind::Gauge,
        help: "Feed entries not yet acknowledged by a consumer group (pending plus undelivered), by group.",
    },
    MetricDef {
        name: LEASE_RENEWALS_TOTAL,
        kind: Kind::Counter,
        help: "Successful lease renewals, by lease kind (job or leader).",
    },
    MetricDef {
        name: LEASE_LOSSES_TOTAL,
        kind: Kind::Counter,
        help: "Leases this node lost to expiry or takeover, by lease kind (job or leader).",
    },
    MetricDef {
        name: LEADER_CHANGES_TOTAL,
        kind: Kind::Counter,
        help: "Cluster leader changes seen by this node.",
    },
    MetricDef {
        name: IS_LEADER,
        kind: Kind::Gauge,
        help: "1 while this node is the cluster leader, else 0.",
    },
    MetricDef {
        name: CLUSTER_NODES,
        kind: Kind::Gauge,
        help: "Nodes of the cluster seen alive in the node inventory.",
    },
    MetricDef {
        name: NODES_LOST_TOTAL,
        kind: Kind::Counter,
        help: "Nodes the inventory declared lost (heartbeat expired).",
    },
    MetricDef {
        name: NODE_CPU_CORES,
        kind: Kind::Gauge,
        help: "CPU cores available to this node.",
    },
    MetricDef {
        name: NODE_MEMORY_BYTES,
        kind: Kind::Gauge,
        help: "Memory of this node in bytes.",
    },
    MetricDef {
        name: REDIS_UP,
        kind: Kind::Gauge,
        help: "1 when the last periodic Redis PING succeeded, else 0.",
    },
    MetricDef {
        name: REDIS_PING_SECONDS,
        kind: Kind::Histogram,
        help: "Round-trip time of the periodic Redis PING.",
    },
    MetricDef {
        name: GRPC_REQUESTS_TOTAL,
        kind: Kind::Counter,
        help: "gRPC requests served, by method and status code.",
    },
    MetricDef {
        name: GRPC_REQUEST_DURATION_SECONDS,
        kind: Kind::Histogram,
        help: "gRPC request latency by method, until the response headers (first message for streams).",
    },
    MetricDef {
        name: SERVICES,
        kind: Kind::Gauge,
        help: "Service instances this node monitors, by status (passing, warning, critical) as of its last round.",
    },
    MetricDef {
        name: SERVICE_CHECKS_TOTAL,
        kind: Kind::Counter,
        help: "Service health checks run by this node, by check type and result status.",
    },
    MetricDef {
        name: SERVICE_CHECK_FAILURES_TOTAL,
        kind: Kind::Counter,
        help: "Service health checks that failed (critical, including failures suppressed by failures_before_critical), by check type.",
    },
    MetricDef {
        name: SERVICE_CHECK_DURATION_SECONDS,
        kind: Kind::Histogram,
        help: "How long one service health check took, by check type.",
    },
    MetricDef {
        name: DEPLOYMENTS,
        kind: Kind::Gauge,
        help: "Deployment keys by the status of their latest rollout (running, awaiting_promotion, successful, failed, reverted, ...), as the leader last counted them.",
    },
    MetricDef {
        name: DEPLOYMENT_ROLLOUTS_TOTAL,
        kind: Kind::Counter,
        help: "Rollouts that ended, by outcome (successful, failed, reverted, noop, version_recorded).",
    },
    MetricDef {
        name: DEPLOYMENT_ROLLOUT_DURATION_SECONDS,
        kind: Kind::Histogram,
        help: "From a rollout's creation to its end (successful, failed or reverted), by outcome.",
    },
    MetricDef {
        name: DEPLOYMENT_REVERTS_TOTAL,
        kind: Kind::Counter,
        help: "Automatic reverts started (auto_revert after a failed rollout).",
    },
];

/// Buckets for round trips: Redis, appends, gRPC calls (0.5 ms .. 10 s).
pub const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for work: executor runs and whole jobs (10 ms .. 2 h).
pub const SLOW_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0, 7200.0,
];

/// The buckets of a histogram in the catalog.
pub fn buckets_for(name: &str) -> &'static [f64] {
    match name {
        JOB_DURATION_SECONDS
        | EXECUTOR_RUN_DURATION_SECONDS
        | DEPLOYMENT_ROLLOUT_DURATION_SECONDS => SLOW_BUCKETS,
        _ => FAST_BUCKETS,
    }
}

/// Every event type name (`JobEvent::type_name`), registered up front so that each
/// `mirror_neuron_events_appended_total{event_type=...}` series exists from the start.
pub const EVENT_TYPES: &[&str] = &[
    "job_submitted",
    "job_started",
    "job_paused",
    "job_resumed",
    "job_cancelled",
    "job_completed",
    "job_failed",
    "lease_acquired",
    "lease_released",
    "reliability_resolved",
    "agent_restart_scheduled",
    "agent_reschedule_scheduled",
    "job_planned",
    "job_placement_blocked",
    "inputs_queued",
    "agent_stepped",
    "message_sent",
    "agent_step_started",
    "agent_step_finished",
    "agent_step_failed",
    "agent_event_recorded",
    "dead_lettered",
    "service_registered",
    "service_deregistered",
    "service_health_changed",
    "agents_replaced",
    "agents_promoted",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::JobEvent;
    use serde_json::Value;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::BTreeSet::new();
        for m in CATALOG {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("mirror_neuron_"), "{}", m.name);
            assert!(
                m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                m.name
            );
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            if m.kind == Kind::Histogram {
                assert!(m.name.ends_with("_seconds"), "{}", m.name);
                let b = buckets_for(m.name);
                assert!(
                    b.windows(2).all(|w| w[0] < w[1]),
                    "{} buckets ascend",
                    m.name
                );
            }
            assert!(m.help.len() > 10, "{} has a help text", m.name);
        }
    }

    #[test]
    fn event_types_cover_every_event() {
        let samples = [
            JobEvent::JobStarted,
            JobEvent::JobPaused { reason: None },
            JobEvent::JobResumed,
            JobEvent::JobCancelled {
                reason: String::new(),
            },
            JobEvent::JobCompleted {
                result: Value::Null,
            },
            JobEvent::JobFailed {
                result: Value::Null,
            },
            JobEvent::LeaseAcquired {
                owner: String::new(),
                epoch: 0,
                local_run: false,
            },
            JobEvent::LeaseReleased {
                owner: String::new(),
                epoch: 0,
                reason: None,
            },
            JobEvent::AgentStepStarted {
                agent_id: String::new(),
                message_id: String::new(),
                attempt: 1,
                node: None,
            },
            JobEvent::ReliabilityResolved {
                reliability: serde_json::Value::Null,
            },
            JobEvent::AgentRestartScheduled {
                agent_id: String::new(),
                message_id: String::new(),
                attempt: 1,
                delay_ms: 0,
                eligible_at_ms: 0,
                reason: String::new(),
                deferred: false,
                policy: serde_json::Value::Null,
            },
            JobEvent::AgentRescheduleScheduled {
                agent_id: String::new(),
                message_id: String::new(),
                attempt: 1,
                delay_ms: 0,
                eligible_at_ms: 0,
                avoid_node: None,
                reason: String::new(),
            },
            JobEvent::JobPlanned {
                plan: Value::Null,
                reason: None,
            },
            JobEvent::JobPlacementBlocked {
                reason: String::new(),
                agent_id: None,
            },
            JobEvent::AgentStepFinished {
                agent_id: String::new(),
                message_id: String::new(),
                state: None,
            },
            JobEvent::AgentStepFailed {
                agent_id: String::new(),
                message_id: String::new(),
                attempt: 1,
                error: Value::Null,
                will_retry: false,
            },
            JobEvent::AgentEventRecorded {
                agent_id: String::new(),
                name: String::new(),
                payload: Value::Null,
            },
            JobEvent::DeadLettered {
                agent_id: None,
                reason: String::new(),
                message: Value::Null,
            },
            JobEvent::InputsQueued {
                counts: Default::default(),
            },
            JobEvent::AgentStepped(Default::default()),
            JobEvent::AgentsPromoted {
                version: crate::domain::deployment::Version::FIRST,
            },
        ];
        for e in &samples {
            assert!(EVENT_TYPES.contains(&e.type_name()), "{}", e.type_name());
        }
        // job_submitted and message_sent carry structs that are long to build here.
        assert!(EVENT_TYPES.contains(&"job_submitted") && EVENT_TYPES.contains(&"message_sent"));
        // The three service events carry records that are long to build here.
        for name in [
            "service_registered",
            "service_deregistered",
            "service_health_changed",
            "agents_replaced",
        ] {
            assert!(EVENT_TYPES.contains(&name));
        }
        assert_eq!(EVENT_TYPES.len(), samples.len() + 6);
    }
}
