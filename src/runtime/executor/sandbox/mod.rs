//! The `sandbox` runner (Linux, bubblewrap): a step of a sandboxed executor (see
//! [`crate::domain::manifest::executor::Runner`]) runs in its own pid, mount, ipc, uts and
//! network namespaces, sees the system directories read-only, a private `/tmp`, its own `/proc`
//! and `/dev`, and can write only to its staged run directory. The network is off unless the
//! executor allows all egress. Memory, CPU and processes are limited per [`limits`].
//!
//! It wraps the [`Prepared`] command (program and arguments become `bwrap ... -- program
//! args`) before it goes to the containment supervisor, so timeouts, cancellation and the
//! runtime's death stop a sandboxed step exactly as they stop a host one. The environment is
//! unchanged: the executor already starts steps from an empty one.
//!
//! - [`argv`]: the bubblewrap command line (pure);
//! - [`probe`]: finding a bubblewrap that works here (a missing or broken one fails the step);
//! - [`limits`]: the memory, CPU and process limits, and how a memory breach is recognised.

pub mod argv;
pub mod limits;
pub mod probe;

use std::path::Path;

use super::command::Prepared;
use crate::domain::manifest::executor::SandboxSpec;
use limits::{Asked, StepLimits};

/// A step ready to run in the sandbox, with the limit that must outlive it.
#[derive(Debug)]
pub struct Sandboxed {
    pub prepared: Prepared,
    /// The limits held for the step (their cgroups are removed when this is dropped).
    pub limits: StepLimits,
    /// The limit asked, in MiB, for the failure message.
    pub memory_mb: Option<u64>,
}

/// Wraps `prepared` (whose working directory lies in `run_dir`) to run sandboxed. Blocking
/// (probes bubblewrap once, creates the step's cgroups): call from `spawn_blocking`.
pub fn wrap(
    prepared: Prepared,
    spec: &SandboxSpec,
    run_dir: &Path,
    artifacts: Option<&super::ArtifactDirs>,
) -> Result<Sandboxed, String> {
    let bwrap = probe::bwrap()?;
    let limits = limits::apply(Asked {
        memory_bytes: spec.memory_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
        cpu_millis: spec.cpu_millis,
        pids: Some(spec.pids_limit),
    });
    let layout = argv::Layout {
        run_dir,
        cwd: &prepared.cwd,
        network: spec.network,
        address_space: limits.address_space,
        artifacts,
    };
    let args = argv::bwrap_args(&layout, &prepared.program, &prepared.args);
    Ok(Sandboxed {
        prepared: Prepared {
            program: bwrap.display().to_string(),
            args,
            join_cgroups: limits.procs(),
            ..prepared
        },
        limits,
        memory_mb: spec.memory_mb,
    })
}

/// What a step's memory limit says about its failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryNote {
    /// The kernel killed the step for exceeding it (the cgroup's OOM-kill counter moved).
    Exceeded(String),
    /// The limit was in force (as `RLIMIT_AS`, which kills nothing and so reports nothing):
    /// worth naming next to the failure, not a diagnosis.
    InForce(String),
}

impl Sandboxed {
    /// What the memory limit says about the finished step, if one was set.
    pub fn memory_note(&self) -> Option<MemoryNote> {
        let mb = self.memory_mb?;
        if self.limits.memory_in_cgroup() {
            return self.limits.oom_killed().then(|| {
                MemoryNote::Exceeded(format!(
                    "the step exceeded its memory limit of {mb} MB (resources.memory_mb) and \
                     was killed"
                ))
            });
        }
        self.limits.address_space.map(|_| {
            MemoryNote::InForce(format!(
                "it ran with a memory limit of {mb} MB (resources.memory_mb, as RLIMIT_AS): \
                 allocations beyond it fail"
            ))
        })
    }
}
