//! Executor settings, parsed once from a node's `config` map so that a bad manifest fails at
//! load time with a message naming the key, instead of half-way through a run.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::domain::output::OutputCap;

/// Default per-stream capture cap when the node's `max_output_bytes` does not set one.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Default server ceiling on the per-stream cap (`MN_MAX_ARTIFACT_BYTES`): a manifest's
/// `max_output_bytes` is clamped to it.
pub const DEFAULT_MAX_ARTIFACT_BYTES: usize = 64 * 1024 * 1024;
/// Default size above which an output goes to the blob store (`MN_INLINE_OUTPUT_BYTES`).
pub const DEFAULT_INLINE_OUTPUT_BYTES: usize = 64 * 1024;
/// Default budget of stored step output per job (`MN_JOB_OUTPUT_BUDGET_BYTES`).
pub const DEFAULT_JOB_OUTPUT_BUDGET_BYTES: u64 = 1024 * 1024 * 1024;
/// Default limit on the length of the expanded command (`MN_MAX_COMMAND_LENGTH`).
pub const DEFAULT_MAX_COMMAND_LENGTH: usize = 32 * 1024;
/// Absolute prefix that sandbox manifests use for the job directory; on the host it means the run dir.
pub const SANDBOX_JOB_DIR: &str = "/sandbox/job";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    /// A script line, run through `bash -c` (pipes, globs and `&&` work).
    Shell(String),
    /// A program and its arguments, executed directly with no shell in between.
    Argv(Vec<String>),
}

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

/// One file or directory copied from the bundle's `payloads/` into the run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSpec {
    /// Path relative to `payloads/`.
    pub source: String,
    /// Path relative to the run directory; `None` means the source's file name.
    pub target: Option<String>,
}

/// Everything the host-local runner needs from a node's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    pub command: CommandSpec,
    /// Working directory relative to the run dir (`/sandbox/job/...` is remapped into it).
    pub workdir: Option<String>,
    /// Variables set for the child, on top of the minimal host set.
    pub environment: Vec<(String, String)>,
    /// Host variables copied through by name; nothing else from the host leaks (see `command`).
    pub pass_env: Vec<String>,
    pub uploads: Vec<UploadSpec>,
    pub timeout: Option<Duration>,
    /// Whether a timed-out run counts as transient (retried while attempts remain). Default false.
    pub retry_on_timeout: bool,
    /// Cap on captured bytes, per stream: the manifest's ask clamped to the server ceiling.
    pub max_output_bytes: usize,
    /// How the cap was reached (what was asked, the ceiling), for warnings and step results.
    pub output_cap: OutputCap,
    /// Outputs (and message values) larger than this go to the blob store as references.
    pub inline_output_bytes: usize,
    /// `max_job_output_bytes`: lowers the server's per-job output budget for this agent's steps.
    pub max_job_output_bytes: Option<u64>,
    /// Cap on the expanded command's length (`MN_MAX_COMMAND_LENGTH`).
    pub max_command_length: usize,
    pub pool: String,
    pub pool_slots: u32,
    pub max_attempts: u32,
    pub retry_backoff_ms: u64,
    /// Sleep before the first run only, to stagger launch waves.
    pub startup_delay_ms: u64,
    pub output_message_type: OutputType,
}

impl ExecutorConfig {
    /// Parses a node's `config` object. The output cap's ceiling, the inline limit and the
    /// command length come from `MN_MAX_ARTIFACT_BYTES`, `MN_INLINE_OUTPUT_BYTES` and
    /// `MN_MAX_COMMAND_LENGTH`; a malformed variable is an error.
    pub fn from_node_config(config: &Map<String, Value>) -> Result<ExecutorConfig, String> {
        let output_cap = output_cap(config)?;
        Ok(ExecutorConfig {
            command: parse_command(config.get("command"))?,
            workdir: opt_string(config, "workdir")?,
            environment: parse_environment(config.get("environment"))?,
            pass_env: parse_pass_env(config)?,
            uploads: parse_uploads(config)?,
            timeout: parse_timeout(config.get("timeout_seconds"))?,
            retry_on_timeout: opt_bool(config, "retry_on_timeout")?.unwrap_or(false),
            max_output_bytes: to_usize(output_cap.applied)?,
            output_cap,
            inline_output_bytes: env_usize("MN_INLINE_OUTPUT_BYTES", DEFAULT_INLINE_OUTPUT_BYTES)?,
            max_job_output_bytes: positive(config, "max_job_output_bytes")?,
            max_command_length: env_usize("MN_MAX_COMMAND_LENGTH", DEFAULT_MAX_COMMAND_LENGTH)?,
            pool: opt_string(config, "pool")?.unwrap_or_else(|| "default".to_string()),
            pool_slots: positive(config, "pool_slots")?.map_or(Ok(1), to_u32)?,
            max_attempts: positive(config, "max_attempts")?.map_or(Ok(1), to_u32)?,
            retry_backoff_ms: non_negative(config, "retry_backoff_ms")?.unwrap_or(500),
            startup_delay_ms: non_negative(config, "startup_delay_ms")?.unwrap_or(0),
            output_message_type: parse_output_type(config)?,
        })
    }
}

/// The per-stream cap for a node's `config`: its `max_output_bytes`, else the default, never
/// above the server ceiling `MN_MAX_ARTIFACT_BYTES`.
pub fn output_cap(config: &Map<String, Value>) -> Result<OutputCap, String> {
    let ceiling = env_usize("MN_MAX_ARTIFACT_BYTES", DEFAULT_MAX_ARTIFACT_BYTES)? as u64;
    let requested = positive(config, "max_output_bytes")?;
    Ok(OutputCap::new(
        requested,
        DEFAULT_MAX_OUTPUT_BYTES as u64,
        ceiling,
    ))
}

/// The server's per-job output budget (`MN_JOB_OUTPUT_BUDGET_BYTES`).
pub fn job_output_budget() -> Result<u64, String> {
    match crate::config::u64_var(
        "MN_JOB_OUTPUT_BUDGET_BYTES",
        DEFAULT_JOB_OUTPUT_BUDGET_BYTES,
    ) {
        Ok(0) => Err("MN_JOB_OUTPUT_BUDGET_BYTES must be a positive integer, got 0".to_string()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

/// One warning per executor whose `max_output_bytes` asks for more than this server's ceiling
/// allows (`validate` and `run` print them; the run clamps the cap and goes on).
pub fn output_cap_warnings(manifest: &crate::domain::manifest::Manifest) -> Vec<String> {
    manifest
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.config.contains_key("command"))
        .filter_map(|(i, n)| {
            let cap = output_cap(&n.config).ok()?;
            let w = cap.warning(&format!("nodes[{i}].config"))?;
            Some(format!("{w} (node {})", n.node_id))
        })
        .collect()
}

/// A string runs through bash; a list is an argv. Anything else, or an empty command, is refused
/// (the original silently ran a stub that printed a warning).
pub fn parse_command(value: Option<&Value>) -> Result<CommandSpec, String> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(CommandSpec::Shell(s.clone())),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                scalar_string(v)
                    .ok_or_else(|| "command list items must be strings or numbers".to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(CommandSpec::Argv),
        None | Some(Value::Null) => Err("executor requires config.command".to_string()),
        Some(_) => {
            Err("command must be a non-empty string or a non-empty list of strings".to_string())
        }
    }
}

/// A string, number or boolean as text; used where manifests commonly write `"PORT": 8080`.
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `environment` as ordered pairs; values may be scalars, never objects or lists.
pub fn parse_environment(value: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("environment must be an object of NAME: value".to_string()),
    };
    map.iter()
        .map(|(k, v)| {
            if !valid_env_name(k) {
                return Err(format!(
                    "environment name {k:?} is not a valid variable name"
                ));
            }
            scalar_string(v)
                .map(|s| (k.clone(), s))
                .ok_or_else(|| format!("environment.{k} must be a string, number or boolean"))
        })
        .collect()
}

/// POSIX-ish variable names: letters, digits and `_`, not starting with a digit.
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A list of strings under `key` (absent or null = empty).
pub fn parse_string_list(config: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key} must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(format!("{key} must be a list of strings")),
    }
}

/// `pass_env`, refusing the runtime's own credentials by name (see [`crate::domain::secrets`]).
pub fn parse_pass_env(config: &Map<String, Value>) -> Result<Vec<String>, String> {
    let names = parse_string_list(config, "pass_env")?;
    for (i, name) in names.iter().enumerate() {
        if let Some(why) = crate::domain::secrets::refusal(name) {
            return Err(format!("pass_env[{i}]: {why}"));
        }
    }
    Ok(names)
}

/// `upload_path`/`upload_as` plus every `upload_paths` entry (`{source, target?}` or a bare string).
fn parse_uploads(config: &Map<String, Value>) -> Result<Vec<UploadSpec>, String> {
    let mut uploads = Vec::new();
    if let Some(source) = opt_string(config, "upload_path")? {
        uploads.push(UploadSpec {
            source,
            target: opt_string(config, "upload_as")?,
        });
    }
    let entries = match config.get("upload_paths") {
        None | Some(Value::Null) => return Ok(uploads),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("upload_paths must be a list".to_string()),
    };
    for (i, entry) in entries.iter().enumerate() {
        uploads.push(match entry {
            Value::String(s) => UploadSpec {
                source: s.clone(),
                target: None,
            },
            Value::Object(m) => UploadSpec {
                source: opt_string(m, "source")?
                    .ok_or_else(|| format!("upload_paths[{i}] requires source"))?,
                target: opt_string(m, "target")?,
            },
            _ => {
                return Err(format!(
                    "upload_paths[{i}] must be an object {{source, target?}}"
                ));
            }
        });
    }
    Ok(uploads)
}

/// `timeout_seconds`: a finite number > 0 (integer or float).
fn parse_timeout(value: Option<&Value>) -> Result<Option<Duration>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s.is_finite() && s > 0.0 && s < 1.0e9 => {
                Ok(Some(Duration::from_secs_f64(s)))
            }
            _ => Err(format!("timeout_seconds must be a number > 0, got {n}")),
        },
        Some(other) => Err(format!("timeout_seconds must be a number > 0, got {other}")),
    }
}

/// Absent key, explicit null and a string mean three different things (see [`OutputType`]).
fn parse_output_type(config: &Map<String, Value>) -> Result<OutputType, String> {
    match config.get("output_message_type") {
        None => Ok(OutputType::Default),
        Some(Value::Null) => Ok(OutputType::None),
        Some(Value::String(s)) if !s.is_empty() => Ok(OutputType::Named(s.clone())),
        Some(_) => Err("output_message_type must be a non-empty string or null".to_string()),
    }
}

fn opt_string(config: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn opt_bool(config: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{key} must be a boolean")),
    }
}

/// An integer >= 1 under `key`, if present.
fn positive(config: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match non_negative(config, key)? {
        Some(0) => Err(format!("{key} must be a positive integer, got 0")),
        other => Ok(other),
    }
}

/// An integer >= 0 under `key`, if present (`2.0` is accepted; `2.5` and `"2"` are not).
fn non_negative(config: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 1.0e15 => Ok(Some(f as u64)),
            _ => Err(format!("{key} must be a non-negative integer, got {n}")),
        },
        Some(other) => Err(format!("{key} must be an integer, got {other}")),
    }
}

fn to_u32(v: u64) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{v} is too large"))
}

fn to_usize(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("{v} is too large"))
}

/// A positive integer environment setting, strictly parsed.
fn env_usize(name: &'static str, default: usize) -> Result<usize, String> {
    let value = crate::config::u64_var(name, default as u64).map_err(|e| e.to_string())?;
    match value {
        0 => Err(format!("{name} must be a positive integer, got 0")),
        v => to_usize(v),
    }
}
