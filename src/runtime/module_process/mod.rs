//! The `module` agent as a long-lived child process speaking JSON lines, replacing the
//! original's compile-Elixir-into-the-runtime plugin (spec weakness 11): a module can crash or
//! hang without taking the runtime with it.
//!
//! Protocol, one exchange per message: the runtime writes `{"message": <mn-msg/1>, "state": ..}`
//! and a newline to stdin; the module answers one line `{"actions": [..], "state": ..}` on stdout
//! (blank lines are skipped). Actions: `{"emit":{"type","body"}}`, `{"emit_to":{"to","type",
//! "body"}}`, `{"event":{"type","payload"}}`, `{"complete_job": value}`. stderr is logged.
//!
//! Failure handling: if the process died, timed out or wrote something that is not a reply, the
//! call fails and the process is killed; the next call starts a new one. Restarts are counted
//! per run of failures: after `max_restarts` restarts with no good reply in between, calls fail
//! with [`ModuleError::GaveUp`]. If the process is found dead before a message is written (the
//! write fails), the message was never delivered, so it is sent once more to a fresh process.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::containment::{self, Launch};
use super::executor::CommandSpec;
use super::executor::command::{Prepared, program_and_args};
use super::executor::process::ProcessGroup;

mod protocol;

use protocol::read_reply_line;
pub use protocol::{ModuleAction, ModuleReply, parse_reply};

/// Tunables with sensible defaults ([`ModuleOptions::default`]).
#[derive(Debug, Clone)]
pub struct ModuleOptions {
    /// How long one reply may take (default 30 s).
    pub reply_timeout: Duration,
    /// Restarts allowed without a good reply in between (default 3).
    pub max_restarts: u32,
    /// Longest accepted reply line (default 16 MiB); longer is a bad reply.
    pub max_reply_bytes: usize,
    /// Name used in logs (the agent id, usually).
    pub label: String,
}

impl Default for ModuleOptions {
    fn default() -> Self {
        ModuleOptions {
            reply_timeout: Duration::from_secs(30),
            max_restarts: 3,
            max_reply_bytes: 16 * 1024 * 1024,
            label: "module".to_string(),
        }
    }
}

/// Why a message could not be handled. All but `GaveUp` leave the agent usable: the next call
/// runs on a fresh process.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The program could not be started; check `command` and the bundle.
    #[error("cannot start module {command:?}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    /// The process exited or closed its pipes during the exchange.
    #[error("module process died: {detail}")]
    Died { detail: String },
    #[error("module did not reply within {after:?}")]
    Timeout { after: Duration },
    /// The reply was not the protocol's JSON; `excerpt` shows its start.
    #[error("module wrote an invalid reply ({reason}): {excerpt:?}")]
    BadReply { reason: String, excerpt: String },
    /// Too many restarts without a good reply: the module is broken; fail the agent.
    #[error("module gave up after {restarts} restarts; last error: {last_error}")]
    GaveUp { restarts: u32, last_error: String },
}

/// A running module process plus what is needed to restart it.
pub struct ModuleProcess {
    command: CommandSpec,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    options: ModuleOptions,
    live: Option<Live>,
    restarts_in_a_row: u32,
    restarts_total: u32,
    last_error: String,
}

struct Live {
    // Declared first so the stop reaches the supervisor while its pid is surely still ours
    // (dropping `child` may reap it).
    _group: ProcessGroup,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ModuleProcess {
    /// Starts the module with default options. `env` is the child's whole environment (build it
    /// with `executor::command::base_env` to get the same minimal host set as executors).
    pub fn spawn(
        command: CommandSpec,
        cwd: PathBuf,
        env: Vec<(String, String)>,
    ) -> Result<ModuleProcess, ModuleError> {
        Self::spawn_with(command, cwd, env, ModuleOptions::default())
    }

    /// Starts the module with explicit options.
    pub fn spawn_with(
        command: CommandSpec,
        cwd: PathBuf,
        env: Vec<(String, String)>,
        options: ModuleOptions,
    ) -> Result<ModuleProcess, ModuleError> {
        let mut module = ModuleProcess {
            command,
            cwd,
            env,
            options,
            live: None,
            restarts_in_a_row: 0,
            restarts_total: 0,
            last_error: String::new(),
        };
        module.live = Some(module.start()?);
        Ok(module)
    }

    /// Restarts since spawn, in total.
    pub fn restarts(&self) -> u32 {
        self.restarts_total
    }

    /// The current process id, if one is running (for tests and diagnostics).
    pub fn pid(&self) -> Option<u32> {
        self.live.as_ref().and_then(|l| l.child.id())
    }

    /// Sends one message and waits for the reply.
    pub async fn handle(
        &mut self,
        message: Value,
        state: Value,
    ) -> Result<ModuleReply, ModuleError> {
        let line = format!("{}\n", json!({ "message": message, "state": state }));
        let result = match self.send(&line).await {
            Err(ModuleError::Died { .. }) => {
                // Never delivered, so resending to a fresh process cannot duplicate work.
                self.fail(ModuleError::Died {
                    detail: "stdin closed".to_string(),
                });
                self.send(&line).await
            }
            ok => ok,
        };
        let outcome = match result {
            Ok(()) => self.receive().await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(reply) => {
                self.restarts_in_a_row = 0;
                Ok(reply)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Writes `line` to a live process, (re)starting one first if needed.
    async fn send(&mut self, line: &str) -> Result<(), ModuleError> {
        let live = self.ensure_live()?;
        let write = async {
            live.stdin.write_all(line.as_bytes()).await?;
            live.stdin.flush().await
        };
        write.await.map_err(|e| ModuleError::Died {
            detail: format!("write failed: {e}"),
        })
    }

    /// The live process, restarting a dead one within the restart budget.
    fn ensure_live(&mut self) -> Result<&mut Live, ModuleError> {
        if let Some(live) = &mut self.live
            && let Ok(Some(status)) = live.child.try_wait()
        {
            self.last_error = format!("module exited with {status}");
            self.live = None;
        }
        if self.live.is_none() {
            if self.restarts_in_a_row >= self.options.max_restarts {
                return Err(ModuleError::GaveUp {
                    restarts: self.restarts_in_a_row,
                    last_error: self.last_error.clone(),
                });
            }
            self.restarts_in_a_row += 1;
            self.restarts_total += 1;
            tracing::warn!(module = %self.options.label, restart = self.restarts_total, "restarting module process");
            self.live = Some(self.start()?);
        }
        self.live.as_mut().ok_or_else(|| ModuleError::Died {
            detail: "not running".to_string(),
        })
    }

    /// Reads and parses one reply line within the timeout.
    async fn receive(&mut self) -> Result<ModuleReply, ModuleError> {
        let after = self.options.reply_timeout;
        let max = self.options.max_reply_bytes;
        let live = self.live.as_mut().ok_or_else(|| ModuleError::Died {
            detail: "not running".to_string(),
        })?;
        let line = tokio::time::timeout(after, read_reply_line(&mut live.stdout, max))
            .await
            .map_err(|_| ModuleError::Timeout { after })??;
        parse_reply(&line)
    }

    /// Kills the current process (the next call restarts it) and hands the error back.
    fn fail(&mut self, error: ModuleError) -> ModuleError {
        self.live = None;
        if !matches!(error, ModuleError::GaveUp { .. }) {
            self.last_error = error.to_string();
        }
        error
    }

    fn start(&self) -> Result<Live, ModuleError> {
        let (program, args) = program_and_args(&self.command);
        let spawn_error = |source| ModuleError::Spawn {
            command: program.clone(),
            source,
        };
        let prepared = Prepared {
            program: program.clone(),
            args,
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            join_cgroups: Vec::new(),
            containment: None,
        };
        let (mut command, launch) = containment::command(&prepared).map_err(spawn_error)?;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A supervisor is stopped through the group handle; SIGKILL would orphan its tree.
            .kill_on_drop(launch == Launch::Direct)
            .spawn()
            .map_err(spawn_error)?;
        let group = ProcessGroup::of(&child, launch);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ModuleError::Died {
                detail: "pipes unavailable".to_string(),
            });
        };
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(log_stderr(
                BufReader::new(stderr),
                self.options.label.clone(),
            ));
        }
        Ok(Live {
            _group: group,
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }
}

/// Logs each stderr line of the module (lines are capped at 64 KiB).
async fn log_stderr<R: AsyncBufRead + Unpin>(mut reader: R, label: String) {
    loop {
        let mut buf = Vec::new();
        match (&mut reader)
            .take(64 * 1024)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                tracing::info!(module = %label, "{}", line.trim_end());
            }
        }
    }
}
