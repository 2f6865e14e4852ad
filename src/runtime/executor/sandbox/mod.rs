//! The `sandbox` runner (Linux, bubblewrap): a step of a sandboxed executor (see
//! [`crate::domain::manifest::executor::Runner`]) runs in its own pid, mount, ipc, uts and
//! network namespaces, sees the system directories read-only, a private `/tmp`, its own `/proc`
//! and `/dev`, and can write only to its staged run directory. The network is off unless the
//! executor allows all egress. Memory is limited per [`memory`].
//!
//! It wraps the [`Prepared`] command (program and arguments become `bwrap ... -- program
//! args`) before it goes to the containment supervisor, so timeouts, cancellation and the
//! runtime's death stop a sandboxed step exactly as they stop a host one. The environment is
//! unchanged: the executor already starts steps from an empty one.
//!
//! - [`argv`]: the bubblewrap command line (pure);
//! - [`probe`]: finding a bubblewrap that works here (a missing or broken one fails the step);
//! - [`memory`]: the memory limit and how its breach is recognised.

pub mod argv;
pub mod memory;
pub mod probe;

use std::path::Path;

use super::command::Prepared;
use crate::domain::manifest::executor::SandboxSpec;
use memory::MemoryLimit;

/// A step ready to run in the sandbox, with the limit that must outlive it.
#[derive(Debug)]
pub struct Sandboxed {
    pub prepared: Prepared,
    /// The memory limit held for the step (its cgroup is removed when this is dropped).
    pub memory: Option<MemoryLimit>,
    /// The limit asked, in MiB, for the failure message.
    pub memory_mb: Option<u64>,
}

/// Wraps `prepared` (whose working directory lies in `run_dir`) to run sandboxed. Blocking
/// (probes bubblewrap once, creates the memory cgroup): call from `spawn_blocking`.
pub fn wrap(prepared: Prepared, spec: &SandboxSpec, run_dir: &Path) -> Result<Sandboxed, String> {
    let bwrap = probe::bwrap()?;
    let memory = spec.memory_mb.map(memory::limit);
    let address_space = match &memory {
        Some(MemoryLimit::AddressSpace(bytes)) => Some(*bytes),
        _ => None,
    };
    let layout = argv::Layout {
        run_dir,
        cwd: &prepared.cwd,
        network: spec.network,
        address_space,
    };
    let args = argv::bwrap_args(&layout, &prepared.program, &prepared.args);
    let join_cgroup = match &memory {
        Some(MemoryLimit::Cgroup(cgroup)) => Some(cgroup.procs()),
        _ => None,
    };
    Ok(Sandboxed {
        prepared: Prepared {
            program: bwrap.display().to_string(),
            args,
            join_cgroup,
            ..prepared
        },
        memory,
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
        match self.memory.as_ref()? {
            MemoryLimit::Cgroup(cgroup) => cgroup.oom_killed().then(|| {
                MemoryNote::Exceeded(format!(
                    "the step exceeded its memory limit of {mb} MB (resources.memory_mb) and \
                     was killed"
                ))
            }),
            MemoryLimit::AddressSpace(_) => Some(MemoryNote::InForce(format!(
                "it ran with a memory limit of {mb} MB (resources.memory_mb, as RLIMIT_AS): \
                 allocations beyond it fail"
            ))),
        }
    }
}
