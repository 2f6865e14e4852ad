//! The executor agent's runner: runs a bundle's script on this host, bounded in time, memory
//! and concurrency, and reports what it printed.
//!
//! # Layout
//! - [`config`]: `ExecutorConfig` parsed from a node's `config` map.
//! - [`pool`]: node-local FIFO execution slots (`MN_EXECUTOR_*`).
//! - [`upload`], [`staging`]: the per-run directory, confined to the bundle's `payloads/`.
//! - [`command`]: placeholders and the (minimal) child environment; [`allocation`]: what the
//!   scheduler allocated, as environment variables.
//! - [`process`]: spawn in a process group, capped capture, timeout kill.
//! - [`structured`]: worker requests printed on stdout.
//! - [`retry`]: transient vs terminal failures; [`outcome`]: result types.
//! - [`sandbox`]: the bubblewrap runner for sandboxed executors (the spec's `runner`);
//!   [`container`]: the docker/podman runner for `docker_worker` executors; [`warmup`]: an
//!   agent's `warmup_command`, once per node before its first step.
//!
//! Flow of [`run_executor`]: startup delay (first run only) → acquire slots → the agent's
//! warmup (once per node) → per attempt:
//! stage a fresh run dir, run, judge → retry transient failures with exponential backoff while
//! holding the same slots (a retry is part of the same run, and re-queueing would let it starve
//! behind later work) → release the slots.

pub mod allocation;
pub mod attempt;
pub mod command;
pub mod config;
pub mod container;
pub mod outcome;
pub mod pool;
pub mod process;
pub mod profile;
pub mod retry;
pub mod run_root;
pub mod sandbox;
pub mod staging;
pub mod structured;
pub mod upload;
pub mod warmup;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

pub use config::{CommandSpec, ExecutorConfig, OutputType, UploadSpec};
pub use outcome::{ExecFailure, ExecOutcome, ExecSuccess, FailureKind};
pub use pool::{ExecutorPools, LeaseInfo, PoolConfigError, PoolError};
pub use structured::{EmitSpec, StructuredOutput};

/// Default for `MN_TEMP_DIR`.
pub const DEFAULT_TEMP_ROOT: &str = "/tmp/mirror_neuron";

/// Everything one executor run needs.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub job_id: String,
    pub agent_id: String,
    pub agent_type: String,
    /// The node's template label (`generic`, `map`, ...).
    pub template: String,
    pub config: ExecutorConfig,
    /// The bundle's `payloads/`; uploads may not leave it.
    pub payloads_dir: PathBuf,
    /// The incoming message in `mn-msg/1` wire form (`Message::to_wire_json`).
    pub message: Value,
    pub body: Value,
    /// Opaque state carried between runs (structured `next_state`).
    pub agent_state: Value,
    pub pools: Arc<ExecutorPools>,
    /// Whether this is the agent's first run (applies `startup_delay_ms`).
    pub first_run: bool,
    /// Parent of run directories (`MN_TEMP_DIR`, see [`temp_root_from_env`]).
    pub temp_root: PathBuf,
    /// Set last, over everything else: the allocation hints (see [`allocation`]).
    pub extra_env: Vec<(String, String)>,
    /// Where outputs larger than `config.inline_output_bytes` are spooled and stored; `None`
    /// keeps them in memory (up to the cap), as tests of the runner alone do.
    pub blobs: Option<crate::runtime::blobs::BlobStore>,
    /// The step's artifact folders (see `runtime::artifacts`), mounted into sandboxes and
    /// containers; the output folder is emptied before each attempt so that what a failed
    /// attempt left is never published by the retry.
    pub artifacts: Option<ArtifactDirs>,
}

/// A step's artifact folders on the host: inbound artifacts (read-only) and the folder whose
/// files are published (`MN_ARTIFACTS_IN`, `MN_ARTIFACT_DIR`).
#[derive(Debug, Clone)]
pub struct ArtifactDirs {
    pub input: PathBuf,
    pub output: PathBuf,
}

/// `MN_TEMP_DIR`, or `/tmp/mirror_neuron`.
pub fn temp_root_from_env() -> PathBuf {
    crate::config::var("MN_TEMP_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_TEMP_ROOT), PathBuf::from)
}

/// Runs the request's command, retrying transient failures; never panics on bad input.
pub async fn run_executor(req: ExecRequest) -> ExecOutcome {
    if req.first_run && req.config.spec.startup_delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(
            req.config.spec.startup_delay_ms,
        ))
        .await;
    }
    let lease = req
        .pools
        .acquire(&req.config.spec.pool, req.config.spec.pool_slots)
        .await
        .map_err(ExecFailure::pool)?;
    let req = Arc::new(req);
    warmup::ensure(&req).await?;
    let mut attempt = 1;
    loop {
        match attempt::run_once(&req).await {
            Ok(s) => {
                return Ok(ExecSuccess {
                    exit_code: s.exit_code,
                    stdout: s.stdout,
                    stderr: s.stderr,
                    stdout_blob: s.stdout_blob,
                    stderr_blob: s.stderr_blob,
                    output_cap: req.config.output_cap.note(),
                    structured: s.structured,
                    attempts: attempt,
                    pool: lease.info.pool.clone(),
                    lease: lease.info.clone(),
                    duration_ms: s.duration_ms,
                    truncated: s.truncated,
                    runner: req.config.spec.runner.name().to_string(),
                });
            }
            Err(mut failure) => {
                failure.attempts = attempt;
                if !failure.transient || attempt >= req.config.spec.max_attempts {
                    return Err(failure);
                }
                let wait = retry::backoff(req.config.spec.retry_backoff_ms, attempt);
                tracing::warn!(
                    job_id = %req.job_id, agent_id = %req.agent_id, attempt, error = %failure.error,
                    "transient executor failure; retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}
