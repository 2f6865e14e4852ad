//! Work that runs outside the owner loop: executor processes and process-module calls. Each
//! runs in its own task and reports back on a channel; the owner records the result.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::outcome::{executor_outcome, module_outcome};
use crate::domain::agents::StepOutcome;
use crate::domain::artifact::{ArtifactRef, attach};
use crate::domain::manifest::NodeSpec;
use crate::domain::message::Message;
use crate::runtime::artifacts::{self, StepArtifacts};
use crate::runtime::blobs::BlobStore;
use crate::runtime::executor::command::base_env;
use crate::runtime::executor::config::parse_command;
use crate::runtime::executor::{self, ExecRequest, ExecutorConfig, ExecutorPools};
use crate::runtime::module_process::ModuleProcess;
use crate::runtime::outputs::{OutputSink, bound_outcome, charge_budget};
use crate::store::Store;

/// What a finished piece of work reports.
pub struct WorkDone {
    pub agent_id: String,
    pub message_id: String,
    pub attempt: u32,
    pub result: Result<StepOutcome, Value>,
    /// A process module hands its (still running) process back for the next message.
    pub module: Option<ModuleProcess>,
    /// Reported by the node the step was placed on (through the results stream).
    pub remote: bool,
}

impl Drop for Running {
    /// An owner that goes away (crash of its task, shutdown) takes its processes with it:
    /// work whose result can no longer be recorded must not keep running.
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// Everything the work tasks need from the job.
#[derive(Clone)]
pub struct WorkContext {
    pub job_id: String,
    pub payloads_dir: PathBuf,
    pub temp_root: PathBuf,
    pub pools: Arc<ExecutorPools>,
    pub done: mpsc::UnboundedSender<WorkDone>,
    /// For the job's output budget.
    pub store: Store,
}

/// The owner's running work, by agent and message (an agent with `config.concurrency` runs
/// several messages at once).
#[derive(Default)]
pub struct Running {
    tasks: HashMap<String, HashMap<String, JoinHandle<()>>>,
    /// Steps placed on nodes, by agent: the messages whose results are awaited.
    dispatched: HashMap<String, HashSet<String>>,
    /// Idle module processes, kept between messages.
    pub modules: HashMap<String, ModuleProcess>,
}

impl Running {
    /// Whether a step for this message runs here or on a node.
    pub fn is_running(&self, agent_id: &str, message_id: &str) -> bool {
        self.is_local(agent_id, message_id) || self.is_dispatched(agent_id, message_id)
    }

    /// Whether the message's step runs in this process.
    pub fn is_local(&self, agent_id: &str, message_id: &str) -> bool {
        self.tasks
            .get(agent_id)
            .is_some_and(|t| t.contains_key(message_id))
    }

    /// Whether the message's step was placed on a node and its result is awaited.
    pub fn is_dispatched(&self, agent_id: &str, message_id: &str) -> bool {
        self.dispatched
            .get(agent_id)
            .is_some_and(|d| d.contains(message_id))
    }

    /// Notes a step placed on a node.
    pub fn mark_dispatched(&mut self, agent_id: &str, message_id: &str) {
        self.dispatched
            .entry(agent_id.to_string())
            .or_default()
            .insert(message_id.to_string());
    }

    /// Stops the agent's local steps (their process groups die with their tasks). Placed
    /// steps stay awaited: their nodes stop them and report. Returns whether one was running.
    pub fn stop_local(&mut self, agent_id: &str) -> bool {
        let tasks = self.tasks.remove(agent_id).unwrap_or_default();
        let any = !tasks.is_empty();
        tasks.into_values().for_each(|t| t.abort());
        any
    }

    pub fn finished(&mut self, agent_id: &str, message_id: &str) {
        if let Some(t) = self.tasks.get_mut(agent_id) {
            t.remove(message_id);
            if t.is_empty() {
                self.tasks.remove(agent_id);
            }
        }
        if let Some(d) = self.dispatched.get_mut(agent_id) {
            d.remove(message_id);
            if d.is_empty() {
                self.dispatched.remove(agent_id);
            }
        }
    }

    /// Stops everything (cancel, lease lost): aborting a task drops its child process, whose
    /// guard kills the whole process group.
    pub fn abort_all(&mut self) {
        for (_, t) in self.tasks.drain().flat_map(|(_, t)| t) {
            t.abort();
        }
        // Placed steps stop on their nodes when they see the job end.
        self.dispatched.clear();
        self.modules.clear();
    }

    /// Runs `work` in its own task and reports its result on the owner's channel.
    fn spawn_step<F>(
        &mut self,
        ctx: &WorkContext,
        agent_id: &str,
        message_id: String,
        attempt: u32,
        work: F,
    ) where
        F: Future<Output = (Result<StepOutcome, Value>, Option<ModuleProcess>)> + Send + 'static,
    {
        let done = ctx.done.clone();
        let id = agent_id.to_string();
        let message_id_key = message_id.clone();
        // A child of the owner's `job` span, so the step's logs carry the job id too.
        let span =
            tracing::info_span!("agent_step", agent_id = %id, message_id = %message_id, attempt);
        let handle = tokio::spawn(
            async move {
                let (result, module) = work.await;
                let _ = done.send(WorkDone {
                    agent_id: id,
                    message_id,
                    attempt,
                    result,
                    module,
                    remote: false,
                });
            }
            .instrument(span),
        );
        if let Some(old) = self
            .tasks
            .entry(agent_id.to_string())
            .or_default()
            .insert(message_id_key, handle)
        {
            old.abort();
        }
    }

    /// Starts an executor run for `message`.
    pub fn start_executor(
        &mut self,
        ctx: &WorkContext,
        node: &NodeSpec,
        message: Message,
        prev_state: Value,
        attempt: u32,
        first_run: bool,
    ) {
        let (ctx2, node2, message_id) = (ctx.clone(), node.clone(), message.message_id.clone());
        let work = async move {
            (
                run_executor(&ctx2, &node2, &message, &prev_state, first_run).await,
                None,
            )
        };
        self.spawn_step(ctx, &node.node_id, message_id, attempt, work);
    }

    /// Sends `message` to the agent's module process (started on first use).
    pub fn start_module(
        &mut self,
        ctx: &WorkContext,
        node: &NodeSpec,
        message: Message,
        prev_state: Value,
        attempt: u32,
    ) {
        let existing = self.modules.remove(&node.node_id);
        let (ctx2, node2, message_id) = (ctx.clone(), node.clone(), message.message_id.clone());
        let work = async move { run_module(&ctx2, &node2, existing, &message, &prev_state).await };
        self.spawn_step(ctx, &node.node_id, message_id, attempt, work);
    }
}

/// What an executor step needs besides the agent and the message.
pub struct StepEnv<'a> {
    pub job_id: &'a str,
    pub payloads_dir: &'a std::path::Path,
    pub temp_root: &'a std::path::Path,
    pub pools: &'a Arc<ExecutorPools>,
    /// Variables set over everything else (the allocation hints of placed work).
    pub extra_env: &'a [(String, String)],
    /// Where the job's output budget is counted and blobs are announced.
    pub store: &'a Store,
    /// The node running the step when it answers blob requests (`serve`); `None` in `run`.
    pub node: Option<&'a str>,
}

async fn run_executor(
    ctx: &WorkContext,
    node: &NodeSpec,
    message: &Message,
    prev_state: &Value,
    first_run: bool,
) -> Result<StepOutcome, Value> {
    let env = StepEnv {
        job_id: &ctx.job_id,
        payloads_dir: &ctx.payloads_dir,
        temp_root: &ctx.temp_root,
        pools: &ctx.pools,
        extra_env: &[],
        store: &ctx.store,
        node: None,
    };
    execute_step(&env, node, message, prev_state, first_run).await
}

/// Runs one executor step: the owner's own runs and work placed on this node both come here.
pub async fn execute_step(
    ctx: &StepEnv<'_>,
    node: &NodeSpec,
    message: &Message,
    prev_state: &Value,
    first_run: bool,
) -> Result<StepOutcome, Value> {
    let config = ExecutorConfig::from_node(node)
        .map_err(|e| json!({ "error": format!("invalid executor config for {}: {e}", node.node_id), "kind": "config" }))?;
    if let Some(w) = config
        .output_cap
        .warning(&format!("nodes.{}.config", node.node_id))
    {
        tracing::warn!(job_id = %ctx.job_id, "{w}");
    }
    let blobs = BlobStore::from_env();
    let artifacts = stage_artifacts(ctx, &blobs, node, message).await?;
    let mut extra_env = ctx.extra_env.to_vec();
    extra_env.extend(artifacts.env());
    let req = ExecRequest {
        job_id: ctx.job_id.to_string(),
        agent_id: node.node_id.clone(),
        agent_type: node.agent_type.as_str().to_string(),
        template: node.template.as_str().to_string(),
        config: config.clone(),
        payloads_dir: ctx.payloads_dir.to_path_buf(),
        message: message.to_wire_json(),
        body: message.body.clone(),
        agent_state: prev_state
            .get("agent_state")
            .cloned()
            .unwrap_or(Value::Null),
        pools: ctx.pools.clone(),
        first_run,
        temp_root: ctx.temp_root.to_path_buf(),
        extra_env,
        blobs: Some(blobs.clone()),
        artifacts: Some(executor::ArtifactDirs {
            input: artifacts.input.clone(),
            output: artifacts.output.clone(),
        }),
    };
    let result = crate::metrics::executor_run(&config.spec.pool, executor::run_executor(req)).await;
    let published = match &result {
        Ok(_) => publish_artifacts(&artifacts, &blobs).await,
        Err(_) => Ok(vec![]),
    };
    // Removing the folders may take a while for large artifacts: off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(artifacts)).await;
    match result {
        Ok(ok) => {
            let published = published?;
            let sink = OutputSink {
                store: ctx.store,
                node: ctx.node,
                blobs: &blobs,
            };
            let artifact_bytes: u64 = published.iter().map(|a| a.size).sum();
            charge_budget(
                &sink,
                ctx.job_id,
                &config,
                ok.stored_bytes() + artifact_bytes,
            )
            .await?;
            let mut outcome = executor_outcome(&config, &node.node_id, prev_state, message, &ok);
            attach(&mut outcome.emits, &message.artifacts, &published).map_err(
                |e| json!({ "error": format!("structured output: {e}"), "kind": "bad_output" }),
            )?;
            bound_outcome(&sink, config.inline_output_bytes, outcome).await
        }
        Err(failure) => {
            Err(serde_json::to_value(&failure)
                .unwrap_or_else(|_| json!({ "error": failure.error })))
        }
    }
}

/// The step's artifact folders under `MN_JOB_ARTIFACT_ROOT`, with the incoming message's
/// artifacts fetched into its input folder. A missing artifact fails the step, naming it.
async fn stage_artifacts(
    ctx: &StepEnv<'_>,
    blobs: &BlobStore,
    node: &NodeSpec,
    message: &Message,
) -> Result<StepArtifacts, Value> {
    let root = artifacts::roots::artifact_root();
    let limit = executor::config::max_artifact_bytes()
        .map_err(|e| json!({ "error": e, "kind": "config" }))?;
    let staged = artifacts::stage(
        ctx.store,
        blobs,
        &root,
        ctx.job_id,
        &node.node_id,
        &message.artifacts,
        limit,
    )
    .await
    .map_err(|e| e.to_step_error())?;
    // What was fetched from another node is held here now: one more node to ask for it.
    let fetched: Vec<String> = message
        .artifacts
        .iter()
        .map(|a| a.sha256.clone())
        .filter(|d| blobs.contains(d))
        .collect();
    if let Some(node) = ctx.node
        && let Err(e) = ctx.store.announce_blobs(node, &fetched).await
    {
        tracing::warn!(node, error = %e, "fetched artifacts not announced");
    }
    Ok(staged)
}

/// Stores what the step left in its output folder as blobs (each file at most
/// `MN_MAX_ARTIFACT_BYTES`) and returns their references.
async fn publish_artifacts(
    step: &StepArtifacts,
    blobs: &BlobStore,
) -> Result<Vec<ArtifactRef>, Value> {
    let limit = executor::config::max_artifact_bytes()
        .map_err(|e| json!({ "error": e, "kind": "config" }))?;
    let (output, blobs) = (step.output.clone(), blobs.clone());
    tokio::task::spawn_blocking(move || artifacts::publish(&output, &blobs, limit))
        .await
        .map_err(|e| json!({ "error": format!("artifact task failed: {e}"), "kind": "artifact" }))?
        .map_err(|e| e.to_step_error())
}

async fn run_module(
    ctx: &WorkContext,
    node: &NodeSpec,
    existing: Option<ModuleProcess>,
    message: &Message,
    prev_state: &Value,
) -> (Result<StepOutcome, Value>, Option<ModuleProcess>) {
    let mut module = match existing {
        Some(m) => m,
        None => {
            let command = match parse_command(node.config.get("command")) {
                Ok(c) => c,
                Err(e) => {
                    return (
                        Err(json!({ "error": format!("module {}: {e}", node.node_id) })),
                        None,
                    );
                }
            };
            let pass_env = executor::config::parse_pass_env(&node.config).unwrap_or_default();
            let environment = executor::config::parse_environment(node.config.get("environment"))
                .unwrap_or_default();
            let mut env = base_env(&pass_env, &environment);
            env.push(("MIRROR_NEURON_JOB_ID".to_string(), ctx.job_id.clone()));
            env.push(("MIRROR_NEURON_AGENT_ID".to_string(), node.node_id.clone()));
            match ModuleProcess::spawn(command, ctx.payloads_dir.clone(), env) {
                Ok(m) => m,
                Err(e) => return (Err(json!({ "error": e.to_string() })), None),
            }
        }
    };
    match module
        .handle(message.to_wire_json(), prev_state.clone())
        .await
    {
        Ok(reply) => (Ok(module_outcome(&reply, prev_state)), Some(module)),
        Err(e) => (Err(json!({ "error": e.to_string() })), Some(module)),
    }
}
