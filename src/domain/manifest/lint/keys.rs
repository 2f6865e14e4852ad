//! The keys each part of a manifest may hold: what this runtime reads, what core-spec
//! documents for the original runtime (runner and deployment settings that are carried but
//! not acted on here), and what the real manifests in the compatibility corpus use.

use super::super::model::AgentType;

/// Top-level keys (core-spec 1.2) plus blueprint-standard keys seen in real manifests.
#[rustfmt::skip]
pub(super) const TOP_LEVEL: &[&str] = &[
    "manifest_version", "graph_id", "workflow_id", "id", "job_name", "type", "daemon",
    "requiredContextEngine", "required_context_engine", "requirements", "requirments",
    "input_validation", "inputValidation", "skill_dependencies", "agent_dependencies", "services",
    "required_services", "requiredServices", "deployment", "schedule", "triggers", "parameterized",
    "metadata", "entrypoints", "entrypoint", "initial_inputs", "nodes", "edges", "agents", "flow",
    "runtime", "policies", "reload", "apiVersion", "kind", "contract", "contracts", "name",
    "description", "version", "standard_version", "standard", "license", "term", "workflow",
    "config", "defaults", "identity", "intent", "inputs", "outputs", "tags",
];

/// Top-level keys that are read elsewhere, with where: a job written with them silently gets
/// the default (a "service" declared as top-level `job_type` ran as a batch job).
#[rustfmt::skip]
pub(super) const TOP_LEVEL_MISPLACED: &[(&str, &str)] = &[
    ("job_type", "type (or policies.job_type)"),
    ("recovery_mode", "policies.recovery_mode"),
    ("update", "policies.update"),
    ("restart", "policies.restart"),
    ("reschedule", "policies.reschedule"),
];

/// Node keys (core-spec 1.3) plus template references (`uses`/`with`) and labels.
#[rustfmt::skip]
pub(super) const NODE: &[&str] = &[
    "node_id", "id", "agent_type", "agentType", "type", "kind", "role", "config", "resources",
    "constraints", "placement_requirements", "policies", "services", "requires_services",
    "requiresServices", "tool_bindings", "retry_policy", "checkpoint_policy", "spawn_policy",
    "uses", "with", "alias", "display_name", "description",
];

#[rustfmt::skip]
pub(super) const EDGE: &[&str] = &[
    "edge_id", "id", "from_node", "from", "to_node", "to", "message_type", "event", "routing_mode",
    "conditions", "description",
];

/// Job-level `policies` (core-spec 1.5), plus the stream settings real manifests carry.
#[rustfmt::skip]
pub(super) const POLICIES: &[&str] = &[
    "recovery_mode", "placement_policy", "job_type", "scheduler", "scheduler_strategy",
    "constraints", "restart", "reschedule", "max_agent_restart_attempts", "update",
    "deployment_key", "preferred_node", "preferredNode", "backpressure", "stream_mode", "drain",
];

#[rustfmt::skip]
pub(super) const NODE_POLICIES: &[&str] = &[
    "restart", "reschedule", "scheduler", "preferred_node", "preferredNode",
];

#[rustfmt::skip]
pub(super) const SCHEDULER: &[&str] = &[
    "strategy", "job_type", "constraints", "preferred_node", "preferredNode",
];

/// `restart` and `reschedule` (core-spec 8).
#[rustfmt::skip]
pub(super) const LIFECYCLE: &[&str] = &[
    "attempts", "interval_ms", "delay_ms", "max_delay_ms", "delay_function", "enabled", "mode",
    "unlimited",
];

/// `policies.update` (core-spec 9.2).
#[rustfmt::skip]
pub(super) const UPDATE: &[&str] = &[
    "strategy", "max_parallel", "canary", "min_healthy_ms", "healthy_deadline_ms",
    "progress_deadline_ms", "health_check", "auto_promote", "auto_revert",
];

/// A schedule (core-spec 9.4); a manifest trigger is an event schedule, so it takes these too.
#[rustfmt::skip]
pub(super) const SCHEDULE: &[&str] = &[
    "kind", "name", "enabled", "status", "cron", "crons", "timezone", "time_zone", "run_at", "at",
    "delay_ms", "missed_policy", "catchup_limit", "missed_grace_ms", "prohibit_overlap",
    "allow_overlap", "payload", "trigger", "event_type", "filters", "window", "retry_interval_ms",
    "max_wait_ms", "auto_schedule", "parameterized", "metadata", "version", "description",
];

#[rustfmt::skip]
pub(super) const TRIGGER: &[&str] = &[
    "event_type", "type", "filters", "payload", "meta_required", "meta_optional",
];

/// A service declaration or requirement (core-spec 9.1).
#[rustfmt::skip]
pub(super) const SERVICE: &[&str] = &[
    "name", "id", "address", "port", "tags", "meta", "provider", "origin", "checks", "url",
    "required",
];

/// Config keys any agent may carry: placement, beacons, completion and workflow labels.
#[rustfmt::skip]
const ANY_AGENT: &[&str] = &[
    "resources", "constraints", "placement_requirements", "execution_profile", "profile",
    "runner_module", "beacon_enabled", "beacon_interval_ms", "beacon_timeout_ms",
    "beacon_missed_action", "agent_beacon_required", "backpressure", "terminal_sink",
    "complete_run", "complete_job", "complete_step", "complete_on_message", "complete_after",
    "output_message_type", "emit_type", "idempotent", "safe_to_retry", "side_effect",
    "workflow_complete_step", "node_type", "role",
];

/// What an executor reads (the runner settings included: `image`, `from`, `container`,
/// `pull`, `sandbox`, `warmup_*`, and `concurrency`), then the original's sandbox settings
/// this runtime keeps as extensions.
#[rustfmt::skip]
const EXECUTOR: &[&str] = &[
    "command", "workdir", "environment", "pass_env", "upload_path", "upload_as", "upload_paths",
    "timeout_seconds", "retry_on_timeout", "max_output_bytes", "max_job_output_bytes", "pool",
    "pool_slots", "max_attempts", "retry_backoff_ms", "startup_delay_ms", "image", "from",
    "container", "pull", "sandbox", "runtime_driver", "warmup_command", "warmup_timeout_ms",
    "concurrency", "max_concurrency", "ordered",
    "name_prefix", "no_keep", "no_auto_providers", "tty", "gpu", "gpus", "gpu_count", "policy",
    "providers", "remote", "ssh_key", "sandbox_cli", "reuse_shared_sandbox", "persistent_workspace",
    "cleanup_remote_dir", "sandbox_upload_path", "python_environment", "custom_openshell_image",
    "docker_worker_image", "shared_container", "reuse_shared_container", "network",
];

#[rustfmt::skip]
const MODULE: &[&str] = &[
    "command", "environment", "pass_env", "module", "module_source",
];

/// The config keys known for an agent type (`None`: the type itself is unknown).
pub(super) fn config(agent: Option<AgentType>) -> Vec<&'static str> {
    let own: &[&str] = match agent {
        Some(AgentType::Executor) => EXECUTOR,
        Some(AgentType::Module) => MODULE,
        Some(AgentType::Router | AgentType::Aggregator | AgentType::Sensor) | None => &[],
    };
    ANY_AGENT.iter().chain(own).copied().collect()
}
