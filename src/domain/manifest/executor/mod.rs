//! An executor node's `config`, parsed into a typed [`ExecutorSpec`].
//!
//! This is the one parser of executor settings: `parse_manifest` runs it on every executor
//! node (so `validate`, `run` and a submission through `serve` refuse a bad value with its
//! path), and the runner builds its `ExecutorConfig` from the same spec (adding the limits
//! that come from this host's environment). A value the runner would refuse is therefore
//! refused before the job starts, never half-way through it.

mod command;
mod concurrency;
mod container;
mod numbers;
mod runner;
mod uploads;

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{Errors, ValidationError, join};
use super::run_paths::run_dir_path;

pub use command::{CommandSpec, valid_env_name};
pub use concurrency::{Concurrency, MAX_CONCURRENCY};
pub use container::profile_named;
pub use runner::{CONTAINER_DRIVER, ContainerSpec, Network, Runner, SandboxSpec};
pub use uploads::UploadSpec;

/// What the executor emits after a successful run when stdout carries no structured output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputType {
    /// Key absent: emit `executor_result`.
    Default,
    /// Key present with `null`: emit nothing (the node is a sink or emits only structured output).
    None,
    /// Emit this message type.
    Named(String),
}

/// The manifest's executor settings, typed. Defaults are applied here, once.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorSpec {
    pub command: CommandSpec,
    /// Working directory relative to the run dir (`/sandbox/job/...` is remapped into it).
    pub workdir: Option<String>,
    /// Variables set for the child, on top of the minimal host set.
    pub environment: Vec<(String, String)>,
    pub uploads: Vec<UploadSpec>,
    pub timeout: Option<Duration>,
    /// Whether a timed-out run counts as transient (retried while attempts remain).
    pub retry_on_timeout: bool,
    /// `max_output_bytes` as asked; the runner clamps it to the host's ceiling.
    pub max_output_bytes: Option<u64>,
    /// `max_job_output_bytes`: lowers the server's per-job output budget for this agent's steps.
    pub max_job_output_bytes: Option<u64>,
    pub pool: String,
    pub pool_slots: u32,
    pub max_attempts: u32,
    pub retry_backoff_ms: u64,
    /// Sleep before the first run only, to stagger launch waves.
    pub startup_delay_ms: u64,
    pub output_message_type: OutputType,
    /// Host, sandbox or container (see [`runner`]).
    pub runner: Runner,
    /// `warmup_command`: run once per agent on a node, in the same runner, before its first
    /// step there.
    pub warmup: Option<Warmup>,
    /// Messages worked on at once, and the order results land in (see [`concurrency`]).
    pub concurrency: Concurrency,
}

/// A command that prepares an agent's runner before its first step on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Warmup {
    pub command: CommandSpec,
    /// `warmup_timeout_ms`, default [`DEFAULT_WARMUP_TIMEOUT_MS`].
    pub timeout: Duration,
}

/// How long a warmup may take when `warmup_timeout_ms` is not set.
pub const DEFAULT_WARMUP_TIMEOUT_MS: u64 = 60_000;

/// The pool an executor uses when its config names none.
pub const DEFAULT_POOL: &str = "default";

impl ExecutorSpec {
    /// Parses a node's `config` object; error paths are relative to it (`timeout_seconds`).
    /// Resources are read from `config.resources` (see [`ExecutorSpec::parse_node`]).
    pub fn parse(config: &Map<String, Value>) -> Result<ExecutorSpec, Vec<ValidationError>> {
        let resources = config
            .get("resources")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        ExecutorSpec::parse_node(config, &resources)
    }

    /// Parses a node's `config` with the node's `resources` (its runner and memory limit).
    pub fn parse_node(
        config: &Map<String, Value>,
        resources: &Value,
    ) -> Result<ExecutorSpec, Vec<ValidationError>> {
        let mut errs = Errors::default();
        match parse_at(config, (resources, "resources"), "", &mut errs) {
            Some(spec) if errs.is_empty() => Ok(spec),
            _ => Err(errs.into_vec()),
        }
    }
}

/// `command` alone, for process modules, which run a command but are not executors.
pub fn parse_command(value: Option<&Value>) -> Result<CommandSpec, String> {
    let mut errs = Errors::default();
    command::parse(value, "command", &mut errs).ok_or_else(|| first_message(errs))
}

/// `environment` alone, for process modules.
pub fn parse_environment(value: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let mut errs = Errors::default();
    let pairs = command::environment(value, "environment", &mut errs);
    if errs.is_empty() {
        Ok(pairs)
    } else {
        Err(first_message(errs))
    }
}

fn first_message(errs: Errors) -> String {
    errs.into_vec()
        .into_iter()
        .next()
        .map_or_else(|| "invalid".to_string(), |e| e.message)
}

/// Parses the executor config at `path` (`nodes[2].config`), with the node's resources and
/// their path, reporting every problem.
pub(crate) fn parse_at(
    config: &Map<String, Value>,
    resources: (&Value, &str),
    path: &str,
    errs: &mut Errors,
) -> Option<ExecutorSpec> {
    let before = errs.len();
    let at = |key: &str| join(path, key);
    let command = command::parse(config.get("command"), &at("command"), errs);
    let workdir = numbers::opt_string(config, "workdir", path, errs);
    if let Some(w) = &workdir
        && let Err(e) = run_dir_path(w, "workdir")
    {
        errs.push(at("workdir"), e);
    }
    let spec = ExecutorSpec {
        command: command.unwrap_or_else(|| CommandSpec::Argv(Vec::new())),
        workdir,
        environment: command::environment(config.get("environment"), &at("environment"), errs),
        uploads: uploads::parse(config, path, errs),
        timeout: numbers::timeout(config.get("timeout_seconds"), &at("timeout_seconds"), errs),
        retry_on_timeout: numbers::opt_bool(config, "retry_on_timeout", path, errs)
            .unwrap_or(false),
        max_output_bytes: numbers::positive(config, "max_output_bytes", path, errs),
        max_job_output_bytes: numbers::positive(config, "max_job_output_bytes", path, errs),
        pool: numbers::opt_string(config, "pool", path, errs)
            .unwrap_or_else(|| DEFAULT_POOL.to_string()),
        pool_slots: numbers::positive_u32(config, "pool_slots", path, errs).unwrap_or(1),
        max_attempts: numbers::positive_u32(config, "max_attempts", path, errs).unwrap_or(1),
        retry_backoff_ms: numbers::non_negative(config, "retry_backoff_ms", path, errs)
            .unwrap_or(500),
        startup_delay_ms: numbers::non_negative(config, "startup_delay_ms", path, errs)
            .unwrap_or(0),
        output_message_type: output_type(config, path, errs),
        runner: runner::parse(config, resources.0, path, resources.1, errs),
        warmup: warmup(config, path, errs),
        concurrency: concurrency::parse(config, path, errs),
    };
    (errs.len() == before).then_some(spec)
}

/// `warmup_command` (a command like `command`) with `warmup_timeout_ms`.
fn warmup(config: &Map<String, Value>, path: &str, errs: &mut Errors) -> Option<Warmup> {
    let timeout_ms = numbers::positive(config, "warmup_timeout_ms", path, errs)
        .unwrap_or(DEFAULT_WARMUP_TIMEOUT_MS);
    let value = config.get("warmup_command").filter(|v| !v.is_null())?;
    let command = command::parse(Some(value), &join(path, "warmup_command"), errs)?;
    Some(Warmup {
        command,
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// Absent key, explicit null and a string mean three different things (see [`OutputType`]).
fn output_type(config: &Map<String, Value>, path: &str, errs: &mut Errors) -> OutputType {
    match config.get("output_message_type") {
        None => OutputType::Default,
        Some(Value::Null) => OutputType::None,
        Some(Value::String(s)) if !s.is_empty() => OutputType::Named(s.clone()),
        Some(_) => {
            errs.push(
                join(path, "output_message_type"),
                "output_message_type must be a non-empty string or null",
            );
            OutputType::Default
        }
    }
}

#[cfg(test)]
mod tests;
