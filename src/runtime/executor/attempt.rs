//! One attempt: stage, spawn, wait, classify. The retry loop around it lives in `mod.rs`.

use std::sync::Arc;

use super::ExecRequest;
use super::command::{
    Prepared, base_env, command_length, placeholders, program_and_args, set, substitute,
};
use super::container::Contained;
use super::outcome::{ExecFailure, FailureKind};
use super::process::{CaptureLimits, Captured, ProcessResult, Termination, run_process};
use super::retry::{transient_marker, transient_spawn_error};
use super::sandbox::{MemoryNote, Sandboxed};
use super::staging::{Staged, runner_name, stage};
use super::structured::{StructuredOutput, parse_structured};
use crate::domain::manifest::executor::{ContainerSpec, Runner, SandboxSpec};
use crate::domain::output::preview;
use crate::runtime::blobs::BlobRef;

/// Appended to a stream cut at the output cap, so readers of events see it was cut.
pub const TRUNCATION_MARKER: &str = "\n[truncated by host local output cap]";

/// What a successful attempt yields before the caller adds lease and attempt counts.
pub struct AttemptSuccess {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub stdout_blob: Option<BlobRef>,
    pub stderr_blob: Option<BlobRef>,
    pub structured: Option<StructuredOutput>,
    pub duration_ms: u64,
    pub truncated: bool,
}

/// Runs the command once in a fresh run directory (removed before returning).
pub async fn run_once(req: &Arc<ExecRequest>) -> Result<AttemptSuccess, ExecFailure> {
    let staging_req = Arc::clone(req);
    let staged = tokio::task::spawn_blocking(move || {
        if let Some(dirs) = &staging_req.artifacts {
            empty_folder(&dirs.output)?;
        }
        stage(&staging_req)
    })
    .await
    .map_err(|e| ExecFailure::new(FailureKind::Staging, format!("staging task failed: {e}")))?
    .map_err(|e| ExecFailure::new(FailureKind::Staging, e))?;
    let prepared = prepare(req, &staged).map_err(|e| ExecFailure::new(FailureKind::Staging, e))?;
    let limits = CaptureLimits {
        cap: req.config.max_output_bytes,
        inline: req.config.inline_output_bytes,
        spool_to: req.blobs.clone(),
    };
    let (sandboxed, contained) = match &req.config.spec.runner {
        Runner::Host => (None, None),
        Runner::Sandbox(spec) => (
            Some(sandbox(req, prepared.clone(), spec, &staged).await?),
            None,
        ),
        Runner::Container(spec) => (
            None,
            Some(container(req, prepared.clone(), spec, &staged).await?),
        ),
    };
    let to_run = sandboxed
        .as_ref()
        .map(|s| &s.prepared)
        .or(contained.as_ref().map(|c| &c.prepared))
        .unwrap_or(&prepared);
    // A failed spawn drops `contained`, whose guard removes a container that may have started.
    let result = run_process(to_run, req.config.spec.timeout, &limits)
        .await
        .map_err(|e| spawn_failure(&prepared, &e))?;
    let engine_error = contained
        .as_ref()
        .and_then(|c| c.engine_error(result.termination, &result.stderr.bytes));
    let memory = match &contained {
        Some(c) => c
            .memory_exceeded(result.termination)
            .map(MemoryNote::Exceeded),
        None => sandboxed.as_ref().and_then(Sandboxed::memory_note),
    };
    // Removing a large run dir (the step's cgroup, a container left by a timeout) blocks;
    // keep it off the async workers. The container goes first: it has the run dir mounted.
    let termination = result.termination;
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(c) = contained {
            c.finish(termination);
        }
        drop((sandboxed, staged));
    })
    .await;
    if let Some(error) = engine_error {
        return Err(ExecFailure {
            error,
            kind: FailureKind::Container,
            exit_code: Some(125),
            stdout: shown(&result.stdout),
            stderr: shown(&result.stderr),
            attempts: 0,
            transient: false,
        });
    }
    judge(req, result, memory)
}

/// Wraps the command for the container runner. Never falls back to the host: without a
/// working engine, or without the image, the step fails, saying why.
async fn container(
    req: &ExecRequest,
    prepared: Prepared,
    spec: &ContainerSpec,
    staged: &Staged,
) -> Result<Contained, ExecFailure> {
    let spec = spec.clone();
    let run_dir = staged.dir.path().to_path_buf();
    let step = runner_name(&req.job_id, &req.agent_id);
    let artifacts = req.artifacts.clone();
    let explicit: Vec<String> = req
        .config
        .spec
        .environment
        .iter()
        .map(|(k, _)| k.clone())
        .chain(req.config.pass_env.iter().cloned())
        .chain(req.extra_env.iter().map(|(k, _)| k.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let explicit = |name: &str| explicit.iter().any(|k| k == name);
        super::container::wrap(
            prepared,
            &spec,
            &run_dir,
            artifacts.as_ref(),
            &step,
            &explicit,
        )
    })
    .await
    .map_err(|e| {
        ExecFailure::new(
            FailureKind::Container,
            format!("container task failed: {e}"),
        )
    })?
    .map_err(|e| ExecFailure::new(FailureKind::Container, e))
}

/// Wraps the command for the sandbox runner. Never falls back to the host: without a working
/// sandbox the step fails, saying why.
async fn sandbox(
    req: &ExecRequest,
    prepared: Prepared,
    spec: &SandboxSpec,
    staged: &Staged,
) -> Result<Sandboxed, ExecFailure> {
    let spec = spec.clone();
    let run_dir = staged.dir.path().to_path_buf();
    let artifacts = req.artifacts.clone();
    tokio::task::spawn_blocking(move || {
        super::sandbox::wrap(prepared, &spec, &run_dir, artifacts.as_ref())
    })
    .await
    .map_err(|e| ExecFailure::new(FailureKind::Sandbox, format!("sandbox task failed: {e}")))?
    .map_err(|e| ExecFailure::new(FailureKind::Sandbox, e))
}

/// Builds program, arguments, environment and working directory for this run.
fn prepare(req: &ExecRequest, staged: &Staged) -> Result<Prepared, String> {
    let vars = placeholders(staged, &req.job_id, &req.agent_id);
    let command = substitute(&req.config.spec.command, &vars)?;
    let length = command_length(&command);
    if length > req.config.max_command_length {
        return Err(format!(
            "command exceeds MN_MAX_COMMAND_LENGTH ({length} > {})",
            req.config.max_command_length
        ));
    }
    let (program, args) = program_and_args(&command);
    let mut env = base_env(&req.config.pass_env, &req.config.spec.environment);
    let path = |p: &std::path::Path| p.display().to_string();
    for (k, v) in [
        ("MIRROR_NEURON_INPUT_FILE", path(&staged.input_file)),
        ("MIRROR_NEURON_CONTEXT_FILE", path(&staged.context_file)),
        ("MIRROR_NEURON_MESSAGE_FILE", path(&staged.message_file)),
        ("MIRROR_NEURON_BODY_FILE", path(&staged.body_file)),
        (
            "MIRROR_NEURON_BODY_CONTENT_TYPE",
            staged.content_type.clone(),
        ),
        (
            "MIRROR_NEURON_BODY_CONTENT_ENCODING",
            staged.content_encoding.clone(),
        ),
        ("MIRROR_NEURON_AGENT_TYPE", req.agent_type.clone()),
        ("MIRROR_NEURON_AGENT_TEMPLATE", req.template.clone()),
        ("MIRROR_NEURON_JOB_ID", req.job_id.clone()),
        ("MIRROR_NEURON_AGENT_ID", req.agent_id.clone()),
        ("MIRROR_NEURON_WORKDIR", path(&staged.workdir)),
    ] {
        set(&mut env, k, &v);
    }
    for (k, v) in &req.extra_env {
        set(&mut env, k, v);
    }
    Ok(Prepared {
        program,
        args,
        env,
        cwd: staged.workdir.clone(),
        join_cgroups: Vec::new(),
        containment: None,
    })
}

/// Removes everything in `dir`, keeping the folder.
fn empty_folder(dir: &std::path::Path) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot empty artifact folder {}: {e}", dir.display());
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        let path = entry.map_err(failed)?.path();
        let is_dir = std::fs::symlink_metadata(&path)
            .map_err(failed)?
            .file_type()
            .is_dir();
        if is_dir {
            std::fs::remove_dir_all(&path).map_err(failed)?;
        } else {
            std::fs::remove_file(&path).map_err(failed)?;
        }
    }
    Ok(())
}

fn spawn_failure(cmd: &Prepared, e: &std::io::Error) -> ExecFailure {
    let mut f = ExecFailure::new(
        FailureKind::Spawn,
        format!("cannot start {:?}: {e}", cmd.program),
    );
    f.transient = transient_spawn_error(e);
    f
}

/// Turns a finished process into success or a classified failure. `memory` is what the
/// sandbox's memory limit says about a failure (see [`Sandboxed::memory_note`]).
fn judge(
    req: &ExecRequest,
    result: ProcessResult,
    memory: Option<MemoryNote>,
) -> Result<AttemptSuccess, ExecFailure> {
    let truncated = result.stdout.truncated || result.stderr.truncated;
    let stdout = shown(&result.stdout);
    let stderr = shown(&result.stderr);
    let duration_ms = result.duration.as_millis() as u64;
    let failure = |kind, error: String, exit_code| ExecFailure {
        error,
        kind,
        exit_code,
        stdout: stdout.clone(),
        stderr: stderr.clone(),
        attempts: 0,
        transient: false,
    };
    match result.termination {
        Termination::Exited(0) => {
            // A cut stdout cannot be trusted to hold a complete object; it is plain output.
            let structured = if result.stdout.truncated {
                None
            } else {
                structured_of(&result.stdout)
                    .and_then(|text| parse_structured(&text))
                    .map_err(|e| failure(FailureKind::BadOutput, e, Some(0)))?
            };
            let (stdout_blob, stderr_blob) = store_spools(req, result.stdout, result.stderr)
                .map_err(|e| failure(FailureKind::Output, e, Some(0)))?;
            Ok(AttemptSuccess {
                exit_code: 0,
                stdout,
                stderr,
                stdout_blob,
                stderr_blob,
                structured,
                duration_ms,
                truncated,
            })
        }
        Termination::Exited(_) | Termination::Signaled(_)
            if let Some(MemoryNote::Exceeded(why)) = &memory =>
        {
            let code = match result.termination {
                Termination::Exited(code) => Some(code),
                _ => None,
            };
            Err(failure(FailureKind::Memory, why.clone(), code))
        }
        Termination::Exited(code) => {
            let mut f = failure(
                FailureKind::Exit,
                with_note(
                    exit_error(&format!("exited with status {code}"), &stderr),
                    &memory,
                ),
                Some(code),
            );
            f.transient = transient_marker(&stdout, &stderr).is_some();
            Err(f)
        }
        Termination::Signaled(sig) => {
            let mut f = failure(
                FailureKind::Exit,
                with_note(
                    exit_error(&format!("killed by signal {sig}"), &stderr),
                    &memory,
                ),
                None,
            );
            f.transient = transient_marker(&stdout, &stderr).is_some();
            Err(f)
        }
        Termination::TimedOut => {
            let secs = req.config.spec.timeout.map_or(0.0, |t| t.as_secs_f64());
            let mut f = failure(
                FailureKind::Timeout,
                format!("command timed out after {secs}s"),
                None,
            );
            f.transient = req.config.spec.retry_on_timeout;
            Err(f)
        }
    }
}

/// A stream as events show it: all of it when it stayed in memory (marked when cut at the
/// cap), or the preview of a spooled one (its bytes go to the blob store). A failed run keeps
/// only this: its spool is dropped with it.
fn shown(captured: &Captured) -> String {
    if captured.spool.is_some() {
        return preview(&captured.bytes);
    }
    let text = String::from_utf8_lossy(&captured.bytes).into_owned();
    if captured.truncated {
        text + TRUNCATION_MARKER
    } else {
        text
    }
}

/// The text to look for structured output in. A spooled stdout is read back (it is bounded by
/// the cap) only when it can hold an object: it starts with `{`, or its last line does.
fn structured_of(captured: &Captured) -> Result<String, String> {
    let Some(spool) = &captured.spool else {
        return Ok(String::from_utf8_lossy(&captured.bytes).into_owned());
    };
    let starts_with_brace = captured
        .bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let tail = spool
        .tail(64 * 1024)
        .map_err(|e| format!("cannot read the spooled stdout: {e}"))?;
    let tail_text = String::from_utf8_lossy(&tail);
    let trimmed = tail_text.trim_end();
    // No line break in the tail: the last line may be longer than the tail, so read it all.
    let last_line_brace = trimmed
        .rfind('\n')
        .is_none_or(|i| trimmed[i + 1..].trim_start().starts_with('{'));
    if !(starts_with_brace || last_line_brace) {
        return Ok(String::new());
    }
    spool
        .read()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("cannot read the spooled stdout: {e}"))
}

/// Names the spooled streams by their digests in the blob store.
fn store_spools(
    req: &ExecRequest,
    stdout: Captured,
    stderr: Captured,
) -> Result<(Option<BlobRef>, Option<BlobRef>), String> {
    let commit = |c: Captured| -> Result<Option<BlobRef>, String> {
        match (c.spool, &req.blobs) {
            (Some(spool), Some(store)) => spool
                .commit(store)
                .map(Some)
                .map_err(|e| format!("cannot store the output: {e}")),
            _ => Ok(None),
        }
    };
    Ok((commit(stdout)?, commit(stderr)?))
}

/// `error`, followed by what the memory limit may have had to do with it.
fn with_note(error: String, memory: &Option<MemoryNote>) -> String {
    match memory {
        Some(MemoryNote::InForce(note)) => format!("{error} ({note})"),
        _ => error,
    }
}

/// `command <what>`, plus the last line of stderr so events are readable on their own.
fn exit_error(what: &str, stderr: &str) -> String {
    match stderr.lines().map(str::trim).rfind(|l| !l.is_empty()) {
        Some(line) => {
            let line: String = line.chars().take(300).collect();
            format!("command {what}: {line}")
        }
        None => format!("command {what}"),
    }
}
