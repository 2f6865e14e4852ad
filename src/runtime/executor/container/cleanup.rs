//! Making sure a step's container does not outlive the step.
//!
//! Stopping the engine's CLI (the step's timeout or cancel kills its process tree) does not
//! stop the container: docker's daemon, or podman's `conmon`, keeps it running. So the runner
//! removes it by name: after a step that did not end on its own, and from the guard's `Drop`
//! when the step's future is dropped (a cancelled job) before it could.

use std::path::PathBuf;
use std::time::Duration;

use super::probe::answer_within;

/// How long killing and removing a container may take.
const REMOVE_WITHIN: Duration = Duration::from_secs(30);

/// Removes the named container when dropped, unless [`ContainerGuard::disarm`]ed.
#[derive(Debug)]
pub struct ContainerGuard {
    bin: PathBuf,
    name: String,
    armed: bool,
}

impl ContainerGuard {
    pub fn new(bin: PathBuf, name: String) -> ContainerGuard {
        ContainerGuard {
            bin,
            name,
            armed: true,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kills and removes the container now (blocking), then disarms the guard.
    pub fn remove(&mut self) {
        remove(&self.bin, &self.name);
        self.armed = false;
    }

    /// The step ended on its own and `--rm` removed the container: nothing left to do.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Dropped in async code (a cancelled step): the engine calls block, so they run on a
        // thread of their own.
        let (bin, name) = (self.bin.clone(), std::mem::take(&mut self.name));
        std::thread::spawn(move || remove(&bin, &name));
    }
}

/// `kill` then `rm -f`: `rm -f` alone would first ask the step to stop and wait for it.
/// Errors are expected when the container is already gone, and are only logged otherwise.
fn remove(bin: &std::path::Path, name: &str) {
    let _ = answer_within(bin, &["kill", name], REMOVE_WITHIN);
    match answer_within(bin, &["rm", "-f", name], REMOVE_WITHIN) {
        Ok((true, _)) => {}
        Ok((false, text)) if text.to_ascii_lowercase().contains("no such container") => {}
        Ok((false, text)) => {
            tracing::warn!(container = name, output = %text.trim(), "could not remove a step's container");
        }
        Err(e) => {
            tracing::warn!(container = name, error = %e, "could not remove a step's container")
        }
    }
}
