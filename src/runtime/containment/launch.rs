//! The runtime's side: building the command that starts a step under its supervisor, and
//! stopping it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tokio::process::Command;

use super::{Mode, SUPERVISE_ARG};
use crate::runtime::executor::command::Prepared;
use crate::runtime::executor::process::{KILL_GRACE, die_with_parent};

/// How a started step must be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Under a supervisor: SIGTERM it and let it clean up; SIGKILL would orphan the tree in
    /// subreaper mode.
    Supervised,
    /// Directly (no supervisor binary found): only its process group can be killed.
    Direct,
}

/// A command that runs `prepared` contained: program resolved on the step's `PATH` (so a
/// missing program is a spawn error, as before), environment cleared and replaced, its own
/// process group, and death with the runtime.
pub fn command(prepared: &Prepared) -> io::Result<(Command, Launch)> {
    let program = resolve(&prepared.program, path_of(&prepared.env), &prepared.cwd)?;
    let mode = match prepared.containment {
        Some(mode) => mode,
        None => Mode::from_env().map_err(io::Error::other)?,
    };
    let (mut command, launch) = match supervisor_exe() {
        Some(exe) => {
            let mut c = Command::new(exe);
            c.arg(SUPERVISE_ARG)
                .arg(mode.as_str())
                .arg(KILL_GRACE.as_millis().to_string())
                .arg(std::process::id().to_string())
                .arg(&program)
                .arg(&prepared.program)
                .args(&prepared.args);
            (c, Launch::Supervised)
        }
        None => {
            let mut c = Command::new(&program);
            c.arg0(&prepared.program).args(&prepared.args);
            (c, Launch::Direct)
        }
    };
    die_with_parent(&mut command);
    for procs in &prepared.join_cgroups {
        join_cgroup(&mut command, procs)?;
    }
    command
        .env_clear()
        .envs(prepared.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&prepared.cwd)
        .process_group(0);
    Ok((command, launch))
}

/// Makes the child join the cgroup whose `cgroup.procs` is `procs` before it execs, so the
/// supervisor and everything it starts are in it from the start (moving it after the spawn
/// would race with the processes it forks). A failed join fails the spawn: the step must not
/// run without the limit it was given.
fn join_cgroup(command: &mut Command, procs: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(procs.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cgroup path has a NUL byte"))?;
    // SAFETY: the closure runs in the forked child before exec and only calls open(2),
    // write(2) and close(2), which are async-signal-safe; `path` was allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // "0" means the writing process itself.
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if written != 1 {
                return Err(err);
            }
            Ok(())
        });
    }
    Ok(())
}

/// The binary that can act as supervisor: `MN_STEP_SUPERVISOR`, else this executable when it
/// is `mirror-neuron`, else a `mirror-neuron` next to it or one level up (test binaries live in
/// `target/*/deps/`). Looked up once.
fn supervisor_exe() -> Option<&'static Path> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        let found = find_supervisor();
        if found.is_none() {
            tracing::warn!(
                "no mirror-neuron binary to supervise steps with (set MN_STEP_SUPERVISOR); steps \
                 run uncontained: a child that leaves the process group can outlive its step"
            );
        }
        found
    })
    .as_deref()
}

fn find_supervisor() -> Option<PathBuf> {
    if let Some(p) = crate::config::var("MN_STEP_SUPERVISOR") {
        return Some(PathBuf::from(p));
    }
    let me = std::env::current_exe().ok()?;
    let name = "mirror-neuron";
    if me.file_name().and_then(|n| n.to_str()) == Some(name) {
        return Some(me);
    }
    let dir = me.parent()?;
    [dir.join(name), dir.parent()?.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}

fn path_of(env: &[(String, String)]) -> Option<&str> {
    env.iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
}

/// Where `program` is, the way `execvp` would find it: a name with a `/` is taken relative to
/// the working directory, a bare name is searched on `PATH`.
fn resolve(program: &str, path: Option<&str>, cwd: &Path) -> io::Result<OsString> {
    if program.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "empty command"));
    }
    if program.contains('/') {
        let p = cwd.join(program);
        return executable(&p).map(|()| p.into_os_string());
    }
    let mut last = io::Error::new(io::ErrorKind::NotFound, "not found on PATH");
    for dir in path.unwrap_or_default().split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = cwd.join(dir).join(program);
        match executable(&candidate) {
            Ok(()) => return Ok(candidate.into_os_string()),
            // Like execvp: a permission problem is remembered, a miss is not.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => last = e,
            Err(_) => {}
        }
    }
    Err(last)
}

fn executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::from_raw_os_error(libc::EACCES));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_like_execvp() {
        let cwd = Path::new("/");
        let sh = resolve("sh", Some("/nonexistent:/bin:/usr/bin"), cwd).expect("sh on PATH");
        assert!(Path::new(&sh).is_file());
        assert_eq!(
            resolve("no-such-program-xyz", Some("/bin"), cwd)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        assert!(resolve("/bin/sh", None, cwd).is_ok());
        assert!(
            resolve("./etc", None, cwd).is_err(),
            "a directory is not a program"
        );
        assert!(resolve("", Some("/bin"), cwd).is_err());
    }
}
