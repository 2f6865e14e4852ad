//! Runs one child process with bounded time and bounded memory.
//!
//! The child leads its own process group, so a timeout (or the run ending) can kill everything
//! it started, not just the shell. Both pipes are read concurrently into capped buffers; bytes
//! beyond the cap are read and discarded, so a chatty child never blocks on a full pipe and
//! memory stays at about two caps plus one read chunk.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::command::Prepared;

/// Time between SIGTERM and SIGKILL when a run times out.
pub const KILL_GRACE: Duration = Duration::from_secs(1);
/// How long to keep reading after the child exited, for output still in the pipes.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const CHUNK: usize = 64 * 1024;

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(i32),
    /// Killed by us after the timeout.
    TimedOut,
}

/// One stream's captured bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub bytes: Vec<u8>,
    /// Bytes the child wrote in total, including those dropped beyond the cap.
    pub total: u64,
    pub truncated: bool,
}

/// The finished run.
#[derive(Debug)]
pub struct ProcessResult {
    pub termination: Termination,
    pub stdout: Captured,
    pub stderr: Captured,
    pub duration: Duration,
}

/// Spawns `cmd` and waits for it. `Err` means it could not be started (or waited on).
pub async fn run_process(
    cmd: &Prepared,
    timeout: Option<Duration>,
    cap: usize,
) -> std::io::Result<ProcessResult> {
    let started = Instant::now();
    let mut command = Command::new(&cmd.program);
    die_with_parent(&mut command);
    let mut child = command
        .args(&cmd.args)
        .env_clear()
        .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&cmd.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let group = ProcessGroup::of(&child);
    let (stop_tx, stop_rx) = watch::channel(false);
    let out = tokio::spawn(capture(child.stdout.take(), cap, stop_rx.clone()));
    let err = tokio::spawn(capture(child.stderr.take(), cap, stop_rx));
    let termination = wait(&mut child, &group, timeout).await?;
    // The leader is gone; whatever it left behind in its group goes too, closing the pipes.
    group.signal(libc::SIGKILL);
    let readers = async { (out.await.unwrap_or_default(), err.await.unwrap_or_default()) };
    tokio::pin!(readers);
    let (stdout, stderr) = tokio::select! {
        r = &mut readers => r,
        () = tokio::time::sleep(DRAIN_GRACE) => {
            // Someone outside the group still holds a pipe open; keep what was read so far.
            let _ = stop_tx.send(true);
            readers.await
        }
    };
    Ok(ProcessResult {
        termination,
        stdout,
        stderr,
        duration: started.elapsed(),
    })
}

/// Waits for the child, enforcing `timeout` with SIGTERM, then SIGKILL after [`KILL_GRACE`].
async fn wait(
    child: &mut Child,
    group: &ProcessGroup,
    timeout: Option<Duration>,
) -> std::io::Result<Termination> {
    let Some(limit) = timeout else {
        return child.wait().await.map(termination);
    };
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.map(termination),
        Err(_) => {
            group.signal(libc::SIGTERM);
            if tokio::time::timeout(KILL_GRACE, child.wait())
                .await
                .is_err()
            {
                group.signal(libc::SIGKILL);
                child.wait().await?;
            }
            Ok(Termination::TimedOut)
        }
    }
}

fn termination(status: std::process::ExitStatus) -> Termination {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(sig)) => Termination::Signaled(sig),
        (None, None) => Termination::Exited(-1),
    }
}

/// Reads `reader` to the end (or until `stop`), keeping the first `cap` bytes.
async fn capture<R: AsyncRead + Unpin>(
    reader: Option<R>,
    cap: usize,
    mut stop: watch::Receiver<bool>,
) -> Captured {
    let Some(mut reader) = reader else {
        return Captured::default();
    };
    let mut bytes = Vec::with_capacity(cap.min(CHUNK));
    let mut chunk = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = tokio::select! {
            r = reader.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = stop.changed() => break,
        };
        total += n as u64;
        let room = cap.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..n.min(room)]);
    }
    let truncated = total > bytes.len() as u64;
    Captured {
        bytes,
        total,
        truncated,
    }
}

/// A child's process group; killed with SIGKILL when dropped (covers cancelled futures).
/// The child must have been spawned with `process_group(0)`.
#[derive(Debug)]
pub struct ProcessGroup {
    pgid: Option<libc::pid_t>,
}

impl ProcessGroup {
    /// The group led by `child`.
    pub fn of(child: &Child) -> ProcessGroup {
        // `process_group(0)` makes the child's pid its group id. Ids <= 1 would address our own
        // group or every process, so they are never signalled.
        let pgid = child
            .id()
            .and_then(|id| libc::pid_t::try_from(id).ok())
            .filter(|&id| id > 1);
        ProcessGroup { pgid }
    }

    /// Sends `sig` to every process in the group.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg only sends a signal; a stale group id yields ESRCH, which is ignored.
            unsafe {
                libc::killpg(pgid, sig);
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// Makes the child get SIGKILL when the runtime dies, even by `kill -9`: otherwise its work
/// would go on unrecorded while the next owner redoes it. (Linux only; elsewhere the group
/// kill on drop still covers orderly exits.)
pub fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}
