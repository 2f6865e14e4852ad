//! The pid-namespace mode: entering the namespaces, and pid 1 inside them.
//!
//! `unshare(CLONE_NEWPID)` does not move the caller; its next child is pid 1 of the new
//! namespace. That child (the "init" here) mounts a private `/proc`, starts the step as its only
//! child, forwards stop signals to every process in the namespace, reaps whatever is
//! reparented to it, and exits with the step's status when the step ends; the kernel then
//! kills everything still in the namespace. Init dies with the supervisor (`PDEATHSIG`), so a
//! supervisor killed outright takes the namespace with it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::signals::{Ended, SignalSet, WATCHED, reap_ready, send};
use super::supervisor::{Request, exec_step, set_parent_death_signal};

/// Moves the caller into new mount and pid namespaces (its next child becomes pid 1). As
/// non-root, through a new user namespace that maps the caller's own ids, so nothing gains a
/// privilege outside it.
pub fn enter() -> io::Result<()> {
    // SAFETY: unshare(2) only changes this process's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) } == 0 {
        return Ok(());
    }
    let first = io::Error::last_os_error();
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        return Err(first);
    }
    // SAFETY: as above.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // An unprivileged process may map only its own ids, and must give up setgroups first.
    match std::fs::write("/proc/self/setgroups", "deny") {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}

/// Runs as pid 1 of the new namespace; never returns. `alive` is the read end of a pipe whose
/// write end only the supervisor holds (EOF means it is gone); the step's status goes to
/// `status` before exiting.
pub fn init(req: &Request, alive: OwnedFd, status: OwnedFd) -> ! {
    set_parent_death_signal(libc::SIGKILL);
    // getppid() reads 0 from inside a new pid namespace, so the supervisor's liveness comes
    // from the pipe: if it died before PDEATHSIG was armed, the pipe is already at EOF.
    if pipe_closed(&alive) {
        std::process::exit(125);
    }
    private_proc();
    let signals = SignalSet::of(&WATCHED);
    // SAFETY: the process is single-threaded; the child only execs (or exits).
    let step = unsafe { libc::fork() };
    if step < 0 {
        eprintln!(
            "mirror-neuron: cannot start the step: {}",
            io::Error::last_os_error()
        );
        std::process::exit(126);
    }
    if step == 0 {
        drop(alive);
        drop(status);
        exec_step(req);
    }
    loop {
        match signals.wait(None) {
            Some(libc::SIGCHLD) => {
                for (pid, ended) in reap_ready() {
                    if pid == step {
                        report(&status, ended);
                        // Leaving tears the namespace down: the kernel kills what is left.
                        std::process::exit(0);
                    }
                }
            }
            // A stop: everyone in the namespace gets it (kill -1 spares init itself).
            Some(sig) => send(-1, sig),
            None => {}
        }
    }
}

/// Makes mounts private (nothing leaks back to the host) and mounts a `/proc` that shows only
/// this namespace. Best effort: where mounting is refused, the step still runs contained, it
/// just sees the host's process list (the runtime is not dumpable, so not its memory).
fn private_proc() {
    let root = CString::new("/").unwrap_or_default();
    let proc_dir = CString::new("/proc").unwrap_or_default();
    let proc_fs = CString::new("proc").unwrap_or_default();
    // SAFETY: mount(2) with valid C strings; failure is tolerated.
    unsafe {
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return;
        }
        libc::mount(
            proc_fs.as_ptr(),
            proc_dir.as_ptr(),
            proc_fs.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        );
    }
}

/// True when every write end of the pipe is closed.
fn pipe_closed(fd: &OwnedFd) -> bool {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one descriptor we own, without waiting.
    let n = unsafe { libc::poll(&mut poll, 1, 0) };
    n > 0 && poll.revents & libc::POLLHUP != 0
}

fn report(fd: &OwnedFd, ended: Ended) {
    let bytes = ended.encode();
    // SAFETY: writes two bytes from a local buffer to a descriptor we own.
    unsafe {
        libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
    }
}
