//! Membership: a node joins with its inventory, keeps its liveness lease alive, rejoins when it
//! was marked lost (a partition, a long pause), and leaves cleanly on shutdown.

use tokio::sync::watch;

use super::ClusterConfig;
use crate::domain::node::{Inventory, NodeCommand, NodeStatus};
use crate::runtime::clock::now_ms;
use crate::store::{NodeCommandError, Store};

/// Who this process is in the cluster.
#[derive(Debug, Clone)]
pub struct Membership {
    pub node: String,
    /// Unique per process start: tells a restarted node from its previous life.
    pub incarnation: String,
    pub inventory: Inventory,
}

/// Records the join and takes the liveness lease.
pub async fn join(
    store: &Store,
    me: &Membership,
    cfg: &ClusterConfig,
) -> Result<(), NodeCommandError> {
    store
        .heartbeat(&me.node, &me.incarnation, cfg.node_lease)
        .await?;
    store
        .node_command(
            &me.node,
            &NodeCommand::Join {
                incarnation: me.incarnation.clone(),
                inventory: me.inventory.clone(),
            },
            now_ms(),
        )
        .await?;
    Ok(())
}

/// Renews the liveness lease until `stop`; rejoins if the cluster marked this node lost.
pub async fn run_heartbeat(
    store: Store,
    me: Membership,
    cfg: ClusterConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut beats: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.heartbeat_every) => {}
            _ = stop.changed() => return,
        }
        beats += 1;
        if let Err(e) = store
            .heartbeat(&me.node, &me.incarnation, cfg.node_lease)
            .await
        {
            tracing::warn!(node = %me.node, error = %e, "heartbeat failed");
            continue;
        }
        // Every few beats, make sure the cluster still counts this process in.
        if beats.is_multiple_of(3) {
            let view = store.node_view(&me.node).await.ok().flatten();
            let counted = view.as_ref().is_some_and(|v| {
                v.connected
                    && v.incarnation.as_deref() == Some(me.incarnation.as_str())
                    && v.status() != NodeStatus::Lost
            });
            if !counted {
                tracing::info!(node = %me.node, "rejoining the cluster");
                if let Err(e) = join(&store, &me, &cfg).await {
                    tracing::warn!(node = %me.node, error = %e, "rejoin failed");
                }
            }
        }
    }
}

/// Records a clean departure and drops the liveness lease.
pub async fn leave(store: &Store, me: &Membership, reason: &str) {
    let cmd = NodeCommand::Leave {
        incarnation: me.incarnation.clone(),
        reason: reason.to_string(),
    };
    if let Err(e) = store.node_command(&me.node, &cmd, now_ms()).await {
        tracing::warn!(node = %me.node, error = %e, "could not record leaving the cluster");
    }
    let _ = store.drop_heartbeat(&me.node, &me.incarnation).await;
}
