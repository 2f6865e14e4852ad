//! Step containment: every process a step starts dies with the step.
//!
//! A process group is not enough: a step can `setsid`, double-fork, or outlive a `kill -9` of
//! the runtime (its children are reparented to pid 1 and keep running while the next owner
//! runs the step again beside them). So each step runs under a small supervisor, this binary
//! re-executed as `mirror-neuron __contain ...` (see [`supervisor`]):
//!
//! - **pid namespace** (default when the kernel allows it: root, or unprivileged user
//!   namespaces): the step is pid 1's only child in a fresh pid and mount namespace with its own
//!   `/proc`. When pid 1 exits the kernel kills everything left in the namespace, whatever it
//!   did to escape, and the step cannot see (let alone read) the runtime's process.
//! - **subreaper** (fallback): the supervisor marks itself child subreaper, so orphans of the
//!   step are reparented to it; it kills the whole tree it finds under itself when the step
//!   ends, is stopped, or the runtime dies.
//!
//! The supervisor learns of the runtime's death through `PR_SET_PDEATHSIG`, and of a stop
//! through SIGTERM; it then gives the step [`KILL_GRACE`](crate::runtime::executor::process::KILL_GRACE)
//! to exit and kills what remains. `MN_STEP_CONTAINMENT` picks the mode: `auto` (default),
//! `namespace` (refuse to run a step without one) or `subreaper`.

mod descendants;
mod launch;
mod namespace;
mod signals;
pub mod supervisor;

pub use launch::{Launch, command};

/// The hidden first argument that turns this binary into a step supervisor.
pub const SUPERVISE_ARG: &str = "__contain";

/// How a step is contained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A pid namespace when possible, else a subreaper.
    Auto,
    /// A pid namespace or nothing runs.
    Namespace,
    /// A subreaper, without namespaces.
    Subreaper,
    /// A subreaper around a container engine's CLI (see
    /// [`crate::runtime::executor::container`]): the step's own code runs in the engine's
    /// container, and the CLI keeps the capabilities rootful podman needs (without
    /// `CAP_SYS_ADMIN` it takes itself for rootless and cannot apply the step's limits).
    /// Chosen by the runner only, never by `MN_STEP_CONTAINMENT`.
    EngineCli,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Namespace => "namespace",
            Mode::Subreaper => "subreaper",
            Mode::EngineCli => "engine-cli",
        }
    }

    pub fn parse(text: &str) -> Result<Mode, String> {
        match text.trim() {
            "" | "auto" => Ok(Mode::Auto),
            "namespace" | "pidns" => Ok(Mode::Namespace),
            "subreaper" => Ok(Mode::Subreaper),
            "engine-cli" => Ok(Mode::EngineCli),
            other => Err(format!(
                "MN_STEP_CONTAINMENT={other:?}: expected auto, namespace or subreaper"
            )),
        }
    }

    /// `MN_STEP_CONTAINMENT`, `auto` when unset.
    pub fn from_env() -> Result<Mode, String> {
        Mode::from_setting(&crate::config::var("MN_STEP_CONTAINMENT").unwrap_or_default())
    }

    /// A node's setting: any mode but the container runner's own.
    fn from_setting(text: &str) -> Result<Mode, String> {
        match Mode::parse(text)? {
            Mode::EngineCli => Err(
                "MN_STEP_CONTAINMENT=engine-cli: expected auto, namespace or subreaper (engine-cli \
                 is the container runner's own)"
                    .to_string(),
            ),
            mode => Ok(mode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for mode in [
            Mode::Auto,
            Mode::Namespace,
            Mode::Subreaper,
            Mode::EngineCli,
        ] {
            assert_eq!(Mode::parse(mode.as_str()), Ok(mode));
        }
        assert_eq!(Mode::from_setting("subreaper"), Ok(Mode::Subreaper));
        assert!(
            Mode::from_setting("engine-cli")
                .unwrap_err()
                .contains("container runner's own")
        );
        assert_eq!(Mode::parse(""), Ok(Mode::Auto));
        assert!(
            Mode::parse("cgroup")
                .unwrap_err()
                .contains("MN_STEP_CONTAINMENT")
        );
    }
}
