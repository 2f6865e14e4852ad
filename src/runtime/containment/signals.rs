//! Signal plumbing for the supervisor: signals are blocked and taken synchronously with
//! `sigtimedwait`, so the supervisor is a plain loop with no handlers and no races between a
//! handler and the code it interrupts.

use std::io;
use std::time::Duration;

/// Signals the supervisor reacts to.
pub const WATCHED: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD];

/// A set of signals.
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    pub fn of(signals: &[libc::c_int]) -> SignalSet {
        // SAFETY: sigemptyset/sigaddset only write the set we own.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            SignalSet(set)
        }
    }

    /// Blocks the set for this (single-threaded) process; blocked signals wait in the queue.
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: changes this thread's mask only.
        let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Takes the next pending signal of the set, waiting at most `timeout` (forever if `None`).
    /// `None` when the time ran out.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<libc::c_int> {
        loop {
            let rc = match timeout {
                None => {
                    // SAFETY: sigwaitinfo writes only into the null-allowed info pointer.
                    unsafe { libc::sigwaitinfo(&self.0, std::ptr::null_mut()) }
                }
                Some(t) => {
                    let ts = libc::timespec {
                        tv_sec: t.as_secs() as libc::time_t,
                        tv_nsec: t.subsec_nanos() as libc::c_long,
                    };
                    // SAFETY: as above; `ts` lives across the call.
                    unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) }
                }
            };
            if rc > 0 {
                return Some(rc);
            }
            if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return None;
            }
        }
    }
}

/// Clears the signal mask: a program we exec must not inherit our blocked set.
pub fn unblock_all() {
    let none = SignalSet::of(&[]);
    // SAFETY: sets this thread's mask to the empty set.
    unsafe {
        libc::sigprocmask(libc::SIG_SETMASK, &none.0, std::ptr::null_mut());
    }
}

/// Sends `sig` to `pid`; errors (the process is gone) are ignored.
pub fn send(pid: libc::pid_t, sig: libc::c_int) {
    if pid > 0 {
        // SAFETY: kill(2) only sends a signal.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

impl Ended {
    pub fn from_wait_status(status: libc::c_int) -> Ended {
        if libc::WIFSIGNALED(status) {
            Ended::Signaled(libc::WTERMSIG(status))
        } else {
            Ended::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// Two bytes for the status pipe: kind and value.
    pub fn encode(self) -> [u8; 2] {
        match self {
            Ended::Exited(code) => [b'x', code as u8],
            Ended::Signaled(sig) => [b's', sig as u8],
        }
    }

    pub fn decode(bytes: [u8; 2]) -> Option<Ended> {
        match bytes[0] {
            b'x' => Some(Ended::Exited(i32::from(bytes[1]))),
            b's' => Some(Ended::Signaled(i32::from(bytes[1]))),
            _ => None,
        }
    }
}

/// Reaps every child that has ended, without blocking; returns `(pid, how)` for each.
pub fn reap_ready() -> Vec<(libc::pid_t, Ended)> {
    let mut reaped = Vec::new();
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status into our local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return reaped;
        }
        reaped.push((pid, Ended::from_wait_status(status)));
    }
}

/// Ends this process the way the step ended: same exit code, or death by the same signal (so
/// the runtime reports `killed by signal 9`, not a made-up exit code).
pub fn exit_like(ended: Ended) -> ! {
    if let Ended::Signaled(sig) = ended {
        // SAFETY: restores the default action of `sig`, unblocks everything and raises it on
        // ourselves; no core file (the step's crash is not ours to dump).
        unsafe {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(sig, libc::SIG_DFL);
            unblock_all();
            libc::raise(sig);
        }
        std::process::exit(128 + sig);
    }
    match ended {
        Ended::Exited(code) => std::process::exit(code),
        Ended::Signaled(sig) => std::process::exit(128 + sig),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_cross_the_pipe_intact() {
        for e in [
            Ended::Exited(0),
            Ended::Exited(3),
            Ended::Exited(255),
            Ended::Signaled(9),
            Ended::Signaled(15),
        ] {
            assert_eq!(Ended::decode(e.encode()), Some(e));
        }
        assert_eq!(Ended::decode([b'?', 1]), None);
    }
}
