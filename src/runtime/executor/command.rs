//! Turns a [`CommandSpec`] into a concrete program, arguments and environment.
//!
//! Environment policy (spec weakness 11): the child starts from an EMPTY environment. Only
//! `PATH`, `HOME`, `LANG` and `TMPDIR` are inherited from the host (tools break without them and
//! they carry no secrets), then the variables named in `pass_env` that the node allows (see
//! [`crate::domain::secrets`]: never the runtime's own credentials, secret-like names only when
//! granted), then the node's `environment`, then the `MIRROR_NEURON_*` variables, which are set
//! last so a manifest cannot spoof them. Anything else on the host never reaches a worker.

use std::path::Path;
use std::sync::OnceLock;

use super::config::CommandSpec;
use crate::domain::secrets::Grants;

/// Host variables every child inherits.
pub const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "TMPDIR"];
/// Used when the host itself has no `PATH`.
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A command ready to spawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: std::path::PathBuf,
    /// The `cgroup.procs` files of the cgroups the step joins before it starts (the sandbox's
    /// limits: one on cgroup v2, one per controller on v1), so that everything it runs is
    /// counted from its first instruction.
    pub join_cgroups: Vec<std::path::PathBuf>,
    /// How to contain the step; `None` is the node's `MN_STEP_CONTAINMENT`. The container
    /// runner asks for a subreaper (see [`super::container`]).
    pub containment: Option<crate::runtime::containment::Mode>,
}

/// The secret-like variables this process lets through to its steps: set once by the command
/// line (a local `run` grants its own user's variables), else `MN_EXECUTOR_SECRET_ENV`.
static GRANTS: OnceLock<Grants> = OnceLock::new();

/// Sets the grants for this process; the first call wins (later ones are ignored).
pub fn set_secret_grants(grants: Grants) {
    let _ = GRANTS.set(grants);
}

/// The grants in force: those set by [`set_secret_grants`], else `MN_EXECUTOR_SECRET_ENV`.
pub fn secret_grants() -> &'static Grants {
    GRANTS.get_or_init(|| {
        crate::config::var("MN_EXECUTOR_SECRET_ENV")
            .map(|v| Grants::parse(&v))
            .unwrap_or_default()
    })
}

/// The minimal host set plus the allowed `pass_env` plus `environment`, in that order of
/// precedence (later wins). A name the node does not allow is left out with a warning: the
/// step then fails on its own terms ("missing API key") rather than reading a credential its
/// author was not given.
pub fn base_env(pass_env: &[String], environment: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let grants = secret_grants();
    for name in INHERITED_ENV
        .iter()
        .copied()
        .chain(pass_env.iter().map(String::as_str))
    {
        if !grants.allows(name) {
            tracing::warn!(
                variable = name,
                "pass_env names a secret this node does not grant to steps \
                 (MN_EXECUTOR_SECRET_ENV); left out"
            );
            continue;
        }
        if let Ok(value) = std::env::var(name) {
            set(&mut env, name, &value);
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        set(&mut env, "PATH", FALLBACK_PATH);
    }
    for (k, v) in environment {
        set(&mut env, k, v);
    }
    env
}

/// Inserts or replaces `key`.
pub fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value.to_string(),
        None => env.push((key.to_string(), value.to_string())),
    }
}

/// A string command runs under `bash -c`; a list is executed as given.
///
/// Not a login shell (`-l`), unlike the original runtime: login profiles make every run slow,
/// tie the result to the host's dotfiles, and can hang on their own locks. A manifest that
/// wants them says so: `["bash", "-lc", "..."]`.
pub fn program_and_args(command: &CommandSpec) -> (String, Vec<String>) {
    match command {
        CommandSpec::Shell(script) => ("bash".to_string(), vec!["-c".to_string(), script.clone()]),
        CommandSpec::Argv(argv) => {
            let (first, rest) = argv
                .split_first()
                .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
            (first.to_string(), rest.to_vec())
        }
    }
}

/// Replaces `{name}` placeholders. In shell commands a value is substituted only if it holds
/// no shell metacharacters: a job or agent id like `a;rm -rf ~` must not become shell code.
/// Such values stay reachable through the `MIRROR_NEURON_*` variables.
pub fn substitute(command: &CommandSpec, vars: &[(&str, String)]) -> Result<CommandSpec, String> {
    match command {
        CommandSpec::Shell(script) => {
            for (name, value) in vars {
                if script.contains(&format!("{{{name}}}")) && !shell_safe(value) {
                    return Err(format!(
                        "refusing to put {{{name}}} = {value:?} into a shell command (it has shell \
                         metacharacters); use an argv list or the MIRROR_NEURON_* variables"
                    ));
                }
            }
            Ok(CommandSpec::Shell(replace_all(script, vars)))
        }
        CommandSpec::Argv(argv) => Ok(CommandSpec::Argv(
            argv.iter().map(|a| replace_all(a, vars)).collect(),
        )),
    }
}

fn replace_all(text: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(text.to_string(), |acc, (name, value)| {
        acc.replace(&format!("{{{name}}}"), value)
    })
}

fn shell_safe(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:@+=,-".contains(c))
}

/// The expanded command's length, as the shell or `execve` would see it.
pub fn command_length(command: &CommandSpec) -> usize {
    match command {
        CommandSpec::Shell(script) => script.len(),
        CommandSpec::Argv(argv) => argv.iter().map(|a| a.len() + 1).sum(),
    }
}

/// The run's placeholder values.
pub fn placeholders<'a>(
    staged: &super::staging::Staged,
    job_id: &'a str,
    agent_id: &'a str,
) -> Vec<(&'static str, String)> {
    let p = |path: &Path| path.display().to_string();
    vec![
        ("input_file", p(&staged.input_file)),
        ("context_file", p(&staged.context_file)),
        ("message_file", p(&staged.message_file)),
        ("body_file", p(&staged.body_file)),
        ("workdir", p(&staged.workdir)),
        ("job_id", job_id.to_string()),
        ("agent_id", agent_id.to_string()),
    ]
}
