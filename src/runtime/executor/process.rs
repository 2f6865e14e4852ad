//! Runs one child process with bounded time and bounded memory.
//!
//! The child runs under a supervisor that contains everything it starts (see
//! [`crate::runtime::containment`]), so a timeout, a cancel or the runtime's death ends the
//! whole tree, not just the shell. Both pipes are read concurrently; bytes beyond the cap are
//! read and discarded, so a chatty child never blocks on a full pipe. A stream that outgrows
//! the inline limit is written to a spool file in the blob store as it arrives (hashed on the
//! way), so memory stays at about two inline limits plus one read chunk whatever the cap.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::command::Prepared;
use crate::runtime::blobs::{BlobError, BlobRef, BlobStore};
use crate::runtime::containment::{self, Launch};

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

/// How much of each stream to keep, and where a large one goes.
#[derive(Debug, Clone)]
pub struct CaptureLimits {
    /// Bytes kept per stream; the rest is read and dropped.
    pub cap: usize,
    /// Streams up to this size stay in memory; a larger one is spooled to `spool_to`.
    pub inline: usize,
    /// The blob store to spool into; `None` keeps everything in memory (up to `cap`).
    pub spool_to: Option<BlobStore>,
}

/// One stream's captured bytes.
#[derive(Debug, Default)]
pub struct Captured {
    /// Every kept byte, or, when [`Captured::spool`] is set, the first `inline` of them.
    pub bytes: Vec<u8>,
    /// The kept bytes on disk, when they outgrew the inline limit.
    pub spool: Option<Spooled>,
    /// Bytes the child wrote in total, including those dropped beyond the cap.
    pub total: u64,
    pub truncated: bool,
}

impl Captured {
    /// Bytes kept (in memory or spooled).
    pub fn kept(&self) -> u64 {
        self.spool
            .as_ref()
            .map_or(self.bytes.len() as u64, |s| s.size)
    }
}

/// A stream's kept bytes in a spool file of the blob store, with their digest. Dropped
/// without [`Spooled::commit`], the file is removed.
#[derive(Debug)]
pub struct Spooled {
    /// Empty once committed (the file then has its digest's name and is not ours to remove).
    path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl Spooled {
    /// Names the spool file by its digest in `store` (a rename, no copy).
    pub fn commit(mut self, store: &BlobStore) -> Result<BlobRef, BlobError> {
        let path = std::mem::take(&mut self.path);
        store.commit_spool(&path, &self.sha256, self.size)
    }

    /// Reads the spooled bytes back (bounded by the cap that produced them).
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(&self.path)
    }

    /// Reads the last `len` bytes (fewer if the file is shorter).
    pub fn tail(&self, len: u64) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.size.saturating_sub(len)))?;
        let mut out = vec![];
        f.read_to_end(&mut out)?;
        Ok(out)
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The finished run.
#[derive(Debug)]
pub struct ProcessResult {
    pub termination: Termination,
    pub stdout: Captured,
    pub stderr: Captured,
    pub duration: Duration,
}

/// Spawns `cmd` (contained, see [`crate::runtime::containment`]) and waits for it. `Err` means
/// it could not be started (or waited on).
pub async fn run_process(
    cmd: &Prepared,
    timeout: Option<Duration>,
    limits: &CaptureLimits,
) -> std::io::Result<ProcessResult> {
    let started = Instant::now();
    let (mut command, launch) = containment::command(cmd)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut group = ProcessGroup::of(&child, launch);
    let (stop_tx, stop_rx) = watch::channel(false);
    let out = tokio::spawn(capture(
        child.stdout.take(),
        limits.clone(),
        stop_rx.clone(),
    ));
    let err = tokio::spawn(capture(child.stderr.take(), limits.clone(), stop_rx));
    let termination = wait(&mut child, &group, timeout).await?;
    group.reaped();
    if launch == Launch::Direct {
        // The leader is gone; whatever it left behind in its group goes too, closing the pipes.
        // (A supervisor has already killed everything the step started.)
        group.kill_group();
    }
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

/// Waits for the child, enforcing `timeout`: a stop request first, then SIGKILL if the step
/// (or its supervisor) is still there after the grace.
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
            group.terminate();
            if tokio::time::timeout(group.patience(), child.wait())
                .await
                .is_err()
            {
                group.kill_group();
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

/// Reads `reader` to the end (or until `stop`), keeping the first `cap` bytes: in memory while
/// they fit the inline limit, then in a spool file.
async fn capture<R: AsyncRead + Unpin>(
    reader: Option<R>,
    limits: CaptureLimits,
    mut stop: watch::Receiver<bool>,
) -> Captured {
    let Some(mut reader) = reader else {
        return Captured::default();
    };
    let mut sink = Sink::new(limits);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            r = reader.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = stop.changed() => break,
        };
        sink.push(&chunk[..n]).await;
    }
    sink.finish().await
}

/// Where a stream's bytes go while the child runs.
struct Sink {
    limits: CaptureLimits,
    head: Vec<u8>,
    spool: Option<(PathBuf, tokio::fs::File, Sha256)>,
    kept: u64,
    total: u64,
    /// Set when the spool could not be written: later bytes are dropped like those past the cap.
    failed: bool,
}

impl Sink {
    fn new(limits: CaptureLimits) -> Sink {
        Sink {
            head: Vec::with_capacity(limits.cap.min(limits.inline).min(CHUNK)),
            limits,
            spool: None,
            kept: 0,
            total: 0,
            failed: false,
        }
    }

    async fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = (self.limits.cap as u64).saturating_sub(self.kept);
        let take = &bytes[..bytes.len().min(room as usize)];
        if take.is_empty() || self.failed {
            return;
        }
        let fits_inline = self.kept as usize + take.len() <= self.limits.inline;
        if self.spool.is_none() && (fits_inline || self.limits.spool_to.is_none()) {
            self.head.extend_from_slice(take);
            self.kept += take.len() as u64;
            return;
        }
        if self.spool.is_none() && !self.open_spool().await {
            return;
        }
        let written = match &mut self.spool {
            Some((_, file, hasher)) => {
                hasher.update(take);
                file.write_all(take).await
            }
            None => return,
        };
        if let Err(e) = written {
            // Keep only what is in memory: a spool with a hole would not match its digest.
            tracing::warn!(error = %e, "output spool write failed; keeping only the inline part");
            if let Some((path, _, _)) = self.spool.take() {
                let _ = std::fs::remove_file(path);
            }
            self.kept = self.head.len() as u64;
            self.failed = true;
            return;
        }
        self.kept += take.len() as u64;
    }

    /// Starts spooling: the bytes kept so far go first; the head keeps the inline part.
    async fn open_spool(&mut self) -> bool {
        let Some(store) = &self.limits.spool_to else {
            return false;
        };
        let opened = store.spool();
        let (path, file) = match opened {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot spool a large output; dropping the rest");
                self.failed = true;
                return false;
            }
        };
        let mut file = tokio::fs::File::from_std(file);
        let mut hasher = Sha256::new();
        if let Err(e) = file.write_all(&self.head).await {
            tracing::warn!(path = %path.display(), error = %e, "output spool write failed");
            let _ = std::fs::remove_file(&path);
            self.failed = true;
            return false;
        }
        hasher.update(&self.head);
        self.spool = Some((path, file, hasher));
        true
    }

    async fn finish(mut self) -> Captured {
        let spool = match self.spool.take() {
            None => None,
            Some((path, mut file, hasher)) => {
                let _ = file.flush().await;
                Some(Spooled {
                    path,
                    sha256: hex::encode(hasher.finalize()),
                    size: self.kept,
                })
            }
        };
        self.head.truncate(self.limits.inline);
        Captured {
            bytes: self.head,
            spool,
            total: self.total,
            truncated: self.total > self.kept,
        }
    }
}

/// A started step's leader (its supervisor, or the step itself when direct) and its process
/// group, for stopping it. Stopped when dropped (covers cancelled futures) unless reaped.
#[derive(Debug)]
pub struct ProcessGroup {
    pgid: Option<libc::pid_t>,
    launch: Launch,
    /// Set once the leader was waited for: its pid may then belong to someone else.
    reaped: bool,
}

/// How long a supervisor may take, beyond the step's grace, to kill the tree and exit.
const SUPERVISOR_SLACK: Duration = Duration::from_secs(2);

impl ProcessGroup {
    /// The group led by `child`, which was spawned with `process_group(0)`.
    pub fn of(child: &Child, launch: Launch) -> ProcessGroup {
        // `process_group(0)` makes the child's pid its group id. Ids <= 1 would address our own
        // group or every process, so they are never signalled.
        let pgid = child
            .id()
            .and_then(|id| libc::pid_t::try_from(id).ok())
            .filter(|&id| id > 1);
        ProcessGroup {
            pgid,
            launch,
            reaped: false,
        }
    }

    /// Asks the step to stop. A supervisor gets SIGTERM: it forwards it to the step's whole
    /// tree and kills what is left after the grace. A direct child's group gets SIGTERM.
    pub fn terminate(&self) {
        let Some(pid) = self.live_pid() else { return };
        // SAFETY: kill/killpg only send a signal; the leader is our unreaped child.
        unsafe {
            match self.launch {
                Launch::Supervised => libc::kill(pid, libc::SIGTERM),
                Launch::Direct => libc::killpg(pid, libc::SIGTERM),
            };
        }
    }

    /// How long to wait after [`ProcessGroup::terminate`] before [`ProcessGroup::kill_group`].
    pub fn patience(&self) -> Duration {
        match self.launch {
            Launch::Supervised => KILL_GRACE + SUPERVISOR_SLACK,
            Launch::Direct => KILL_GRACE,
        }
    }

    /// SIGKILL to the whole group. For a supervised step this is the last resort: in
    /// namespace mode init follows the supervisor (PDEATHSIG) and takes the namespace along.
    pub fn kill_group(&self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg only sends a signal; a stale group id yields ESRCH, ignored.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }

    /// Records that the leader was waited for.
    pub fn reaped(&mut self) {
        self.reaped = true;
    }

    fn live_pid(&self) -> Option<libc::pid_t> {
        self.pgid.filter(|_| !self.reaped)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        match self.launch {
            // The supervisor cleans up within the grace; SIGKILL would orphan a subreaper's tree.
            Launch::Supervised => self.terminate(),
            Launch::Direct => self.kill_group(),
        }
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
