//! The job owner: holds a job's lease, keeps its state in memory (folded from history), runs
//! agent steps, and appends every decision fenced by its lease epoch.
//!
//! One pass of the loop: record finished work, run every ready built-in agent step, begin
//! steps for executors and modules, append all of it as one batch, then start the processes.
//! An append that conflicts (an operator paused or cancelled the job meanwhile) reloads the
//! state from history and tries again; a stale epoch means another node owns the job now, and
//! this owner stops at once without writing anything more.

mod deployment;
mod outcome;
mod schedule;
mod services;
mod steps;
pub(crate) mod work;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::domain::cluster::{Need, RecoveryPolicy, resolve_recovery};
use crate::domain::event::EventEnvelope;
use crate::domain::job::{JobCommand, JobState, JobStatus, decide, evolve};
use crate::domain::manifest::{AgentType, Manifest};
use crate::runtime::clock::now_ms;
use crate::runtime::cluster::ClusterCache;
use crate::runtime::executor::ExecutorPools;
use crate::store::{AppendError, LeaseGrant, Store, StoreError, WorkItem, WorkResult, seal};
use work::{Running, WorkContext, WorkDone};

/// How an owner behaves.
#[derive(Debug, Clone)]
pub struct OwnerConfig {
    /// Node name written into the lease and the history.
    pub node: String,
    pub lease_ttl: Duration,
    pub renew_every: Duration,
    /// How often to look for changes made by others (operator commands).
    pub poll_every: Duration,
    /// Upper bound on events per append.
    pub max_batch: usize,
    pub temp_root: PathBuf,
    /// Set on cluster nodes: executor steps are placed on nodes through their work streams.
    /// `None` (the in-process `run`) runs them here.
    pub cluster: Option<Arc<ClusterCache>>,
    /// How long a node must have been up to count for cluster recovery.
    pub health_stable: Duration,
}

impl OwnerConfig {
    /// Defaults, with lease timings from `MN_JOB_LEASE_DURATION_MS` / `MN_JOB_LEASE_RENEW_INTERVAL_MS`.
    pub fn from_env(node: impl Into<String>) -> Result<OwnerConfig, crate::config::ConfigError> {
        Ok(OwnerConfig {
            node: node.into(),
            lease_ttl: Duration::from_millis(crate::config::u64_var(
                "MN_JOB_LEASE_DURATION_MS",
                15_000,
            )?),
            renew_every: Duration::from_millis(crate::config::u64_var(
                "MN_JOB_LEASE_RENEW_INTERVAL_MS",
                3_000,
            )?),
            poll_every: Duration::from_millis(200),
            max_batch: 2_000,
            temp_root: crate::runtime::executor::temp_root_from_env(),
            cluster: None,
            health_stable: Duration::from_millis(crate::config::u64_var(
                "MN_CLUSTER_HEALTH_STABLE_MS",
                5_000,
            )?),
        })
    }
}

/// Why an owner stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerExit {
    /// The job reached a terminal status.
    Finished(JobStatus),
    /// Another node holds the lease (before or while this one ran the job).
    NotOwner { holder: Option<String> },
    /// The job does not exist.
    NotFound,
    /// Asked to stop (shutdown); the job stays active for the next owner.
    Stopped,
}

/// Errors that end an owner abnormally (the job itself is left intact for the next owner).
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    History(#[from] crate::runtime::history::HistoryError),
}

/// A step begun in the pending batch, to start once the batch is appended.
struct Launch {
    agent_id: String,
    message_id: String,
    attempt: u32,
    first_run: bool,
    /// The node it was placed on; `None` runs it in this process.
    node: Option<String>,
}

struct Owner {
    store: Store,
    job_id: String,
    cfg: OwnerConfig,
    epoch: u64,
    state: JobState,
    /// Events decided and applied to `state` but not yet appended.
    pending: Vec<EventEnvelope>,
    /// Finished work not yet recorded; kept until its events are appended.
    done: Vec<WorkDone>,
    /// Finished work waiting for the results of earlier messages of its agent (`ordered`).
    held: Vec<WorkDone>,
    running: Running,
    ctx: WorkContext,
    /// Steps to launch once their `AgentStepStarted` is appended.
    to_launch: Vec<Launch>,
    /// This job's share of the node's owned-job and queue-depth gauges.
    gauges: crate::metrics::OwnedJob,
    /// When planning may be tried again (after a blocked attempt).
    next_schedule_at: tokio::time::Instant,
    /// Preflight and registration progress of the job's services.
    services: services::Progress,
    /// The deployment replacements this owner has acted on.
    seen: deployment::Seen,
    /// Placed steps a deployment superseded, by agent and message: the attempt whose stop
    /// is awaited.
    superseded: std::collections::HashMap<(String, String), u32>,
}

/// Runs the owner of `job_id` until the job ends, the lease is lost, or `shutdown` is set.
/// Everything it logs (and its agent steps log) carries the job id through the `job` span.
#[tracing::instrument(name = "job", skip_all, fields(job_id = %job_id))]
pub async fn run(
    store: Store,
    job_id: String,
    cfg: OwnerConfig,
    pools: Arc<ExecutorPools>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<OwnerExit, OwnerError> {
    let job_id = job_id.as_str();
    let epoch = match acquire_lease(&store, job_id, &cfg).await? {
        LeaseGrant::Granted { epoch } => epoch,
        LeaseGrant::HeldBy { owner } => {
            return Ok(OwnerExit::NotOwner {
                holder: Some(owner),
            });
        }
    };
    // A job whose view is terminal is finished (a view only shows what the history holds):
    // nothing to own, and no reason to fold a long history to learn it.
    if let Ok(Some(view)) = store.job_view(job_id).await
        && let Some(status) = view.status.filter(|s| s.is_terminal())
    {
        store.release_job_lease(job_id, &cfg.node, epoch).await?;
        return Ok(OwnerExit::Finished(status));
    }
    // Hot or archived: a finished job whose history was archived is still the job it was.
    let blobs = crate::runtime::blobs::BlobStore::from_env();
    let state = crate::runtime::history::load_state(&store, &blobs, job_id).await?;
    if state.status.is_none() {
        store.release_job_lease(job_id, &cfg.node, epoch).await?;
        return Ok(OwnerExit::NotFound);
    }
    let payloads_dir = match crate::runtime::bundle_archive::payloads_dir(
        &store,
        state.bundle_path.as_deref(),
        state.bundle_digest.as_deref(),
        &crate::runtime::bundle_archive::cache_root(),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "payloads unavailable on this node");
            PathBuf::new()
        }
    };
    if let Some(cache) = &cfg.cluster {
        // Resolve the recovery policy and place work on a current picture of the cluster.
        let _ = cache.refresh(&store).await;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Results of work placed on nodes come back on the job's results stream; read what
    // arrived while the job had no owner before deciding anything.
    let mut early = vec![];
    let mut results_from = "0".to_string();
    let results_reader = if cfg.cluster.is_some() {
        if let Ok(mut conn) = store.blocking_conn(Duration::from_secs(1)).await
            && let Ok(items) = store
                .read_results(&mut conn, job_id, "0", Duration::from_millis(1))
                .await
        {
            for (id, r) in items {
                results_from = id;
                if let Some(r) = r {
                    early.push(remote_done(r));
                }
            }
        }
        Some(AbortOnDrop(tokio::spawn(read_results(
            store.clone(),
            job_id.to_string(),
            results_from,
            tx.clone(),
        ))))
    } else {
        None
    };
    let ctx = WorkContext {
        job_id: job_id.to_string(),
        payloads_dir,
        temp_root: cfg.temp_root.clone(),
        pools,
        done: tx,
        store: store.clone(),
    };
    let (lost_tx, mut lost) = watch::channel(false);
    // Dropped with this future: an owner that dies must stop renewing, or its lease would
    // outlive it and keep every other node away from the job.
    let renewer = AbortOnDrop(tokio::spawn(
        renew_lease(
            store.clone(),
            job_id.to_string(),
            cfg.clone(),
            epoch,
            lost_tx,
        )
        .in_current_span(),
    ));
    let mut owner = Owner {
        store,
        job_id: job_id.to_string(),
        cfg,
        epoch,
        state,
        pending: vec![],
        done: vec![],
        held: vec![],
        running: Running::default(),
        ctx,
        to_launch: vec![],
        gauges: crate::metrics::OwnedJob::new(),
        next_schedule_at: tokio::time::Instant::now(),
        services: services::Progress::default(),
        seen: deployment::Seen::default(),
        superseded: Default::default(),
    };
    owner.seen = deployment::Seen::of(&owner.state);
    owner.done.extend(early);
    let exit = owner.main_loop(&mut rx, &mut shutdown, &mut lost).await;
    drop(renewer);
    drop(results_reader);
    if let Some(cache) = &owner.cfg.cluster {
        cache.forget(job_id);
    }
    if matches!(exit, Ok(OwnerExit::Finished(_))) && owner.cfg.cluster.is_some() {
        let _ = owner.store.drop_results(job_id).await;
    }
    owner.running.abort_all();
    if !matches!(exit, Ok(OwnerExit::NotOwner { .. })) {
        let _ = owner
            .store
            .release_job_lease(job_id, &owner.cfg.node, epoch)
            .await;
    }
    exit
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A result reported by the node that ran a step, as the owner records it.
fn remote_done(r: WorkResult) -> WorkDone {
    WorkDone {
        agent_id: r.agent_id,
        message_id: r.message_id,
        attempt: r.attempt,
        result: r.result,
        module: None,
        remote: true,
    }
}

/// Follows the job's results stream, handing each result to the owner loop.
async fn read_results(
    store: Store,
    job_id: String,
    mut after: String,
    tx: mpsc::UnboundedSender<WorkDone>,
) {
    let mut conn = None;
    loop {
        let Some(c) = store
            .blocking_conn_in(&mut conn, Duration::from_secs(1))
            .await
        else {
            continue;
        };
        match store
            .read_results(c, &job_id, &after, Duration::from_millis(1_000))
            .await
        {
            Ok(items) => {
                for (id, r) in items {
                    after = id;
                    if let Some(r) = r
                        && tx.send(remote_done(r)).is_err()
                    {
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::debug!(job_id, error = %e, "results read failed");
                conn = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Takes the job's lease, retrying a retryable failure for up to one lease duration: a Redis
/// that is failing over, or a grant that replicas have not confirmed yet
/// (`MN_REDIS_MIN_REPLICAS_ACK`). A retry by the same owner keeps the epoch of a grant that
/// did happen, so retrying is safe; giving up leaves the job to be assigned again.
async fn acquire_lease(
    store: &Store,
    job_id: &str,
    cfg: &OwnerConfig,
) -> Result<LeaseGrant, StoreError> {
    let deadline = tokio::time::Instant::now() + cfg.lease_ttl;
    loop {
        match store
            .acquire_job_lease(job_id, &cfg.node, cfg.lease_ttl.as_millis() as u64)
            .await
        {
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tracing::debug!(job_id, error = %e, "lease not acquired yet; retrying");
                tokio::time::sleep(cfg.poll_every).await;
            }
            other => return other,
        }
    }
}

async fn renew_lease(
    store: Store,
    job_id: String,
    cfg: OwnerConfig,
    epoch: u64,
    lost: watch::Sender<bool>,
) {
    let mut tick = tokio::time::interval(cfg.renew_every);
    tick.tick().await;
    // When the last renewal that succeeded was sent: Redis counts the lease from a moment
    // later, so stopping `lease_ttl` after this instant stops before anyone else can hold it.
    let mut renewed_at = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let sent = tokio::time::Instant::now();
        // A renewal that hangs (a half-open connection) counts as failed after one interval,
        // so self-fencing never waits for the client's own timeouts.
        let renewal = crate::store::within(
            cfg.renew_every,
            store.renew_job_lease(&job_id, &cfg.node, epoch, cfg.lease_ttl.as_millis() as u64),
        );
        match renewal.await {
            Ok(true) => {
                renewed_at = sent;
                crate::metrics::job_lease_renewed();
            }
            Ok(false) => {
                crate::metrics::job_lease_lost();
                tracing::warn!(job_id, epoch, "job lease lost");
                let _ = lost.send(true);
                return;
            }
            // A Redis hiccup is not a lost lease yet; the TTL leaves room for retries, and
            // fencing stops any write made after the lease really expired. Past the TTL the
            // lease may be someone else's: stop acting (self-fencing), do not wait for Redis.
            Err(e) if renewed_at.elapsed() < cfg.lease_ttl => {
                tracing::warn!(job_id, error = %e, "lease renewal failed; retrying")
            }
            Err(e) => {
                tracing::warn!(job_id, epoch, error = %e, "job lease expired while Redis was unreachable; stopping");
                let _ = lost.send(true);
                return;
            }
        }
    }
}

impl Owner {
    async fn main_loop(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<WorkDone>,
        shutdown: &mut watch::Receiver<bool>,
        lost: &mut watch::Receiver<bool>,
    ) -> Result<OwnerExit, OwnerError> {
        self.decide_now(JobCommand::AcquireLease {
            owner: self.cfg.node.clone(),
            epoch: self.epoch,
            // Without a cluster this owner is an in-process run of the CLI (`run`, `job
            // recover`): recorded so the leader adopts the job whatever its recovery policy
            // once this process is gone, since no node of that name will ever come back.
            local_run: self.cfg.cluster.is_none(),
        });
        self.adopt_inflight().await;
        loop {
            if *lost.borrow() {
                return Ok(OwnerExit::NotOwner { holder: None });
            }
            self.services().await;
            self.schedule().await;
            self.plan();
            match self.flush().await {
                Ok(()) => {
                    self.gauges.update(&self.state);
                    self.launch().await
                }
                Err(AppendError::Conflict { .. }) => {
                    self.reload().await?;
                    continue;
                }
                Err(AppendError::StaleEpoch { current, .. }) => {
                    tracing::warn!(job_id = %self.job_id, epoch = self.epoch, current, "append rejected by fencing: another node owns the job now");
                    return Ok(OwnerExit::NotOwner { holder: None });
                }
                // Redis unreachable: keep the batch and retry; the lease renewer stops this
                // owner once the lease may have passed to someone else.
                Err(AppendError::Store(e)) if e.is_retryable() => {
                    tracing::warn!(job_id = %self.job_id, error = %e, "append failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(self.cfg.poll_every) => {}
                        _ = lost.changed() => {}
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            if let Some(status) = self.state.status.filter(|s| s.is_terminal()) {
                return Ok(OwnerExit::Finished(status));
            }
            if *shutdown.borrow() {
                return Ok(OwnerExit::Stopped);
            }
            if self.has_ready_builtin() {
                continue;
            }
            tokio::select! {
                Some(done) = rx.recv() => {
                    self.receive(done);
                    while let Ok(more) = rx.try_recv() {
                        self.receive(more);
                    }
                }
                _ = tokio::time::sleep(self.cfg.poll_every) => {
                    if let Err(e) = self.refresh().await {
                        tracing::warn!(job_id = %self.job_id, error = %e, "could not read the history; retrying");
                    }
                }
                _ = shutdown.changed() => {}
                _ = lost.changed() => {}
            }
        }
    }

    /// Takes a finished piece of work in. A result from another node counts only if it is for
    /// the message the agent has in flight; an older duplicate (a step redone after a move)
    /// is dropped here and the decider would refuse it anyway.
    fn receive(&mut self, done: WorkDone) {
        if !done.remote {
            self.running.finished(&done.agent_id, &done.message_id);
            self.done.push(done);
            return;
        }
        if self.superseded_step_ended(&done.agent_id, &done.message_id, done.attempt) {
            return;
        }
        // A node stopped a step a deployment superseded (seen by an owner that took over
        // since): not a failure; the message runs again under the new version.
        let stopped = done.result.as_ref().is_err_and(|e| {
            e.get("kind").and_then(serde_json::Value::as_str)
                == Some(crate::runtime::cluster::SUPERSEDED)
        });
        if stopped {
            self.running.finished(&done.agent_id, &done.message_id);
            return;
        }
        let current = self
            .state
            .agents
            .get(&done.agent_id)
            .and_then(|a| a.in_flight(&done.message_id))
            // An older attempt (redone after a deployment replaced the agent) is not current.
            .is_some_and(|f| f.attempt == done.attempt);
        if !current || self.running.is_local(&done.agent_id, &done.message_id) {
            tracing::debug!(job_id = %self.job_id, agent_id = %done.agent_id, "ignoring a result for a message no longer in flight");
            return;
        }
        let same = |d: &WorkDone| d.agent_id == done.agent_id && d.message_id == done.message_id;
        if self.done.iter().chain(&self.held).any(same) {
            return;
        }
        self.running.finished(&done.agent_id, &done.message_id);
        self.done.push(done);
    }

    /// Applies a command's events to the in-memory state and queues them for the next append.
    /// Returns false when the decider refused (the reason is logged).
    fn decide_now(&mut self, command: JobCommand) -> bool {
        match decide(&self.state, &command) {
            Ok(events) if events.is_empty() => true,
            Ok(events) => {
                let sealed = seal(
                    &self.job_id,
                    self.state.seq,
                    self.epoch,
                    now_ms(),
                    None,
                    None,
                    events,
                );
                for env in &sealed {
                    self.state = evolve(std::mem::take(&mut self.state), env);
                }
                self.pending.extend(sealed);
                true
            }
            Err(e) => {
                tracing::debug!(job_id = %self.job_id, command = command.name(), error = %e, "command refused");
                false
            }
        }
    }

    /// Decides everything that can be decided now, in memory.
    fn plan(&mut self) {
        // A per-node job starts once its copies are planned (on a cluster; in this process
        // it runs as one copy).
        let awaiting_copies = crate::domain::job::per_node(&self.state)
            && self.cfg.cluster.is_some()
            && self.state.plan.is_none();
        if self.state.status == Some(JobStatus::Pending) && !awaiting_copies {
            self.decide_now(JobCommand::Start);
        }
        if self.state.status.is_some_and(|s| !s.is_terminal()) && self.state.reliability.is_none() {
            let reliability = self.resolve_reliability();
            self.decide_now(JobCommand::RecordReliability { reliability });
        }
        self.record_finished();
        if self.state.status != Some(JobStatus::Running) {
            return;
        }
        while self.pending.len() < self.cfg.max_batch && self.run_builtin_steps() {}
        self.begin_external_steps();
        if self.to_launch.is_empty()
            && let Some(result) = crate::domain::job::sysbatch_done(&self.state)
        {
            self.decide_now(JobCommand::Complete { result });
        }
        if self.to_launch.is_empty()
            && let Some(result) = crate::domain::job::stalled_on_dead_letters(&self.state)
        {
            tracing::warn!(job_id = %self.job_id, "batch job has nothing left to run and only dead letters; failing it");
            self.decide_now(JobCommand::Fail { result });
        }
    }

    /// The recovery policy this job gets here (core-spec 6.8).
    fn resolve_reliability(&self) -> serde_json::Value {
        let requested = RecoveryPolicy::parse(
            self.manifest()
                .and_then(|m| m.policies.get("recovery_mode"))
                .and_then(serde_json::Value::as_str),
        );
        let healthy = self
            .cfg
            .cluster
            .as_ref()
            .map(|c| c.stable_healthy(self.cfg.health_stable))
            .unwrap_or_default();
        let names: Vec<String> = healthy.iter().map(|(n, _)| n.clone()).collect();
        let profiles: Vec<String> = self
            .manifest()
            .map(|m| {
                let mut p: Vec<String> = m
                    .nodes
                    .iter()
                    .filter_map(|n| Need::of(n).execution_profile)
                    .collect();
                p.sort();
                p.dedup();
                p
            })
            .unwrap_or_default();
        let r = resolve_recovery(
            requested,
            &names,
            self.state.bundle_digest.is_some(),
            &profiles,
            |p| {
                healthy
                    .iter()
                    .filter(|(_, ps)| ps.iter().any(|x| x == p))
                    .count()
            },
            now_ms(),
        );
        serde_json::to_value(r).unwrap_or_default()
    }

    fn manifest(&self) -> Option<&Manifest> {
        self.state.graph.as_ref()
    }

    /// Appends the pending events as one fenced batch.
    async fn flush(&mut self) -> Result<(), AppendError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let expected = self.pending[0].seq - 1;
        self.store
            .append(&self.job_id, expected, self.epoch, &self.pending)
            .await?;
        crate::metrics::job_ended_by(&self.pending, &self.state);
        self.pending.clear();
        self.done.clear();
        Ok(())
    }

    /// Starts the work whose steps are now durably begun: here, or on the node it was placed.
    async fn launch(&mut self) {
        for l in std::mem::take(&mut self.to_launch) {
            let source = crate::domain::job::source_of(&l.agent_id);
            let Some(mut spec) = self.manifest().and_then(|m| m.node(source)).cloned() else {
                continue;
            };
            // A per-node copy runs (and reports) under its own id.
            spec.node_id.clone_from(&l.agent_id);
            let Some(agent) = self.state.agents.get(&l.agent_id) else {
                continue;
            };
            let Some(inflight) = agent.in_flight(&l.message_id) else {
                continue;
            };
            let (message, prev) = (inflight.message.clone(), agent.state.clone());
            if let Some(node) = &l.node {
                let allocation = self
                    .state
                    .plan
                    .as_ref()
                    .and_then(|p| p.allocations.iter().find(|a| a.agent_id == l.agent_id))
                    .filter(|a| &a.node == node)
                    .cloned();
                let (bundle_path, bundle_digest) = self.bundle_of(&l.agent_id);
                let visible_gpus = match (&self.cfg.cluster, &allocation) {
                    (Some(cache), Some(a)) => cache.gpu_ids(node, &a.device_ids),
                    _ => vec![],
                };
                let item = WorkItem {
                    job_id: self.job_id.clone(),
                    agent: spec,
                    message,
                    prev_state: prev,
                    attempt: l.attempt,
                    first_run: l.first_run,
                    epoch: self.epoch,
                    bundle_path,
                    bundle_digest,
                    moves: 0,
                    allocation,
                    visible_gpus,
                    deployment_version: self.state.deployment.agents.get(source).map(|d| d.version),
                };
                match self.store.dispatch_work(node, &item).await {
                    Ok(_) => self
                        .running
                        .mark_dispatched(&l.agent_id, &item.message.message_id),
                    // Not marked busy: the next pass begins the step again (a new attempt).
                    Err(e) => {
                        tracing::warn!(job_id = %self.job_id, agent_id = %l.agent_id, node, error = %e, "could not place the step")
                    }
                }
                continue;
            }
            let ctx = self.step_context(&l.agent_id).await;
            match spec.agent_type {
                AgentType::Module => self
                    .running
                    .start_module(&ctx, &spec, message, prev, l.attempt),
                _ => {
                    self.running
                        .start_executor(&ctx, &spec, message, prev, l.attempt, l.first_run)
                }
            }
        }
    }

    /// Throws away undecided work and folds the history again (after losing an append race).
    async fn reload(&mut self) -> Result<(), OwnerError> {
        let kept: Vec<WorkDone> = std::mem::take(&mut self.done);
        self.pending.clear();
        self.to_launch.clear();
        self.state = self.store.load_state(&self.job_id).await?;
        self.done = kept;
        self.stop_if_not_running();
        self.follow_deployment().await;
        Ok(())
    }

    /// Applies events others appended since our last look (operator pause/resume/cancel).
    async fn refresh(&mut self) -> Result<(), OwnerError> {
        if !self.pending.is_empty() {
            return Ok(());
        }
        for item in self
            .store
            .history(&self.job_id, self.state.seq + 1, None)
            .await?
        {
            match &item.event {
                Ok(env) => self.state = evolve(std::mem::take(&mut self.state), env),
                Err(e) => {
                    tracing::warn!(job_id = %self.job_id, stream_id = %item.stream_id, error = %e, "skipping undecodable event")
                }
            }
            self.state.seq = self.state.seq.max(item.seq);
        }
        self.stop_if_not_running();
        self.follow_deployment().await;
        Ok(())
    }

    /// A cancelled or otherwise finished job stops its processes at once.
    fn stop_if_not_running(&mut self) {
        if self.state.is_terminal() {
            self.running.abort_all();
        }
    }
}
