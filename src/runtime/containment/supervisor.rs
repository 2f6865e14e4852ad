//! `mirror-neuron __contain <mode> <grace_ms> <runtime_pid> <program> <argv0> [args...]`: the
//! per-step supervisor. It runs as its own small process (single-threaded, no async runtime),
//! started by the runtime with the step's environment, working directory and pipes; the step
//! inherits all three. See the module docs of [`super`] for the two modes.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use super::signals::{Ended, SignalSet, WATCHED, exit_like, reap_ready, send, unblock_all};
use super::{Mode, descendants, namespace};

/// Exit code when the supervisor itself could not do its job (bad arguments, no namespace in
/// `namespace` mode, the runtime already gone). The step did not run.
pub const EXIT_SUPERVISOR: i32 = 125;
/// How long the final sweep of the subreaper mode may take.
const SWEEP_LIMIT: Duration = Duration::from_secs(5);

/// The parsed command line.
#[derive(Debug)]
pub struct Request {
    mode: Mode,
    grace: Duration,
    runtime_pid: libc::pid_t,
    program: CString,
    argv: Vec<CString>,
}

impl Request {
    /// Parses the arguments after [`super::SUPERVISE_ARG`].
    pub fn parse(args: &[OsString]) -> Result<Request, String> {
        let text = |i: usize, what: &str| -> Result<String, String> {
            args.get(i)
                .and_then(|a| a.to_str())
                .map(str::to_string)
                .ok_or_else(|| format!("missing {what}"))
        };
        let mode = Mode::parse(&text(0, "mode")?)?;
        let grace = text(1, "grace")?
            .parse::<u64>()
            .map_err(|e| format!("grace: {e}"))?;
        let runtime_pid = text(2, "runtime pid")?
            .parse::<libc::pid_t>()
            .map_err(|e| format!("runtime pid: {e}"))?;
        let c = |a: &OsString| CString::new(a.as_bytes()).map_err(|e| e.to_string());
        let program = c(args.get(3).ok_or("missing program")?)?;
        let argv = args[4..].iter().map(c).collect::<Result<Vec<_>, _>>()?;
        if argv.is_empty() {
            return Err("missing argv[0]".to_string());
        }
        Ok(Request {
            mode,
            grace: Duration::from_millis(grace),
            runtime_pid,
            program,
            argv,
        })
    }
}

/// The supervisor's `main`; never returns.
pub fn main(args: &[OsString]) -> ! {
    let req = match Request::parse(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mirror-neuron {}: {e}", super::SUPERVISE_ARG);
            std::process::exit(EXIT_SUPERVISOR);
        }
    };
    // The runtime spawned us with PDEATHSIG=SIGKILL; from here on its death should reach us as
    // a signal we can act on, so that the step's tree goes with us.
    set_parent_death_signal(libc::SIGTERM);
    // SAFETY: plain getter.
    if unsafe { libc::getppid() } != req.runtime_pid {
        std::process::exit(EXIT_SUPERVISOR);
    }
    let signals = SignalSet::of(&WATCHED);
    if let Err(e) = signals.block() {
        eprintln!("mirror-neuron: cannot block signals: {e}");
        std::process::exit(EXIT_SUPERVISOR);
    }
    let in_namespace = match req.mode {
        Mode::Subreaper | Mode::EngineCli => false,
        Mode::Auto => namespace::enter().is_ok(),
        Mode::Namespace => match namespace::enter() {
            Ok(()) => true,
            Err(e) => {
                eprintln!(
                    "mirror-neuron: MN_STEP_CONTAINMENT=namespace but no pid namespace can be \
                     created here: {e}"
                );
                std::process::exit(EXIT_SUPERVISOR);
            }
        },
    };
    if !in_namespace {
        set_child_subreaper();
    }
    let (status_read, status_write) = pipe();
    let (alive_read, alive_write) = pipe();
    // SAFETY: single-threaded process; the child execs or exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        eprintln!(
            "mirror-neuron: cannot start the step: {}",
            io::Error::last_os_error()
        );
        std::process::exit(EXIT_SUPERVISOR);
    }
    if child == 0 {
        drop(status_read);
        drop(alive_write);
        if in_namespace {
            namespace::init(&req, alive_read, status_write);
        }
        exec_step(&req);
    }
    drop(status_write);
    drop(alive_read);
    let ended = supervise(child, in_namespace, req.grace, &signals);
    // In namespace mode the child is init: the step's own status came down the pipe.
    let ended = if in_namespace {
        read_status(&status_read).unwrap_or(ended)
    } else {
        ended
    };
    drop(alive_write);
    exit_like(ended)
}

/// Waits for `child`, forwarding stops and enforcing the grace period; returns how it ended.
/// In subreaper mode, also kills whatever the step left behind.
fn supervise(
    child: libc::pid_t,
    in_namespace: bool,
    grace: Duration,
    signals: &SignalSet,
) -> Ended {
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let mut ended = None;
    loop {
        let timeout = kill_at.map(|t| t.saturating_duration_since(Instant::now()));
        match signals.wait(timeout) {
            Some(libc::SIGCHLD) => {
                for (pid, how) in reap_ready() {
                    if pid == child {
                        ended = Some(how);
                    }
                }
            }
            Some(sig) => {
                if in_namespace {
                    send(child, sig);
                } else {
                    descendants::signal_all(self_pid(), sig);
                }
                kill_at.get_or_insert_with(|| Instant::now() + grace);
            }
            None => {}
        }
        if ended.is_none() && !killed && kill_at.is_some_and(|t| Instant::now() >= t) {
            killed = true;
            kill_at = None;
            if in_namespace {
                // Init dies, and the kernel takes the namespace with it.
                send(child, libc::SIGKILL);
            } else {
                for (pid, how) in descendants::kill_all(self_pid(), SWEEP_LIMIT) {
                    if pid == child {
                        ended = Some(how);
                    }
                }
            }
        }
        if let Some(how) = ended {
            if !in_namespace {
                // The step is over; nothing it started outlives it.
                descendants::kill_all(self_pid(), SWEEP_LIMIT);
            }
            return how;
        }
    }
}

/// Execs the step with a clean signal mask; exits 127 if it cannot (as shells do).
pub fn exec_step(req: &Request) -> ! {
    unblock_all();
    // Rust's start-up ignores SIGPIPE in this process, and an ignored signal survives exec:
    // restore the default so `yes | head` ends quietly, as it does in a shell.
    // SAFETY: changes one signal's disposition in this single-threaded process before exec.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A container engine's CLI is the runtime's own tool, not the step's code (that runs in
    // the container), and rootful podman needs CAP_SYS_ADMIN.
    if req.mode != Mode::EngineCli {
        drop_ptrace_capability();
    }
    let mut argv: Vec<*const libc::c_char> = req.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: `program` and every argv entry are NUL-terminated and outlive the call; the
    // environment is the one we were started with.
    unsafe {
        libc::execv(req.program.as_ptr(), argv.as_ptr());
    }
    eprintln!(
        "mirror-neuron: cannot start {:?}: {}",
        req.program,
        io::Error::last_os_error()
    );
    std::process::exit(127)
}

/// A step running as root keeps root, but loses the capabilities that let a process read
/// another's memory and environment past its non-dumpable flag: `CAP_SYS_PTRACE`, and (as
/// measured on Linux 6.x, where either one also opens `/proc/<pid>/environ` of a non-dumpable
/// process) `CAP_SYS_ADMIN` and `CAP_PERFMON`. Without them it cannot read the runtime's
/// tokens. Harmless (EPERM) when not root.
fn drop_ptrace_capability() {
    // From `<linux/capability.h>` (the libc crate does not export them).
    const CAP_SYS_PTRACE: libc::c_ulong = 19;
    const CAP_SYS_ADMIN: libc::c_ulong = 21;
    const CAP_PERFMON: libc::c_ulong = 38;
    for cap in [CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON] {
        // SAFETY: prctl only changes this process's capability bounding set.
        unsafe {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
    }
}

/// Asks for `sig` when our parent (thread) dies.
pub fn set_parent_death_signal(sig: libc::c_int) {
    // SAFETY: prctl only sets a process attribute.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0);
    }
}

/// Orphans of the step are reparented to us rather than to pid 1, so we can find and kill them.
fn set_child_subreaper() {
    // SAFETY: prctl only sets a process attribute.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
    }
}

fn self_pid() -> libc::pid_t {
    // SAFETY: plain getter.
    unsafe { libc::getpid() }
}

/// A close-on-exec pipe: (read, write). The step never inherits either end.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which we then own.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        eprintln!(
            "mirror-neuron: cannot create a pipe: {}",
            io::Error::last_os_error()
        );
        std::process::exit(EXIT_SUPERVISOR);
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn read_status(fd: &OwnedFd) -> Option<Ended> {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 2];
    // SAFETY: reads at most two bytes into a local buffer. Init wrote before exiting, and
    // every write end is closed by now, so this cannot block.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    (n == 2).then(|| Ended::decode(buf)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_its_command_line() {
        let r = Request::parse(&os(&["auto", "1000", "42", "/bin/sh", "sh", "-c", "true"]))
            .expect("parses");
        assert_eq!(r.mode, Mode::Auto);
        assert_eq!(r.grace, Duration::from_millis(1000));
        assert_eq!(r.runtime_pid, 42);
        assert_eq!(r.argv.len(), 3);
        assert!(Request::parse(&os(&["auto", "x", "1", "/bin/sh", "sh"])).is_err());
        assert!(Request::parse(&os(&["auto", "1", "1", "/bin/sh"])).is_err());
        assert!(Request::parse(&os(&["weird", "1", "1", "/bin/sh", "sh"])).is_err());
    }
}
