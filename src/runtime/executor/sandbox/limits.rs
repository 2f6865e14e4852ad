//! The step's resource limits: memory (`resources.memory_mb`), CPU (`resources.cpu_cores`)
//! and processes (`sandbox.pids_limit`).
//!
//! Each is a cgroup the step's first process joins before it execs, so everything it starts
//! is counted: on cgroup v2 one cgroup with `memory.max`, `cpu.max` and `pids.max`; on hybrid
//! hosts (v1 controllers) one cgroup per controller's hierarchy. Exceeding memory gets the
//! step OOM-killed and the memory cgroup's `oom_kill` counter says so, so the failure names
//! the limit because the kernel reported it. CPU is throttled to the quota; a fork beyond the
//! process limit fails inside the step.
//!
//! Without a writable memory cgroup the memory limit falls back to `RLIMIT_AS` on the step
//! (see [`super::argv::Layout::address_space`]): allocations beyond it fail inside the step.
//! CPU and process limits have no such fallback; a host without their controllers runs the
//! step without them and says so once in the log.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a step asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    pub memory_bytes: Option<u64>,
    pub cpu_millis: Option<u64>,
    pub pids: Option<u64>,
}

/// The limits held for one step; their cgroups are removed when this is dropped.
#[derive(Debug, Default)]
pub struct StepLimits {
    cgroups: Vec<StepCgroup>,
    /// The file holding the memory cgroup's `oom_kill` counter.
    oom_events: Option<PathBuf>,
    /// `RLIMIT_AS` in bytes, when memory could not be put in a cgroup.
    pub address_space: Option<u64>,
}

impl StepLimits {
    /// The `cgroup.procs` files the step's first process writes itself into.
    pub fn procs(&self) -> Vec<PathBuf> {
        self.cgroups.iter().map(StepCgroup::procs).collect()
    }

    /// Whether the memory limit is held by a cgroup (rather than `RLIMIT_AS`).
    pub fn memory_in_cgroup(&self) -> bool {
        self.oom_events.is_some()
    }

    /// Whether the kernel OOM-killed anything in the step's memory cgroup.
    pub fn oom_killed(&self) -> bool {
        self.oom_events
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|text| counter(&text, "oom_kill"))
            .is_some_and(|n| n > 0)
    }

    /// The directories of the step's cgroups (tests read the limits written there).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.cgroups.iter().map(|c| c.dir.as_path())
    }
}

/// A cgroup made for one step; removed when dropped.
#[derive(Debug)]
struct StepCgroup {
    dir: PathBuf,
}

impl StepCgroup {
    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
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
        tracing::warn!(dir = %self.dir.display(), "could not remove a step's cgroup");
    }
}

/// `name value` lines, as cgroup stat files write them.
fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// The CFS period the CPU quota is written against (100 ms, the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

/// The quota for `millis` millicores in one [`CPU_PERIOD_US`] (at least 1 ms, the kernel's
/// minimum).
fn cpu_quota_us(millis: u64) -> u64 {
    (millis.saturating_mul(CPU_PERIOD_US) / 1000).max(1000)
}

/// Holds what `asked` for one step: cgroups where the host has the controllers, else
/// `RLIMIT_AS` for memory. Blocking (filesystem writes): call from `spawn_blocking`.
pub fn apply(asked: Asked) -> StepLimits {
    let mut limits = StepLimits::default();
    if asked == Asked::default() {
        return limits;
    }
    let name = child_name();
    let mut missing = asked;
    if let Some((cgroup, applied)) = v2(&name, asked) {
        if applied.memory_bytes.is_some() {
            limits.oom_events = Some(cgroup.dir.join("memory.events"));
        }
        limits.cgroups.push(cgroup);
        missing = Asked {
            memory_bytes: asked
                .memory_bytes
                .filter(|_| applied.memory_bytes.is_none()),
            cpu_millis: asked.cpu_millis.filter(|_| applied.cpu_millis.is_none()),
            pids: asked.pids.filter(|_| applied.pids.is_none()),
        };
    }
    if let Some(bytes) = missing.memory_bytes {
        match v1_memory(&name, bytes) {
            Some(cgroup) => {
                limits.oom_events = Some(cgroup.dir.join("memory.oom_control"));
                limits.cgroups.push(cgroup);
            }
            None => limits.address_space = Some(bytes),
        }
    }
    if let Some(millis) = missing.cpu_millis {
        match v1_cpu(&name, millis) {
            Some(cgroup) => limits.cgroups.push(cgroup),
            None => unavailable("cpu"),
        }
    }
    if let Some(pids) = missing.pids {
        match v1_pids(&name, pids) {
            Some(cgroup) => limits.cgroups.push(cgroup),
            None => unavailable("pids"),
        }
    }
    limits
}

/// Says once per controller that a limit is not applied on this host.
fn unavailable(controller: &'static str) {
    static CPU: Once = Once::new();
    static PIDS: Once = Once::new();
    let once = if controller == "cpu" { &CPU } else { &PIDS };
    once.call_once(|| {
        tracing::warn!(
            controller,
            "no writable {controller} cgroup on this host: sandboxed steps run without their {controller} limit"
        )
    });
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

/// Creates `parent/name`, lets `configure` set it up, and removes it again on failure.
fn make(parent: &Path, name: &str, configure: impl Fn(&Path) -> bool) -> Option<StepCgroup> {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).ok()?;
    let cgroup = StepCgroup { dir };
    // Dropping `cgroup` on failure removes the directory.
    configure(&cgroup.dir).then_some(cgroup)
}

/// cgroup v2: one cgroup with every asked limit whose controller is enabled for our
/// cgroup's children. Returns it with what it holds; `None` when it holds nothing.
fn v2(name: &str, asked: Asked) -> Option<(StepCgroup, Asked)> {
    let path = own_path(|id, _| id == "0")?;
    let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(Path::new)
        .find(|m| m.join("cgroup.controllers").is_file())?;
    let parent = mount.join(path.trim_start_matches('/'));
    let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
    let on = |c: &str| enabled.split_whitespace().any(|e| e == c);
    let held = Asked {
        memory_bytes: asked.memory_bytes.filter(|_| on("memory")),
        cpu_millis: asked.cpu_millis.filter(|_| on("cpu")),
        pids: asked.pids.filter(|_| on("pids")),
    };
    if held == Asked::default() {
        return None;
    }
    let cgroup = make(&parent, name, |dir| {
        let write = |file: &str, value: String| std::fs::write(dir.join(file), value).is_ok();
        if let Some(bytes) = held.memory_bytes {
            // No swap, so exceeding the limit is an OOM kill rather than a slow crawl.
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            if !write("memory.max", bytes.to_string()) {
                return false;
            }
        }
        if let Some(millis) = held.cpu_millis
            && !write(
                "cpu.max",
                format!("{} {CPU_PERIOD_US}", cpu_quota_us(millis)),
            )
        {
            return false;
        }
        held.pids
            .is_none_or(|pids| write("pids.max", pids.to_string()))
    })?;
    Some((cgroup, held))
}

/// A cgroup in the v1 hierarchy of `controller` (mounted at `/sys/fs/cgroup/<mount>`).
fn v1(
    controller: &str,
    mount: &str,
    name: &str,
    configure: impl Fn(&Path) -> bool,
) -> Option<StepCgroup> {
    let path = own_path(|_, controllers| controllers.split(',').any(|c| c == controller))?;
    let mount = Path::new("/sys/fs/cgroup").join(mount);
    let own = mount.join(path.trim_start_matches('/'));
    // Inside a cgroup namespace our path may not be visible under the mount; use its root.
    let parent = if own.is_dir() { own } else { mount };
    make(&parent, name, configure)
}

fn v1_memory(name: &str, bytes: u64) -> Option<StepCgroup> {
    v1("memory", "memory", name, |dir| {
        let limit = bytes.to_string();
        if std::fs::write(dir.join("memory.limit_in_bytes"), &limit).is_err() {
            return false;
        }
        // Memory plus swap, where swap accounting exists (must not be below the limit).
        let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &limit);
        true
    })
}

fn v1_cpu(name: &str, millis: u64) -> Option<StepCgroup> {
    // `cpu` is often co-mounted with `cpuacct` (`cpu,cpuacct`), with `cpu` a link to it.
    v1("cpu", "cpu", name, |dir| {
        std::fs::write(dir.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string()).is_ok()
            && std::fs::write(
                dir.join("cpu.cfs_quota_us"),
                cpu_quota_us(millis).to_string(),
            )
            .is_ok()
    })
}

fn v1_pids(name: &str, pids: u64) -> Option<StepCgroup> {
    v1("pids", "pids", name, |dir| {
        std::fs::write(dir.join("pids.max"), pids.to_string()).is_ok()
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

    #[test]
    fn cpu_quotas_are_millicores_of_the_period() {
        assert_eq!(cpu_quota_us(500), 50_000);
        assert_eq!(cpu_quota_us(2_000), 200_000);
        // The kernel refuses a quota under 1 ms.
        assert_eq!(cpu_quota_us(1), 1_000);
    }

    #[test]
    fn nothing_asked_holds_nothing() {
        let limits = apply(Asked::default());
        assert!(limits.procs().is_empty() && limits.address_space.is_none());
    }
}
