//! What a run produced. Both sides serialise to JSON because they end up in job events.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::pool::{LeaseInfo, PoolError};
use super::structured::StructuredOutput;
use crate::domain::output::{BlobPointer, blob_ref};
use crate::runtime::blobs::BlobRef;

/// `Ok` for exit status 0 with well-formed output, `Err` otherwise.
pub type ExecOutcome = Result<ExecSuccess, ExecFailure>;

/// A run that exited 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecSuccess {
    pub exit_code: i32,
    /// The whole stream, or its preview when it went to the blob store (`stdout_blob`).
    pub stdout: String,
    pub stderr: String,
    /// Where stdout went when it outgrew `MN_INLINE_OUTPUT_BYTES`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_blob: Option<BlobRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_blob: Option<BlobRef>,
    /// Set when the manifest's `max_output_bytes` was clamped to the server ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_cap: Option<Value>,
    /// Set when stdout asked for emits, events, a new state or completion.
    pub structured: Option<StructuredOutput>,
    /// 1 for a first-time success; more when transient failures were retried.
    pub attempts: u32,
    pub pool: String,
    pub lease: LeaseInfo,
    /// Wall time of the successful attempt's process.
    pub duration_ms: u64,
    /// Whether stdout or stderr was cut at `max_output_bytes`.
    pub truncated: bool,
    /// `host_local`, `sandbox` or `docker_worker`: where the step ran (results from before the sandbox runner
    /// existed all ran on the host).
    #[serde(default = "host_local")]
    pub runner: String,
}

fn host_local() -> String {
    "host_local".to_string()
}

/// Why a run failed, in a form callers can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Non-zero exit, or killed by a signal we did not send.
    Exit,
    /// Killed after `timeout_seconds`.
    Timeout,
    /// The program could not be started.
    Spawn,
    /// The run directory, uploads or command could not be prepared (a manifest problem).
    Staging,
    /// Exit 0 but malformed structured stdout.
    BadOutput,
    /// The output could not be stored (blob store unwritable) or passed the job's budget.
    Output,
    /// No execution slot could be had.
    Pool,
    /// The sandbox runner is not available on this node (bubblewrap missing or not working).
    Sandbox,
    /// Killed for exceeding the sandbox's or container's memory limit (`resources.memory_mb`).
    Memory,
    /// The container runner cannot run the step here: no engine answers, or the image is
    /// not on this node.
    Container,
    /// The agent's `warmup_command` failed, so its steps do not run on this node.
    Warmup,
}

/// A failed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecFailure {
    pub error: String,
    pub kind: FailureKind,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Attempts made (0 when no slot was acquired).
    pub attempts: u32,
    /// Whether the last attempt's failure was classified transient (see `retry`).
    pub transient: bool,
}

impl ExecFailure {
    /// A failure with no process output.
    pub fn new(kind: FailureKind, error: impl Into<String>) -> ExecFailure {
        ExecFailure {
            error: error.into(),
            kind,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            attempts: 0,
            transient: false,
        }
    }

    pub(super) fn pool(e: PoolError) -> ExecFailure {
        ExecFailure::new(FailureKind::Pool, e.to_string())
    }
}

/// A stream as a message carries it: its text, or a blob reference previewing it.
fn stream_value(text: &str, blob: Option<&BlobRef>) -> Value {
    match blob {
        None => Value::String(text.to_string()),
        Some(b) => blob_ref(
            &BlobPointer {
                sha256: b.sha256.clone(),
                size: b.size,
            },
            text.as_bytes(),
        ),
    }
}

impl ExecSuccess {
    /// Bytes of output this run stored (what counts against the job's budget).
    pub fn stored_bytes(&self) -> u64 {
        let len = |text: &str, blob: &Option<BlobRef>| {
            blob.as_ref().map_or(text.len() as u64, |b| b.size)
        };
        len(&self.stdout, &self.stdout_blob) + len(&self.stderr, &self.stderr_blob)
    }

    /// The default result message body: `{agent_id, sandbox:{...}, input}`.
    pub fn output_payload(&self, agent_id: &str, input_body: &Value) -> Value {
        let mut payload = json!({
            "agent_id": agent_id,
            "sandbox": {
                "exit_code": self.exit_code,
                "stdout": stream_value(&self.stdout, self.stdout_blob.as_ref()),
                "stderr": stream_value(&self.stderr, self.stderr_blob.as_ref()),
                "attempts": self.attempts,
                "pool": self.pool,
                "lease_id": self.lease.lease_id,
                "runner": self.runner,
                "duration_ms": self.duration_ms,
                "truncated": self.truncated,
            },
            "input": input_body,
        });
        if let Some(note) = &self.output_cap {
            payload["sandbox"]["output_cap"] = note.clone();
        }
        payload
    }
}
