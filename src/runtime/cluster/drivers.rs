//! The runtime drivers this machine really offers, probed at start (issue: an executor that
//! asks for a sandbox or a container must never run on the host because nobody checked):
//! - `host_local`: always;
//! - `openshell` (and its alias `sandbox`): when bubblewrap starts a process in fresh
//!   namespaces here;
//! - `docker_worker`: when the container CLI (`MN_DOCKER_BIN`, else `docker`, else `podman`)
//!   reaches its daemon.
//!
//! Each probe runs a real command with a time limit, so a wedged daemon cannot hold a node's
//! start up.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest one probe may take.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// The drivers to advertise, `host_local` first.
pub fn probe_drivers() -> Vec<String> {
    let mut out = vec!["host_local".to_string()];
    if sandbox_works() {
        out.extend(["openshell".to_string(), "sandbox".to_string()]);
    }
    if container_cli().is_some() {
        out.push("docker_worker".to_string());
    }
    out
}

/// Whether bubblewrap can start a process with its own namespaces here.
pub fn sandbox_works() -> bool {
    let mut cmd = Command::new("bwrap");
    cmd.args([
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "true",
    ]);
    succeeds(cmd)
}

/// The container CLI that reaches a daemon: `MN_DOCKER_BIN` if set (nothing else is tried
/// then), else `docker`, else `podman`.
pub fn container_cli() -> Option<String> {
    let candidates = match crate::config::var("MN_DOCKER_BIN") {
        Some(bin) => vec![bin],
        None => vec!["docker".to_string(), "podman".to_string()],
    };
    candidates.into_iter().find(|bin| {
        let mut cmd = Command::new(bin);
        cmd.args(["info", "--format", "{{.ServerVersion}}"]);
        succeeds(cmd)
    })
}

/// Runs `cmd` silently; true when it exits 0 within [`PROBE_LIMIT`].
fn succeeds(mut cmd: Command) -> bool {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if started.elapsed() < PROBE_LIMIT => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_container_cli_offers_no_docker_driver() {
        let mut cmd = Command::new("/nonexistent/docker");
        cmd.arg("info");
        assert!(!succeeds(cmd));
        assert!(probe_drivers().first().is_some_and(|d| d == "host_local"));
    }

    #[test]
    fn a_command_past_the_limit_counts_as_failed() {
        let started = Instant::now();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        assert!(!succeeds(cmd));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
