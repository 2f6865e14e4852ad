//! The leader: one node at a time holds the leader lease (fenced by its epoch, like job
//! leases) and reconciles the cluster. It observes node views, liveness, work backlogs and job
//! leases, asks the pure reconciler what to do, and carries it out as commands: node commands
//! (lost, drain complete), messages to nodes (take or hand back a job), moving work, and job
//! commands through the decider (pause for review). It never writes job state itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::watch;

use super::ClusterConfig;
use crate::domain::cluster::{Action, JobObs, NodeObs, RecoveryPolicy, Snapshot, reconcile};
use crate::domain::job::JobCommand;
use crate::domain::node::NodeCommand;
use crate::runtime::clock::now_ms;
use crate::runtime::commands;
use crate::store::{InboxCommand, LeaseGrant, Store, StoreError, within};

/// Campaigns for the leader lease until `stop`, sweeping while leader. `leading` tells the
/// rest of the node (the schedule loop) whether this node leads right now.
pub async fn run_leader(
    store: Store,
    node: String,
    cfg: ClusterConfig,
    leading: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    let ttl = cfg.leader_lease.as_millis() as u64;
    let mut held: Option<(u64, Instant)> = None;
    let mut last_sweep: Option<Instant> = None;
    loop {
        let attempt = Instant::now();
        held = match held {
            None => match within(
                cfg.leader_renew_every,
                store.acquire_leader_lease(&node, ttl),
            )
            .await
            {
                Ok(LeaseGrant::Granted { epoch }) => {
                    tracing::info!(node, epoch, "became cluster leader");
                    crate::metrics::leader_changed();
                    crate::metrics::set_leader(true);
                    let cmd = NodeCommand::RecordLeadership { epoch };
                    if let Err(e) = store.node_command(&node, &cmd, now_ms()).await {
                        tracing::warn!(node, error = %e, "leadership not recorded");
                    }
                    last_sweep = None;
                    Some((epoch, attempt))
                }
                Ok(LeaseGrant::HeldBy { .. }) => None,
                Err(e) => {
                    tracing::debug!(node, error = %e, "leader campaign failed");
                    None
                }
            },
            Some((epoch, last_ok)) => match within(
                cfg.leader_renew_every,
                store.renew_leader_lease(&node, epoch, ttl),
            )
            .await
            {
                Ok(true) => {
                    crate::metrics::lease_renewed();
                    Some((epoch, attempt))
                }
                Ok(false) => {
                    tracing::warn!(node, epoch, "leader lease lost");
                    crate::metrics::lease_lost();
                    crate::metrics::set_leader(false);
                    None
                }
                // Keep leading while the lease can still be ours; stop before it can't.
                Err(e) if last_ok.elapsed() < cfg.leader_lease => {
                    tracing::warn!(node, error = %e, "leader lease renewal failed; retrying");
                    Some((epoch, last_ok))
                }
                Err(_) => {
                    crate::metrics::lease_lost();
                    crate::metrics::set_leader(false);
                    None
                }
            },
        };
        leading.store(held.is_some(), Ordering::SeqCst);
        if held.is_some() && last_sweep.is_none_or(|t| t.elapsed() >= cfg.sweep_every) {
            last_sweep = Some(Instant::now());
            if let Err(e) = sweep(&store, &node, &cfg).await {
                tracing::warn!(node, error = %e, "leader sweep failed");
            }
        }
        let wait = if held.is_some() {
            cfg.leader_renew_every.min(cfg.sweep_every)
        } else {
            cfg.leader_renew_every
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {
                leading.store(false, Ordering::SeqCst);
                if let Some((epoch, _)) = held {
                    let _ = store.release_leader_lease(&node, epoch).await;
                }
                return;
            }
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    pub actions: Vec<Action>,
    pub moved_work: usize,
}

/// Observes the cluster and applies the reconciler's actions once.
pub async fn sweep(
    store: &Store,
    me: &str,
    _cfg: &ClusterConfig,
) -> Result<SweepReport, StoreError> {
    let actions = what_to_do(store).await?;
    let mut report = SweepReport::default();
    for action in &actions {
        match action {
            Action::MarkLost { node, incarnation } => {
                tracing::warn!(node, "node lost: its liveness lease expired");
                crate::metrics::node_lost();
                let cmd = NodeCommand::MarkLost {
                    incarnation: incarnation.clone(),
                    reason: "liveness lease expired".into(),
                };
                if let Err(e) = store.node_command(node, &cmd, now_ms()).await {
                    tracing::warn!(node, error = %e, "could not mark node lost");
                }
                crate::runtime::services::node_loss::deregister_node(store, node).await;
            }
            Action::ReclaimWork { from, to } => {
                report.moved_work += move_work(store, me, from, to).await?;
            }
            Action::Assign { job_id, node } => {
                tracing::debug!(job_id, node, "assigning job");
                store
                    .send_to_node(
                        node,
                        &InboxCommand::Assign {
                            job_id: job_id.clone(),
                        },
                    )
                    .await?;
            }
            Action::Release { job_id, node } => {
                store
                    .send_to_node(
                        node,
                        &InboxCommand::Release {
                            job_id: job_id.clone(),
                        },
                    )
                    .await?;
            }
            Action::PauseForReview { job_id, reason } => {
                tracing::warn!(job_id, reason, "pausing job for review");
                let cmd = JobCommand::Pause {
                    reason: Some(format!("paused for review: {reason}")),
                };
                if let Err(e) = commands::execute(store, job_id, &cmd, None).await {
                    tracing::warn!(job_id, error = %e, "could not pause job for review");
                }
            }
            Action::CompleteDrain { node } => {
                tracing::info!(node, "drain complete");
                if let Err(e) = store
                    .node_command(node, &NodeCommand::CompleteDrain, now_ms())
                    .await
                {
                    tracing::warn!(node, error = %e, "could not complete drain");
                }
            }
        }
    }
    report.actions = actions;
    Ok(report)
}

/// What a sweep would do now, without doing it (`reconcile_node --dry-run`).
pub async fn what_to_do(store: &Store) -> Result<Vec<Action>, StoreError> {
    Ok(reconcile(&observe(store).await?))
}

/// Moves every unfinished item off `from` onto the least loaded of `to`.
async fn move_work(
    store: &Store,
    me: &str,
    from: &str,
    to: &[String],
) -> Result<usize, StoreError> {
    let items = store.reclaim_work(from, &format!("reclaimer-{me}")).await?;
    let mut loads: Vec<(u64, String)> = store
        .pending_work_of(to)
        .await?
        .into_iter()
        .zip(to.iter().cloned())
        .collect();
    let mut moved = 0;
    for (id, item) in items {
        if let Some(mut item) = item {
            loads.sort();
            let Some((load, target)) = loads.first_mut() else {
                break;
            };
            item.moves += 1;
            // Device ids and amounts were for the old node; the new one runs it unallocated.
            item.allocation = None;
            item.visible_gpus.clear();
            store.dispatch_work(target, &item).await?;
            *load += 1;
            moved += 1;
            tracing::info!(job_id = %item.job_id, agent_id = %item.agent.node_id, from, to = %target, "moved work off node");
        }
        store.ack_work(from, &id).await?;
    }
    Ok(moved)
}

/// Gathers the snapshot the reconciler decides on.
async fn observe(store: &Store) -> Result<Snapshot, StoreError> {
    let views = store.node_views().await?;
    let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
    let alive = store.alive(&names).await?;
    crate::metrics::cluster_nodes(alive.iter().filter(|a| a.is_some()).count());
    let backlog = store.pending_work_of(&names).await?;
    let nodes = views
        .into_iter()
        .zip(alive)
        .zip(backlog)
        .map(|((state, alive), pending_work)| NodeObs {
            state,
            alive,
            pending_work,
        })
        .collect();
    let active = store.active_job_views().await?;
    let ids: Vec<String> = active.iter().map(|v| v.job_id.clone()).collect();
    let holders = store.job_lease_holders(&ids).await?;
    let jobs = active
        .into_iter()
        .zip(holders)
        .filter_map(|(v, holder)| {
            let recovery = v
                .reliability
                .as_ref()
                .and_then(|r| r.get("effective_recovery_policy"))
                .and_then(Value::as_str)
                .map(|p| RecoveryPolicy::parse(Some(p)));
            Some(JobObs {
                status: v.status?,
                lease_owner: holder.map(|(o, _)| o),
                last_owner: v.lease_owner,
                last_owner_local_run: v.lease_owner_local_run,
                recovery,
                job_id: v.job_id,
            })
        })
        .collect();
    Ok(Snapshot {
        now_ms: now_ms(),
        nodes,
        jobs,
    })
}
