//! `evolve(state, event) -> state`: how each fact changes a node.

use super::event::{NodeEnvelope, NodeEvent};
use super::state::{Drain, DrainStatus, Maintenance, NodeState};

pub fn evolve(mut s: NodeState, env: &NodeEnvelope) -> NodeState {
    if s.name.is_empty() {
        s.name = env.node.clone();
    }
    s.version = env.seq;
    s.updated_at_ms = env.at_ms;
    match &env.event {
        NodeEvent::NodeJoined {
            incarnation,
            inventory,
        } => {
            if s.incarnation.as_deref() != Some(incarnation.as_str()) || !s.connected {
                s.joined_at_ms = Some(env.at_ms);
            }
            s.incarnation = Some(incarnation.clone());
            s.inventory = Some(inventory.clone());
            s.connected = true;
            s.left = false;
            s.down_at_ms = None;
            s.down_reason = None;
            // Drain and maintenance are operator state: rejoining keeps them.
        }
        NodeEvent::NodeLeft { reason, .. } | NodeEvent::NodeLost { reason, .. } => {
            s.connected = false;
            s.left = matches!(env.event, NodeEvent::NodeLeft { .. });
            s.down_at_ms = Some(env.at_ms);
            s.down_reason = Some(reason.clone());
        }
        NodeEvent::LeadershipAcquired { epoch } => s.leader_epoch = Some(*epoch),
        NodeEvent::DrainStarted {
            reason,
            started_at_ms,
            deadline_at_ms,
            deadline_ms,
            ignore_system_jobs,
        } => {
            s.drain = Some(Drain {
                status: DrainStatus::Draining,
                reason: reason.clone(),
                started_at_ms: *started_at_ms,
                deadline_at_ms: *deadline_at_ms,
                deadline_ms: *deadline_ms,
                ignore_system_jobs: *ignore_system_jobs,
                completed_at_ms: None,
            })
        }
        NodeEvent::DrainCompleted => {
            if let Some(d) = &mut s.drain {
                d.status = DrainStatus::Complete;
                d.completed_at_ms = Some(env.at_ms);
            }
        }
        NodeEvent::DrainCancelled {
            reason,
            mark_eligible,
        } => {
            if let Some(d) = &mut s.drain {
                d.status = DrainStatus::Cancelled;
                d.completed_at_ms = Some(env.at_ms);
            }
            // Undrain without marking eligible parks the node in maintenance (core-spec 6.7).
            s.maintenance = Some(Maintenance {
                enabled: !mark_eligible,
                reason: Some(reason.clone()),
                updated_at_ms: env.at_ms,
            });
        }
        NodeEvent::MaintenanceChanged { enabled, reason } => {
            s.maintenance = Some(Maintenance {
                enabled: *enabled,
                reason: reason.clone(),
                updated_at_ms: env.at_ms,
            });
            // Leaving maintenance also clears a completed drain: the operator says "take work".
            if !enabled
                && s.drain
                    .as_ref()
                    .is_some_and(|d| d.status == DrainStatus::Complete)
                && let Some(d) = &mut s.drain
            {
                d.status = DrainStatus::Cancelled;
            }
        }
    }
    s
}
