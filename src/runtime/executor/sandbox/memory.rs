//! The step's memory limit (`resources.memory_mb`).
//!
//! Preferred: a cgroup of its own (v2 `memory.max`, or the v1 memory controller on hybrid
//! hosts) that the step's first process joins before it execs, so everything it starts is
//! counted, and exceeding the limit gets the step OOM-killed. The cgroup's own `oom_kill`
//! counter then says that this is what happened: the failure names the limit because the
//! kernel reported it, not because the exit looked like it.
//!
//! Fallback when no memory cgroup is writable: `RLIMIT_AS` on the step (see
//! [`super::argv::Layout::address_space`]). Allocations beyond it fail inside the step, which
//! then exits however it handles that; the failure message says the limit was in force.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How the limit is held for one step.
#[derive(Debug)]
pub enum MemoryLimit {
    Cgroup(StepCgroup),
    /// `RLIMIT_AS` of this many bytes.
    AddressSpace(u64),
}

/// A cgroup made for one step; removed when dropped.
#[derive(Debug)]
pub struct StepCgroup {
    dir: PathBuf,
    /// The file holding the `oom_kill` counter (`memory.events` or `memory.oom_control`).
    events: PathBuf,
}

impl StepCgroup {
    /// The `cgroup.procs` file a process writes `0` into to join.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Whether the kernel OOM-killed anything in the step's cgroup.
    pub fn oom_killed(&self) -> bool {
        std::fs::read_to_string(&self.events)
            .ok()
            .and_then(|text| counter(&text, "oom_kill"))
            .is_some_and(|n| n > 0)
    }
}

impl Drop for StepCgroup {
    fn drop(&mut self) {
        // The step's processes are gone when the supervisor has exited, but the kernel may
        // take a moment to release them from the cgroup; rmdir fails (EBUSY) until it has.
        for _ in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        tracing::warn!(dir = %self.dir.display(), "could not remove a step's memory cgroup");
    }
}

/// `name value` lines, as cgroup stat files write them.
fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// A limit of `mb` MiB for one step: a fresh cgroup when possible, else `RLIMIT_AS`.
/// Blocking (filesystem writes): call from `spawn_blocking`.
pub fn limit(mb: u64) -> MemoryLimit {
    let bytes = mb.saturating_mul(1024 * 1024);
    match v2(bytes).or_else(|| v1(bytes)) {
        Some(cgroup) => MemoryLimit::Cgroup(cgroup),
        None => MemoryLimit::AddressSpace(bytes),
    }
}

/// A unique child name, so concurrent steps never share a cgroup.
fn child_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "mn-step-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// This process's cgroup path in the hierarchy whose `/proc/self/cgroup` line `matches`.
fn own_path(matches: impl Fn(&str, &str) -> bool) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        matches(id, controllers).then(|| path.to_string())
    })
}

/// Creates `parent/<unique>`, lets `configure` set it up, and removes it again on failure.
fn make(parent: &Path, events: &str, configure: impl Fn(&Path) -> bool) -> Option<StepCgroup> {
    let dir = parent.join(child_name());
    std::fs::create_dir(&dir).ok()?;
    let cgroup = StepCgroup {
        events: dir.join(events),
        dir,
    };
    // Dropping `cgroup` on failure removes the directory.
    configure(&cgroup.dir).then_some(cgroup)
}

/// cgroup v2, where the memory controller is enabled for our cgroup's children.
fn v2(bytes: u64) -> Option<StepCgroup> {
    let path = own_path(|id, _| id == "0")?;
    let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(Path::new)
        .find(|m| m.join("cgroup.controllers").is_file())?;
    let parent = mount.join(path.trim_start_matches('/'));
    let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
    if !enabled.split_whitespace().any(|c| c == "memory") {
        return None;
    }
    make(&parent, "memory.events", |dir| {
        // No swap, so exceeding the limit is an OOM kill rather than a slow crawl.
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        std::fs::write(dir.join("memory.max"), bytes.to_string()).is_ok()
    })
}

/// The cgroup v1 memory controller (hybrid hosts).
fn v1(bytes: u64) -> Option<StepCgroup> {
    let path = own_path(|_, controllers| controllers.split(',').any(|c| c == "memory"))?;
    let mount = Path::new("/sys/fs/cgroup/memory");
    let own = mount.join(path.trim_start_matches('/'));
    // Inside a cgroup namespace our path may not be visible under the mount; use its root.
    let parent = if own.is_dir() {
        own
    } else {
        mount.to_path_buf()
    };
    make(&parent, "memory.oom_control", |dir| {
        let limit = bytes.to_string();
        if std::fs::write(dir.join("memory.limit_in_bytes"), &limit).is_err() {
            return false;
        }
        // Memory plus swap, where swap accounting exists (must not be below the limit).
        let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &limit);
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_counters_are_read_by_name() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(counter(v1, "oom_kill"), Some(2));
        let v2 = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(counter(v2, "oom_kill"), Some(1));
        assert_eq!(counter("oom_kill_disable 0\n", "oom_kill"), None);
    }
}
