//! The work consumer: runs the executor steps placed on this node and reports each result on
//! the job's results stream, then acks the item. Unacked items survive a crash of this
//! process: the next process under the same name re-reads them, and if the node is lost the
//! leader moves them elsewhere.
//!
//! A step is stopped when its job ends (cancel, or another attempt finished it), and all steps
//! are stopped without an ack when this node passes its drain deadline: the leader then moves
//! them to other nodes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::domain::job::JobStatus;
use crate::domain::node::NodeState;
use crate::runtime::clock::now_ms;
use crate::runtime::executor::ExecutorPools;
use crate::runtime::executor::allocation::allocation_env;
use crate::runtime::owner::work::{StepEnv, execute_step};
use crate::store::{Store, StoreError, WorkItem, WorkResult};

/// How long a finished step's result is retried while Redis is away (a restart, a Sentinel
/// failover) before it is left unacked for a restart or the leader to redo.
const REPORT_RETRY_FOR: Duration = Duration::from_secs(60);

/// How a step ended on this node.
enum Ended {
    Done(WorkResult),
    /// The job is over: nothing to report.
    JobOver,
    /// The node is past its drain deadline: leave the item for the leader to move.
    Drained,
}

pub async fn run_worker(
    store: Store,
    node: String,
    pools: Arc<ExecutorPools>,
    temp_root: PathBuf,
    mut stop: watch::Receiver<bool>,
) {
    if let Err(e) = store.ensure_work_group(&node).await {
        tracing::warn!(node, error = %e, "work group could not be created");
    }
    let (drained_tx, drained) = watch::channel(false);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut conn = None;
    // First the items this node was given before a restart, then new ones.
    let mut pending = true;
    loop {
        if *stop.borrow() {
            tasks.abort_all();
            return;
        }
        while tasks.try_join_next().is_some() {}
        let past_deadline = drain_deadline_passed(&store, &node).await;
        let _ = drained_tx.send(past_deadline);
        if past_deadline {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let Some(c) = store
            .blocking_conn_in(&mut conn, Duration::from_secs(1))
            .await
        else {
            continue;
        };
        let read = tokio::select! {
            r = store.read_work(c, &node, &node, pending, Duration::from_millis(500), if pending { 100_000 } else { 64 }) => r,
            _ = stop.changed() => continue,
        };
        let items = match read {
            Ok(items) => items,
            Err(e) => {
                tracing::debug!(node, error = %e, "work read failed");
                conn = None;
                continue;
            }
        };
        // The items held from before a restart come in one read (re-reading them would
        // return the same entries again).
        pending = false;
        for (id, item) in items {
            let Some(item) = item else {
                tracing::warn!(node, id, "dropping an undecodable work item");
                let _ = store.ack_work(&node, &id).await;
                continue;
            };
            let (store, node, pools, temp_root, drained) = (
                store.clone(),
                node.clone(),
                pools.clone(),
                temp_root.clone(),
                drained.clone(),
            );
            tasks.spawn(async move {
                match run_item(&store, &node, &pools, &temp_root, &item, drained).await {
                    Ended::Done(result) => {
                        if let Err(e) = report(&store, &item.job_id, &result).await {
                            // Unacked: redone by this node after a restart, or moved.
                            tracing::warn!(job_id = %item.job_id, error = %e, "result not reported");
                            return;
                        }
                        let _ = store.ack_work(&node, &id).await;
                    }
                    Ended::JobOver => {
                        let _ = store.ack_work(&node, &id).await;
                    }
                    Ended::Drained => {}
                }
            });
        }
    }
}

/// Reports a result, retrying while Redis is unreachable: the step is done, and a result
/// dropped on a brief outage would leave its owner waiting on this node until it restarts.
/// A result that arrives twice (a retry after a lost reply) is dropped by the owner as a
/// duplicate of a message no longer in flight.
async fn report(store: &Store, job_id: &str, result: &WorkResult) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + REPORT_RETRY_FOR;
    let mut pause = Duration::from_millis(100);
    loop {
        match store.push_result(job_id, result).await {
            Err(e) if e.is_retryable() && tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!(job_id, error = %e, "result not reported yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

async fn run_item(
    store: &Store,
    node: &str,
    pools: &Arc<ExecutorPools>,
    temp_root: &std::path::Path,
    item: &WorkItem,
    mut drained: watch::Receiver<bool>,
) -> Ended {
    match liveness(store, item).await {
        Live::Yes => {}
        Live::JobOver => return Ended::JobOver,
        Live::Superseded => return superseded(item, node),
    }
    let payloads_dir = match crate::runtime::bundle_archive::payloads_dir(
        store,
        item.bundle_path.as_deref(),
        item.bundle_digest.as_deref(),
        &crate::runtime::bundle_archive::cache_root(),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            let error = format!("payloads unavailable on node {node}: {e}");
            return Ended::Done(result_of(
                item,
                node,
                Err(serde_json::json!({"error": error, "kind": "bundle"})),
            ));
        }
    };
    let hints = item
        .allocation
        .as_ref()
        .map(|a| allocation_env(a, &item.visible_gpus))
        .unwrap_or_default();
    let env = StepEnv {
        job_id: &item.job_id,
        payloads_dir: &payloads_dir,
        temp_root,
        pools,
        extra_env: &hints,
        store,
        node: Some(node),
    };
    let step = execute_step(
        &env,
        &item.agent,
        &item.message,
        &item.prev_state,
        item.first_run,
    );
    tokio::pin!(step);
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            result = &mut step => return Ended::Done(result_of(item, node, result)),
            _ = check.tick() => {
                // Dropping the step future kills its process group.
                match liveness(store, item).await {
                    Live::Yes => {}
                    Live::JobOver => return Ended::JobOver,
                    Live::Superseded => return superseded(item, node),
                }
            }
            _ = drained.changed() => {
                if *drained.borrow() {
                    tracing::info!(job_id = %item.job_id, agent_id = %item.agent.node_id, "drain deadline passed; leaving the step to be moved");
                    return Ended::Drained;
                }
            }
        }
    }
}

fn result_of(
    item: &WorkItem,
    node: &str,
    result: Result<crate::domain::agents::StepOutcome, serde_json::Value>,
) -> WorkResult {
    WorkResult {
        agent_id: item.agent.node_id.clone(),
        message_id: item.message.message_id.clone(),
        attempt: item.attempt,
        epoch: item.epoch,
        node: node.to_string(),
        result,
    }
}

/// Whether a placed step should go on.
enum Live {
    Yes,
    /// The job ended: nothing to report.
    JobOver,
    /// A deployment replaced the agent since the step was placed.
    Superseded,
}

async fn liveness(store: &Store, item: &WorkItem) -> Live {
    let Ok(Some(v)) = store.job_view(&item.job_id).await else {
        return Live::Yes;
    };
    if v.status.is_some_and(JobStatus::is_terminal) {
        return Live::JobOver;
    }
    let source = crate::domain::job::source_of(&item.agent.node_id);
    let now = v.deployment.agents.get(source).map(|d| d.version);
    // Newer only: the view may lag behind the owner that placed the step.
    if now > item.deployment_version {
        Live::Superseded
    } else {
        Live::Yes
    }
}

/// A superseded step is reported as stopped (its process is gone once this returns): the
/// owner waits for this before it starts the agent again under the new version, so the old
/// and new processes never overlap (a server's port, a GPU).
fn superseded(item: &WorkItem, node: &str) -> Ended {
    Ended::Done(result_of(
        item,
        node,
        Err(serde_json::json!({"error": "superseded by a deployment", "kind": SUPERSEDED})),
    ))
}

/// The error kind of a step stopped because a deployment replaced its agent.
pub const SUPERSEDED: &str = "superseded";

async fn drain_deadline_passed(store: &Store, node: &str) -> bool {
    let view: Option<NodeState> = store.node_view(node).await.ok().flatten();
    view.as_ref()
        .and_then(|v| v.draining())
        .is_some_and(|d| now_ms() >= d.deadline_at_ms)
}
