//! The in-process runtime used when no `--target` is given: submit a bundle, own the job in
//! this process, keep the views current, and report the final job record.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::domain::job::JobCommand;
use crate::domain::view::JobView;
use crate::runtime::bundle::Bundle;
use crate::runtime::clock::now_ms;
use crate::runtime::commands::{self, CommandError};
use crate::runtime::executor::ExecutorPools;
use crate::runtime::hand_back::{StopCause, hand_back};
use crate::runtime::owner::{self, OwnerConfig, OwnerExit};
use crate::runtime::{Projectors, wait_projections_caught_up};
use crate::store::Store;

/// A job id `<graph_id>-<unix_ms>-<12 hex>`; characters a key cannot hold become `-`.
pub fn new_job_id(graph_id: &str, now_ms: i64) -> String {
    let safe: String = graph_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(120)
        .collect();
    let hex = &uuid::Uuid::new_v4().simple().to_string()[..12];
    format!("{safe}-{now_ms}-{hex}")
}

/// Submits a loaded bundle; returns the new job id.
pub async fn submit(store: &Store, bundle: &Bundle) -> Result<String, CommandError> {
    let job_id = new_job_id(&bundle.manifest.graph_id, now_ms());
    submit_as(store, bundle, &job_id).await?;
    Ok(job_id)
}

/// Submits a loaded bundle under a chosen job id (a v2 run id); fails if it exists.
pub async fn submit_as(store: &Store, bundle: &Bundle, job_id: &str) -> Result<(), CommandError> {
    let now = now_ms();
    // Archived so nodes on other machines can run the steps; a bundle that cannot be archived
    // still runs wherever its folder is visible.
    let bundle_digest = match crate::runtime::bundle_archive::archive(store, &bundle.payloads).await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "bundle not archived; nodes need its folder");
            None
        }
    };
    let command = JobCommand::Submit {
        graph_id: bundle.manifest.graph_id.clone(),
        job_name: bundle.manifest.job_name.clone(),
        manifest: bundle.manifest.to_value(),
        bundle_path: Some(bundle.root.display().to_string()),
        bundle_digest,
        deployment: None,
        now_ms: now,
    };
    commands::execute(store, job_id, &command, Some(job_id)).await?;
    Ok(())
}

/// How a local run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub exit: OwnerExit,
    /// The job's view once the projections caught up (absent only if the job vanished).
    pub view: Option<JobView>,
    /// `timeout` passed before the job ended.
    pub timed_out: bool,
    /// `interrupt` resolved before the job ended.
    pub interrupted: bool,
}

impl RunReport {
    /// Why the run was asked to stop early, if it was.
    pub fn stopped(&self) -> Option<StopCause> {
        match (self.interrupted, self.timed_out) {
            (true, _) => Some(StopCause::Interrupted),
            (false, true) => Some(StopCause::TimedOut),
            (false, false) => None,
        }
    }

    /// Why the job was handed back: the run stopped early and the job had not ended by then.
    pub fn handed_back(&self) -> Option<StopCause> {
        self.stopped().filter(|_| self.exit == OwnerExit::Stopped)
    }
}

/// Owns `job_id` in this process until it ends or `timeout` passes, calling `progress` with
/// the job view every `tick` (views come from the in-process projection worker).
pub async fn run_job(
    store: &Store,
    job_id: &str,
    node: &str,
    timeout: Option<Duration>,
    progress: impl FnMut(&JobView),
) -> anyhow::Result<RunReport> {
    run_job_until(
        store,
        job_id,
        node,
        timeout,
        std::future::pending(),
        progress,
    )
    .await
}

/// [`run_job`] that also stops when `interrupt` resolves. A run stopped early hands the job
/// back (see [`hand_back`]).
pub async fn run_job_until(
    store: &Store,
    job_id: &str,
    node: &str,
    timeout: Option<Duration>,
    interrupt: impl Future<Output = ()>,
    mut progress: impl FnMut(&JobView),
) -> anyhow::Result<RunReport> {
    let pools = Arc::new(ExecutorPools::from_env()?);
    let cfg = OwnerConfig::from_env(node)?;
    let projectors = Projectors::start(store, node, 1);
    let (stop_tx, stop_rx) = watch::channel(false);
    // The run's services are checked by this process, as a node checks the ones it hosts.
    let _monitor = AbortOnDrop(tokio::spawn(crate::runtime::services::monitor::run(
        store.clone(),
        node.to_string(),
        stop_rx.clone(),
    )));
    let owner = tokio::spawn(owner::run(
        store.clone(),
        job_id.to_string(),
        cfg,
        pools,
        stop_rx,
    ));
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut stopped = None;
    let mut owner = owner;
    let mut interrupt = std::pin::pin!(interrupt);
    let exit = loop {
        tokio::select! {
            res = &mut owner => break res??,
            () = &mut interrupt, if stopped.is_none() => {
                stopped = Some(StopCause::Interrupted);
                let _ = stop_tx.send(true);
            }
            _ = tokio::time::sleep(Duration::from_millis(150)) => {
                // Progress is best effort: a Redis that is briefly away (the owner retries
                // its appends meanwhile) must not end a run whose job goes on.
                match store.job_view(job_id).await {
                    Ok(Some(view)) => progress(&view),
                    Ok(None) => {}
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(job_id, error = %e, "cannot read the job's progress; retrying")
                    }
                    Err(e) => return Err(e.into()),
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) && stopped.is_none() {
                    stopped = Some(StopCause::TimedOut);
                    let _ = stop_tx.send(true);
                }
            }
        }
    };
    // The job may have ended while the owner was stopping: then there is nothing to hand back.
    if let Some(cause) = stopped.filter(|_| exit == OwnerExit::Stopped)
        && let Err(e) = hand_back(store, job_id, node, cause).await
    {
        // The owner released the lease key already, and the history marks this owner a local
        // run: a serving node adopts the job either way; only the reason goes unrecorded.
        tracing::warn!(job_id, error = %e, "the hand-back was not recorded in the history");
    }
    let caught_up = wait_projections_caught_up(store, Duration::from_secs(30)).await;
    projectors.stop().await;
    caught_up?;
    let view = read_view(store, job_id).await?;
    if let Some(v) = &view {
        progress(v);
    }
    Ok(RunReport {
        exit,
        view,
        timed_out: stopped == Some(StopCause::TimedOut),
        interrupted: stopped == Some(StopCause::Interrupted),
    })
}

/// The job's view, retried with backoff while Redis is briefly unreachable (30 s at most).
async fn read_view(store: &Store, job_id: &str) -> anyhow::Result<Option<JobView>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(100);
    loop {
        match store.job_view(job_id).await {
            Ok(view) => return Ok(view),
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(job_id, error = %e, "cannot read the job; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Aborts a background task when dropped (however the run ends).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
