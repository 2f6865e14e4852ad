//! Prepares a fresh run directory for one attempt: uploads, the four `mirror_neuron_*` files
//! and the working directory. The directory is removed when the [`RunDir`] is dropped, on every
//! path (success, failure, timeout, cancelled future).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ExecRequest;
use super::upload::{confined_relative, copy_upload, strip_sandbox_prefix};

/// File names inside the run directory, fixed so that workers may also find them by name.
pub const INPUT_FILE: &str = "mirror_neuron_input.json";
pub const MESSAGE_FILE: &str = "mirror_neuron_message.json";
pub const BODY_FILE: &str = "mirror_neuron_body.bin";
pub const CONTEXT_FILE: &str = "mirror_neuron_context.json";

/// A per-attempt temporary directory, deleted on drop.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.path.display(), error = %e, "could not remove executor run dir");
        }
    }
}

/// The staged run: its directory and the paths handed to the command.
#[derive(Debug)]
pub struct Staged {
    pub dir: RunDir,
    pub workdir: PathBuf,
    pub input_file: PathBuf,
    pub context_file: PathBuf,
    pub message_file: PathBuf,
    pub body_file: PathBuf,
    /// The message's declared content type (the body file's format follows it, see [`encode_body`]).
    pub content_type: String,
    /// Always `identity`: the body arrives decoded, and the file holds it decoded.
    pub content_encoding: String,
}

/// Creates and fills the run directory. Blocking: call it from `spawn_blocking`.
pub fn stage(req: &ExecRequest) -> Result<Staged, String> {
    let dir = create_run_dir(&req.temp_root, &req.job_id, &req.agent_id)?;
    let root = dir.path().to_path_buf();
    if !req.config.uploads.is_empty() {
        let payloads = req.payloads_dir.canonicalize().map_err(|e| {
            format!(
                "payloads directory {} is not usable: {e}",
                req.payloads_dir.display()
            )
        })?;
        for upload in &req.config.uploads {
            copy_upload(&payloads, &root, upload)?;
        }
    }
    let content_type = declared_content_type(&req.message);
    let staged = Staged {
        workdir: resolve_workdir(&root, req.config.workdir.as_deref())?,
        input_file: write(&root, INPUT_FILE, &to_json(&req.body))?,
        message_file: write(&root, MESSAGE_FILE, &to_json(&req.message))?,
        body_file: write(&root, BODY_FILE, &encode_body(&req.body, &content_type))?,
        context_file: write(&root, CONTEXT_FILE, &to_json(&context(req)))?,
        content_type,
        content_encoding: "identity".to_string(),
        dir,
    };
    Ok(staged)
}

/// `<temp_root>/<this process's folder>/mirror_neuron_host_local_<name>_<unique>`, created
/// exclusively (see [`super::run_root`]).
fn create_run_dir(temp_root: &Path, job_id: &str, agent_id: &str) -> Result<RunDir, String> {
    let parent = super::run_root::claimed(temp_root)?;
    let name = runner_name(job_id, agent_id);
    let path = parent.join(format!(
        "mirror_neuron_host_local_{name}_{}",
        uuid::Uuid::new_v4().simple()
    ));
    fs::create_dir(&path).map_err(|e| format!("cannot create run dir {}: {e}", path.display()))?;
    Ok(RunDir { path })
}

/// `host-local-<job>-<agent>`, lowercased, anything outside `[a-z0-9-]` replaced by `-`,
/// shortened so the directory name stays well under file-name limits.
pub fn runner_name(job_id: &str, agent_id: &str) -> String {
    format!("host-local-{job_id}-{agent_id}")
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(96)
        .collect()
}

/// The working directory: the run dir, or `workdir` inside it (created if missing).
fn resolve_workdir(root: &Path, workdir: Option<&str>) -> Result<PathBuf, String> {
    let Some(w) = workdir else {
        return Ok(root.to_path_buf());
    };
    let rel = confined_relative(strip_sandbox_prefix(w), "workdir")?;
    let path = root.join(rel);
    fs::create_dir_all(&path)
        .map_err(|e| format!("cannot create workdir {}: {e}", path.display()))?;
    Ok(path)
}

fn write(root: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    let path = root.join(name);
    fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn to_json(value: &Value) -> Vec<u8> {
    // Serialising a `Value` cannot fail: its keys are strings and its numbers finite.
    serde_json::to_vec(value).unwrap_or_default()
}

fn context(req: &ExecRequest) -> Value {
    json!({
        "job_id": req.job_id,
        "agent_id": req.agent_id,
        "agent_type": req.agent_type,
        "template_type": req.template,
        "agent_state": req.agent_state,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
}

/// `envelope.content_type` of the wire message, defaulting to JSON.
fn declared_content_type(message: &Value) -> String {
    message
        .pointer("/envelope/content_type")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("application/json")
        .to_string()
}

/// The body as the worker should read it: NDJSON types give one JSON document per line (a list
/// body is split into its items), `application/octet-stream` with a string body gives its raw
/// bytes, and everything else (JSON types included) gives the JSON document.
pub fn encode_body(body: &Value, content_type: &str) -> Vec<u8> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/ndjson" => {
            let items: Vec<&Value> = match body {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            items
                .into_iter()
                .flat_map(|v| [to_json(v), b"\n".to_vec()])
                .flatten()
                .collect()
        }
        "application/octet-stream" => match body {
            Value::String(s) => s.as_bytes().to_vec(),
            other => to_json(other),
        },
        _ => to_json(body),
    }
}
