//! The job owner: holds a job's lease, keeps its state in memory (folded from history), runs
//! agent steps, and appends every decision fenced by its lease epoch.
//!
//! One pass of the loop: record finished work, run every ready built-in agent step, begin
//! steps for executors and modules, append all of it as one batch, then start the processes.
//! An append that conflicts (an operator paused or cancelled the job meanwhile) reloads the
//! state from history and tries again; a stale epoch means another node owns the job now, and
//! this owner stops at once without writing anything more.

mod outcome;
mod work;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::domain::agents;
use crate::domain::event::EventEnvelope;
use crate::domain::job::{JobCommand, JobState, JobStatus, decide, evolve, seed_messages};
use crate::domain::manifest::{AgentType, Manifest};
use crate::runtime::clock::now_ms;
use crate::runtime::executor::ExecutorPools;
use crate::store::{AppendError, LeaseGrant, Store, StoreError, seal};
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
    running: Running,
    ctx: WorkContext,
    /// Steps to launch once their `AgentStepStarted` is appended: (agent, attempt, first run).
    to_launch: Vec<(String, u32, bool)>,
    /// This job's share of the node's owned-job and queue-depth gauges.
    gauges: crate::metrics::OwnedJob,
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
    let epoch = match store
        .acquire_job_lease(job_id, &cfg.node, cfg.lease_ttl.as_millis() as u64)
        .await?
    {
        LeaseGrant::Granted { epoch } => epoch,
        LeaseGrant::HeldBy { owner } => {
            return Ok(OwnerExit::NotOwner {
                holder: Some(owner),
            });
        }
    };
    let state = store.load_state(job_id).await?;
    if state.status.is_none() {
        store.release_job_lease(job_id, &cfg.node, epoch).await?;
        return Ok(OwnerExit::NotFound);
    }
    let payloads_dir = state
        .bundle_path
        .as_deref()
        .map(|b| PathBuf::from(b).join("payloads"))
        .unwrap_or_default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let ctx = WorkContext {
        job_id: job_id.to_string(),
        payloads_dir,
        temp_root: cfg.temp_root.clone(),
        pools,
        done: tx,
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
        running: Running::default(),
        ctx,
        to_launch: vec![],
        gauges: crate::metrics::OwnedJob::new(),
    };
    let exit = owner.main_loop(&mut rx, &mut shutdown, &mut lost).await;
    drop(renewer);
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

async fn renew_lease(
    store: Store,
    job_id: String,
    cfg: OwnerConfig,
    epoch: u64,
    lost: watch::Sender<bool>,
) {
    let mut tick = tokio::time::interval(cfg.renew_every);
    tick.tick().await;
    loop {
        tick.tick().await;
        match store
            .renew_job_lease(&job_id, &cfg.node, epoch, cfg.lease_ttl.as_millis() as u64)
            .await
        {
            Ok(true) => crate::metrics::job_lease_renewed(),
            Ok(false) => {
                crate::metrics::job_lease_lost();
                tracing::warn!(job_id, epoch, "job lease lost");
                let _ = lost.send(true);
                return;
            }
            // A Redis hiccup is not a lost lease yet; the TTL leaves room for retries, and
            // fencing stops any write made after the lease really expired.
            Err(e) => tracing::warn!(job_id, error = %e, "lease renewal failed; retrying"),
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
        });
        loop {
            if *lost.borrow() {
                return Ok(OwnerExit::NotOwner { holder: None });
            }
            self.plan();
            match self.flush().await {
                Ok(()) => {
                    self.gauges.update(&self.state);
                    self.launch()
                }
                Err(AppendError::Conflict { .. }) => {
                    self.reload().await?;
                    continue;
                }
                Err(AppendError::StaleEpoch { .. }) => {
                    return Ok(OwnerExit::NotOwner { holder: None });
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
                    self.running.finished(&done.agent_id);
                    self.done.push(done);
                    while let Ok(more) = rx.try_recv() {
                        self.running.finished(&more.agent_id);
                        self.done.push(more);
                    }
                }
                _ = tokio::time::sleep(self.cfg.poll_every) => self.refresh().await?,
                _ = shutdown.changed() => {}
                _ = lost.changed() => {}
            }
        }
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
        if self.state.status == Some(JobStatus::Pending) {
            let seeds = self
                .state
                .graph
                .as_ref()
                .map(|m| seed_messages(&self.job_id, m, now_ms()))
                .unwrap_or_default();
            self.decide_now(JobCommand::Start { seeds });
        }
        for done in std::mem::take(&mut self.done) {
            self.record(done);
        }
        if self.state.status != Some(JobStatus::Running) {
            return;
        }
        while self.pending.len() < self.cfg.max_batch && self.run_builtin_steps() {}
        self.begin_external_steps();
    }

    fn record(&mut self, done: WorkDone) {
        if let Some(module) = done.module {
            self.running.modules.insert(done.agent_id.clone(), module);
        }
        let command = match done.result {
            Ok(outcome) => JobCommand::FinishStep {
                agent_id: done.agent_id.clone(),
                message_id: done.message_id.clone(),
                outcome,
                now_ms: now_ms(),
            },
            Err(error) => JobCommand::FailStep {
                agent_id: done.agent_id.clone(),
                message_id: done.message_id.clone(),
                // The executor retries inside one step; report the attempts it really made.
                attempt: error
                    .get("attempts")
                    .and_then(serde_json::Value::as_u64)
                    .map_or(done.attempt, |a| a as u32),
                error,
                will_retry: false,
            },
        };
        self.decide_now(command);
    }

    fn manifest(&self) -> Option<&Manifest> {
        self.state.graph.as_ref()
    }

    /// Agents with a message waiting and nothing in flight, in id order.
    fn ready_agents(&self, kinds: &[AgentType]) -> Vec<(String, AgentType)> {
        let Some(m) = self.manifest() else {
            return vec![];
        };
        self.state
            .agents
            .iter()
            .filter(|(id, a)| {
                !self.running.is_busy(id) && (a.inflight.is_some() || !a.queue.is_empty())
            })
            .filter_map(|(id, _)| m.node(id).map(|n| (id.clone(), n.agent_type)))
            .filter(|(_, t)| kinds.contains(t))
            .collect()
    }

    fn has_ready_builtin(&self) -> bool {
        self.state.status == Some(JobStatus::Running)
            && self.pending.len() < self.cfg.max_batch
            && !self
                .ready_agents(&[AgentType::Router, AgentType::Aggregator, AgentType::Sensor])
                .is_empty()
    }

    /// Runs one message for every ready built-in agent. Returns whether anything ran.
    fn run_builtin_steps(&mut self) -> bool {
        let ready =
            self.ready_agents(&[AgentType::Router, AgentType::Aggregator, AgentType::Sensor]);
        let mut progressed = false;
        for (agent_id, _) in ready {
            let _step = tracing::debug_span!("agent_step", agent_id = %agent_id).entered();
            if self.pending.len() >= self.cfg.max_batch
                || self.state.status != Some(JobStatus::Running)
            {
                break;
            }
            let Some(agent) = self.state.agents.get(&agent_id) else {
                continue;
            };
            let Some(message) = agent
                .inflight
                .as_ref()
                .map(|f| f.message.clone())
                .or_else(|| agent.queue.front().cloned())
            else {
                continue;
            };
            let Some(node) = self.manifest().and_then(|m| m.node(&agent_id)) else {
                continue;
            };
            let Some(kind) = agents::Builtin::of(node.agent_type) else {
                continue;
            };
            // Effects are read off the current state without copying it; the state itself
            // advances when the FinishStep event is applied.
            let outcome = agents::effects(kind, &node.config, &agent.state, &message);
            if !self.decide_now(JobCommand::BeginStep {
                agent_id: agent_id.clone(),
                message_id: message.message_id.clone(),
                attempt: 1,
            }) {
                continue;
            }
            self.decide_now(JobCommand::FinishStep {
                agent_id,
                message_id: message.message_id,
                outcome,
                now_ms: now_ms(),
            });
            progressed = true;
        }
        progressed
    }

    /// Begins a step for every idle executor or module agent with work (redoing a message
    /// that was in flight when a previous owner stopped).
    fn begin_external_steps(&mut self) {
        for (agent_id, _) in self.ready_agents(&[AgentType::Executor, AgentType::Module]) {
            if self.to_launch.iter().any(|(a, _, _)| a == &agent_id) {
                continue;
            }
            let Some(agent) = self.state.agents.get(&agent_id) else {
                continue;
            };
            let (message_id, attempt) = match (&agent.inflight, agent.queue.front()) {
                (Some(f), _) => (f.message.message_id.clone(), f.attempt + 1),
                (None, Some(m)) => (m.message_id.clone(), 1),
                (None, None) => continue,
            };
            let first_run = agent.processed == 0 && attempt == 1;
            if self.decide_now(JobCommand::BeginStep {
                agent_id: agent_id.clone(),
                message_id,
                attempt,
            }) {
                self.to_launch.push((agent_id, attempt, first_run));
            }
        }
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

    /// Starts the processes whose steps are now durably begun.
    fn launch(&mut self) {
        for (agent_id, attempt, first_run) in std::mem::take(&mut self.to_launch) {
            let Some(node) = self.manifest().and_then(|m| m.node(&agent_id)).cloned() else {
                continue;
            };
            let Some(agent) = self.state.agents.get(&agent_id) else {
                continue;
            };
            let Some(inflight) = &agent.inflight else {
                continue;
            };
            let (message, prev) = (inflight.message.clone(), agent.state.clone());
            match node.agent_type {
                AgentType::Module => self
                    .running
                    .start_module(&self.ctx, &node, message, prev, attempt),
                _ => self
                    .running
                    .start_executor(&self.ctx, &node, message, prev, attempt, first_run),
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
        Ok(())
    }

    /// A cancelled or otherwise finished job stops its processes at once.
    fn stop_if_not_running(&mut self) {
        if self.state.is_terminal() {
            self.running.abort_all();
        }
    }
}
