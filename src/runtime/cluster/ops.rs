//! Operator actions on nodes: drain (with reason, deadline, dry run), undrain, maintenance, and
//! the drain status. Each is a node command; the leader does the moving (core-spec 6.7).

use serde_json::{Value, json};

use super::overview::active_jobs_by_owner;
use crate::domain::node::{NodeCommand, NodeState};
use crate::domain::view::iso_ms;
use crate::runtime::clock::now_ms;
use crate::store::{NodeCommandError, Store};

/// Default drain deadline: 30 minutes.
pub const DEFAULT_DRAIN_DEADLINE_MS: u64 = 1_800_000;

#[derive(Debug, Clone)]
pub struct DrainRequest {
    pub node: String,
    pub reason: Option<String>,
    pub deadline_ms: u64,
    pub dry_run: bool,
    pub ignore_system_jobs: bool,
}

/// Starts draining a node (or, dry run, says what would happen). Jobs the node owns keep
/// running until the deadline; then the leader moves them and the node's remaining work.
pub async fn drain(store: &Store, req: &DrainRequest) -> Result<Value, NodeCommandError> {
    let now = now_ms();
    let state = if req.dry_run {
        let s = store.load_node(&req.node).await?;
        if s.version == 0 {
            return Err(crate::domain::node::NodeError::Unknown(req.node.clone()).into());
        }
        s
    } else {
        store
            .node_command(
                &req.node,
                &NodeCommand::StartDrain {
                    reason: req.reason.clone(),
                    deadline_ms: req.deadline_ms,
                    ignore_system_jobs: req.ignore_system_jobs,
                    now_ms: now,
                },
                now,
            )
            .await?
    };
    let jobs: Vec<String> = active_jobs_by_owner(store)
        .await?
        .into_iter()
        .filter(|(owner, _)| owner == &req.node)
        .map(|(_, j)| j)
        .collect();
    let pending_work = store.pending_work(&req.node).await?;
    let action = if req.dry_run {
        "would_migrate"
    } else {
        "waiting"
    };
    let actions: Vec<Value> = jobs
        .iter()
        .map(|j| json!({"job_id": j, "status": action, "reason": "owned by the draining node"}))
        .collect();
    let mut out = status_json(&state);
    out["status"] = json!(if req.dry_run {
        "dry_run"
    } else if jobs.is_empty() && pending_work == 0 {
        "complete"
    } else {
        "draining"
    });
    out["would_status"] = json!(if jobs.is_empty() && pending_work == 0 {
        "complete"
    } else {
        "draining"
    });
    out["actions"] = json!(actions);
    out["counters"] =
        json!({"checked": jobs.len(), action: jobs.len(), "pending_work": pending_work});
    Ok(out)
}

/// Cancels a drain; `mark_eligible` puts the node back into scheduling, otherwise it stays in
/// maintenance.
pub async fn undrain(
    store: &Store,
    node: &str,
    reason: Option<String>,
    mark_eligible: bool,
) -> Result<Value, NodeCommandError> {
    let cmd = NodeCommand::CancelDrain {
        reason,
        mark_eligible,
    };
    let state = store.node_command(node, &cmd, now_ms()).await?;
    Ok(status_json(&state))
}

/// Switches maintenance mode.
pub async fn maintenance(
    store: &Store,
    node: &str,
    enabled: bool,
    reason: Option<String>,
) -> Result<Value, NodeCommandError> {
    let cmd = NodeCommand::SetMaintenance { enabled, reason };
    let state = store.node_command(node, &cmd, now_ms()).await?;
    Ok(status_json(&state))
}

/// `{node, status, scheduling_eligible, drain, maintenance, ...}` for a node state.
pub fn status_json(s: &NodeState) -> Value {
    let drain = s.drain.as_ref().map(|d| {
        json!({
            "status": d.status,
            "reason": d.reason,
            "started_at": iso_ms(d.started_at_ms),
            "deadline_at": iso_ms(d.deadline_at_ms),
            "deadline_ms": d.deadline_ms,
            "ignore_system_jobs": d.ignore_system_jobs,
            "completed_at": d.completed_at_ms.and_then(iso_ms),
        })
    });
    json!({
        "node": s.name,
        "node_status": s.status().as_str(),
        "status": s.status().as_str(),
        "scheduling_eligible": s.scheduling_eligible(),
        "drain": drain,
        "maintenance": s.maintenance,
        "reason": s.drain.as_ref().map(|d| d.reason.clone()).or_else(|| s.maintenance.as_ref().and_then(|m| m.reason.clone())),
        "node_state": s.to_view(),
    })
}
