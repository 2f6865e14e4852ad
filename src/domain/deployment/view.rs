//! The deployment record the API returns (core-spec 9.2 keys, so published clients print
//! something familiar) and the deployment context a job started for a rollout carries.

use serde_json::{Value, json};

use super::state::DeploymentState;
use crate::domain::view::iso_ms;

/// The record of a key's newest rollout, with every version (`get` in the original).
pub fn view(state: &DeploymentState) -> Value {
    let r = state.rollout.as_ref();
    let remaining: Vec<&String> = r
        .map(|r| {
            let from = r.active.as_ref().map_or(r.next_batch, |a| a.index);
            r.plan
                .batches
                .iter()
                .skip(from)
                .flat_map(|b| &b.agents)
                .collect()
        })
        .unwrap_or_default();
    let versions: Vec<Value> = state
        .versions
        .values()
        .map(|v| {
            json!({
                "deployment_key": state.key, "version": v.version, "job_id": v.job_id,
                "manifest_ref": v.manifest_ref, "tag": v.tag, "stable": v.stable,
                "submitted_at": iso_ms(v.submitted_at_ms), "updated_at": iso_ms(v.updated_at_ms),
            })
        })
        .collect();
    json!({
        "deployment_id": r.map(|r| &r.deployment_id),
        "deployment_key": state.key,
        "status": state.status.map(|s| s.as_str()),
        "description": state.description,
        "strategy": r.map(|r| r.policy.strategy),
        "policy": r.map(|r| &r.policy),
        "mode": r.map(|r| r.plan.mode()),
        "phase": r.and_then(|r| r.plan.phase()),
        "current_job_id": state.current_job_id,
        "stable_job_id": state.stable_job_id,
        "source_job_id": r.and_then(|r| r.source_job_id.as_ref()),
        "target_job_id": r.map(|r| &r.job_id),
        "current_version": state.current_version,
        "stable_version": state.stable_version,
        "target_version": r.map(|r| r.version),
        "changed_agent_ids": r.map(|r| &r.plan.changed_agent_ids),
        "canary_agent_ids": r.map(|r| &r.plan.canary_agent_ids),
        "remaining_agent_ids": remaining,
        "failure": state.failure,
        "versions": versions,
        "created_at": iso_ms(state.created_at_ms),
        "updated_at": iso_ms(state.updated_at_ms),
        "seq": state.seq,
    })
}
