//! Executor settings, parsed once from a node's `config` map so that a bad manifest fails at
//! load time with a message naming the key, instead of half-way through a run.

use serde_json::{Map, Value};

use crate::domain::manifest::executor::{self, ExecutorSpec, Network, Runner};
use crate::domain::manifest::{AgentType, Manifest, NodeSpec, ValidationError};
use crate::domain::output::OutputCap;
use crate::domain::secrets::{EnvClass, classify};

/// The typed parts come from the manifest's own parser, so a run and `validate` agree.
pub use crate::domain::manifest::executor::{CommandSpec, OutputType, UploadSpec, valid_env_name};
pub use crate::domain::manifest::run_paths::SANDBOX_JOB_DIR;

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

/// Everything the host-local runner needs from a node's configuration: the manifest's typed
/// settings plus what this host adds (limits from its environment, the allowed `pass_env`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    /// The manifest's settings, as parsed at validation.
    pub spec: ExecutorSpec,
    /// Host variables copied through by name; nothing else from the host leaks (see `command`).
    pub pass_env: Vec<String>,
    /// Cap on captured bytes, per stream: the manifest's ask clamped to the server ceiling.
    pub max_output_bytes: usize,
    /// How the cap was reached (what was asked, the ceiling), for warnings and step results.
    pub output_cap: OutputCap,
    /// Outputs (and message values) larger than this go to the blob store as references.
    pub inline_output_bytes: usize,
    /// Cap on the expanded command's length (`MN_MAX_COMMAND_LENGTH`).
    pub max_command_length: usize,
}

impl ExecutorConfig {
    /// Parses a node's `config` object. The output cap's ceiling, the inline limit and the
    /// command length come from `MN_MAX_ARTIFACT_BYTES`, `MN_INLINE_OUTPUT_BYTES` and
    /// `MN_MAX_COMMAND_LENGTH`; a malformed variable is an error.
    /// Resources (the runner choice, the sandbox's memory limit) come from `config.resources`;
    /// [`ExecutorConfig::from_node`] reads the node's own.
    pub fn from_node_config(config: &Map<String, Value>) -> Result<ExecutorConfig, String> {
        let spec = ExecutorSpec::parse(config).map_err(|e| ValidationError::join(&e))?;
        ExecutorConfig::from_spec(config, spec)
    }

    /// Parses an executor node's `config` with its `resources` (as validation does).
    /// The runner keys of the execution profile it names (`MN_EXECUTION_PROFILES_JSON`) are
    /// laid over the config first (see [`super::profile`]).
    pub fn from_node(node: &NodeSpec) -> Result<ExecutorConfig, String> {
        let overlaid = super::profile::overlay_from_env(&node.config)?;
        let config = overlaid.as_ref().unwrap_or(&node.config);
        let spec = ExecutorSpec::parse_node(config, &node.resources)
            .map_err(|e| ValidationError::join(&e))?;
        if let Runner::Container(c) = &spec.runner
            && c.image.is_none()
        {
            return Err(format!(
                "image: a docker_worker executor needs the image its steps run in, and neither \
                 its config nor its execution profile {:?} (MN_EXECUTION_PROFILES_JSON) sets one",
                executor::profile_named(config).unwrap_or_default()
            ));
        }
        ExecutorConfig::from_spec(config, spec)
    }

    fn from_spec(
        config: &Map<String, Value>,
        spec: ExecutorSpec,
    ) -> Result<ExecutorConfig, String> {
        let output_cap = cap_for(spec.max_output_bytes)?;
        Ok(ExecutorConfig {
            pass_env: parse_pass_env(config)?,
            max_output_bytes: to_usize(output_cap.applied)?,
            output_cap,
            inline_output_bytes: env_usize("MN_INLINE_OUTPUT_BYTES", DEFAULT_INLINE_OUTPUT_BYTES)?,
            max_command_length: env_usize("MN_MAX_COMMAND_LENGTH", DEFAULT_MAX_COMMAND_LENGTH)?,
            spec,
        })
    }
}

/// The per-stream cap: the asked `max_output_bytes`, else the default, never above the
/// server ceiling `MN_MAX_ARTIFACT_BYTES`.
fn cap_for(requested: Option<u64>) -> Result<OutputCap, String> {
    let ceiling = env_usize("MN_MAX_ARTIFACT_BYTES", DEFAULT_MAX_ARTIFACT_BYTES)? as u64;
    Ok(OutputCap::new(
        requested,
        DEFAULT_MAX_OUTPUT_BYTES as u64,
        ceiling,
    ))
}

/// The server ceiling `MN_MAX_ARTIFACT_BYTES`: also the largest file a step may publish.
pub fn max_artifact_bytes() -> Result<u64, String> {
    env_usize("MN_MAX_ARTIFACT_BYTES", DEFAULT_MAX_ARTIFACT_BYTES).map(|v| v as u64)
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
pub fn output_cap_warnings(manifest: &Manifest) -> Vec<String> {
    manifest
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.agent_type == AgentType::Executor)
        .filter_map(|(i, n)| {
            let asked = ExecutorSpec::parse(&n.config).ok()?.max_output_bytes;
            let w = cap_for(asked)
                .ok()?
                .warning(&format!("{}.config", manifest.node_path(i)))?;
            Some(format!("{w} (node {})", n.node_id))
        })
        .collect()
}

/// One warning per sandboxed executor with an OpenShell `policy` file: the sandbox does not
/// read it, so the step gets no network unless `sandbox.network` says `"host"` (closed rather
/// than silently open; the warning says how to open it).
pub fn sandbox_warnings(manifest: &Manifest) -> Vec<String> {
    manifest
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.agent_type == AgentType::Executor && n.config.contains_key("policy"))
        .filter_map(|(i, n)| {
            let spec = ExecutorSpec::parse_node(&n.config, &n.resources).ok()?;
            match spec.runner {
                Runner::Sandbox(s) if s.network == Network::None => Some(format!(
                    "{}.config.policy: the sandbox runner does not read OpenShell policy files; \
                     node {} runs with no network (set config.sandbox.network to \"host\" to \
                     allow all egress)",
                    manifest.node_path(i),
                    n.node_id
                )),
                _ => None,
            }
        })
        .collect()
}

/// `pass_env` names that look like secrets and that this process's grants leave out
/// (`MN_EXECUTOR_SECRET_ENV`; a local `run` grants all). Not errors: the node that runs the
/// job decides, and it may grant them. Executors and modules both read `pass_env`.
pub fn secret_env_warnings(manifest: &Manifest) -> Vec<String> {
    let grants = super::command::secret_grants();
    let mut out = Vec::new();
    for (i, node) in manifest.nodes.iter().enumerate() {
        if !matches!(node.agent_type, AgentType::Executor | AgentType::Module) {
            continue;
        }
        let Ok(names) = parse_string_list(&node.config, "pass_env") else {
            continue;
        };
        for (j, name) in names.iter().enumerate() {
            if classify(name) == EnvClass::SecretLike && !grants.allows(name) {
                out.push(format!(
                    "{}.config.pass_env[{j}]: {name} looks like a secret; a serving node passes \
                     it to steps only if its MN_EXECUTOR_SECRET_ENV lists it (a local `run` \
                     passes its own user's)",
                    manifest.node_path(i)
                ));
            }
        }
    }
    out
}

/// `command` as the runner reads it (modules use this too).
pub fn parse_command(value: Option<&Value>) -> Result<CommandSpec, String> {
    executor::parse_command(value)
}

/// `environment` as ordered pairs (modules use this too).
pub fn parse_environment(value: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    executor::parse_environment(value)
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
