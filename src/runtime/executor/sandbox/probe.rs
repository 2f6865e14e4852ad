//! Finding a bubblewrap that works on this node. Checked once per process by running a
//! trivial command in the same kind of sandbox a step gets: a binary that exists but cannot
//! create namespaces here (a container without user namespaces, a kernel that forbids them)
//! must fail the step with that reason, never let it run on the host instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::argv::{Layout, bwrap_args};
use crate::domain::manifest::executor::Network;

/// The bubblewrap binary: `MN_BWRAP_BIN`, else `bwrap` on this process's `PATH`.
fn find() -> Result<PathBuf, String> {
    if let Some(p) = crate::config::var("MN_BWRAP_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("MN_BWRAP_BIN={} does not exist", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("bwrap"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "bubblewrap (bwrap) is not installed on this node (apt-get install bubblewrap, or \
             set MN_BWRAP_BIN)"
                .to_string()
        })
}

/// Runs `true` in the layout a step gets, with the temp dir standing in for the run dir.
fn check(bwrap: &Path) -> Result<(), String> {
    let dir = std::env::temp_dir();
    let layout = Layout {
        run_dir: &dir,
        cwd: &dir,
        network: Network::None,
        address_space: None,
        artifacts: None,
    };
    let output = Command::new(bwrap)
        .args(bwrap_args(&layout, "true", &[]))
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bwrap.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(format!(
        "{} does not work on this node ({}): {}",
        bwrap.display(),
        output.status,
        stderr.trim()
    ))
}

/// The working bubblewrap, or why there is none. Probed once per process.
pub fn bwrap() -> Result<&'static Path, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let found = find().and_then(|p| check(&p).map(|()| p));
            if let Err(e) = &found {
                tracing::warn!(error = %e, "the sandbox runner is unavailable");
            }
            found
        })
        .as_deref()
        .map_err(|e| format!("the sandbox runner is unavailable: {e}; sandboxed steps do not run"))
}
