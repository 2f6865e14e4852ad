//! `decide(state, command) -> events`: which facts a request about a node produces. Repeating a
//! request that is already true produces nothing, so retries and duplicate leader sweeps are
//! harmless.

use super::event::NodeEvent;
use super::inventory::Inventory;
use super::state::{DrainStatus, NodeState};

#[derive(Debug, Clone, PartialEq)]
pub enum NodeCommand {
    Join {
        incarnation: String,
        inventory: Inventory,
    },
    Leave {
        incarnation: String,
        reason: String,
    },
    MarkLost {
        incarnation: String,
        reason: String,
    },
    RecordLeadership {
        epoch: u64,
    },
    StartDrain {
        reason: Option<String>,
        deadline_ms: u64,
        ignore_system_jobs: bool,
        now_ms: i64,
    },
    CompleteDrain,
    CancelDrain {
        reason: Option<String>,
        mark_eligible: bool,
    },
    SetMaintenance {
        enabled: bool,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("node {0} is not known to the cluster (it never joined)")]
    Unknown(String),
    #[error("node {0} is already draining")]
    AlreadyDraining(String),
    #[error("node {0} has no drain to cancel")]
    NotDraining(String),
}

pub fn decide(s: &NodeState, command: &NodeCommand) -> Result<Vec<NodeEvent>, NodeError> {
    let known = s.version > 0;
    let unknown = || NodeError::Unknown(s.name.clone());
    Ok(match command {
        NodeCommand::Join {
            incarnation,
            inventory,
        } => {
            let same = s.connected
                && s.incarnation.as_deref() == Some(incarnation.as_str())
                && s.inventory.as_ref() == Some(inventory);
            if same {
                vec![]
            } else {
                vec![NodeEvent::NodeJoined {
                    incarnation: incarnation.clone(),
                    inventory: inventory.clone(),
                }]
            }
        }
        NodeCommand::Leave {
            incarnation,
            reason,
        }
        | NodeCommand::MarkLost {
            incarnation,
            reason,
        } => {
            // Only the incarnation that is connected can go away; a late report about an
            // older process must not take the new one down.
            if !s.connected || s.incarnation.as_deref() != Some(incarnation.as_str()) {
                vec![]
            } else if matches!(command, NodeCommand::Leave { .. }) {
                vec![NodeEvent::NodeLeft {
                    incarnation: incarnation.clone(),
                    reason: reason.clone(),
                }]
            } else {
                vec![NodeEvent::NodeLost {
                    incarnation: incarnation.clone(),
                    reason: reason.clone(),
                }]
            }
        }
        NodeCommand::RecordLeadership { epoch } => {
            if s.leader_epoch == Some(*epoch) {
                vec![]
            } else {
                vec![NodeEvent::LeadershipAcquired { epoch: *epoch }]
            }
        }
        NodeCommand::StartDrain {
            reason,
            deadline_ms,
            ignore_system_jobs,
            now_ms,
        } => {
            if !known {
                return Err(unknown());
            }
            if s.draining().is_some() {
                return Err(NodeError::AlreadyDraining(s.name.clone()));
            }
            vec![NodeEvent::DrainStarted {
                reason: reason
                    .clone()
                    .unwrap_or_else(|| "operator requested node drain".into()),
                started_at_ms: *now_ms,
                deadline_at_ms: now_ms.saturating_add(*deadline_ms as i64),
                deadline_ms: *deadline_ms,
                ignore_system_jobs: *ignore_system_jobs,
            }]
        }
        NodeCommand::CompleteDrain => match &s.drain {
            Some(d) if d.status == DrainStatus::Draining => vec![NodeEvent::DrainCompleted],
            _ => vec![],
        },
        NodeCommand::CancelDrain {
            reason,
            mark_eligible,
        } => {
            if !known {
                return Err(unknown());
            }
            match &s.drain {
                Some(d) if d.status != DrainStatus::Cancelled => {
                    vec![NodeEvent::DrainCancelled {
                        reason: reason
                            .clone()
                            .unwrap_or_else(|| "operator cancelled node drain".into()),
                        mark_eligible: *mark_eligible,
                    }]
                }
                _ => return Err(NodeError::NotDraining(s.name.clone())),
            }
        }
        NodeCommand::SetMaintenance { enabled, reason } => {
            if !known {
                return Err(unknown());
            }
            let current = s.maintenance.as_ref().is_some_and(|m| m.enabled);
            let drained = s
                .drain
                .as_ref()
                .is_some_and(|d| d.status == DrainStatus::Complete);
            // Switching maintenance off also releases a completed drain.
            let releases_drain = drained && !enabled;
            if current == *enabled && !releases_drain {
                vec![]
            } else {
                vec![NodeEvent::MaintenanceChanged {
                    enabled: *enabled,
                    reason: reason.clone(),
                }]
            }
        }
    })
}
