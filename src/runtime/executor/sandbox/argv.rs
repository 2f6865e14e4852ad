//! The bubblewrap command line for one step. Pure: the same inputs always give the same argv,
//! so the isolation it asks for is checked by unit tests without running anything.

use std::path::Path;

use crate::domain::manifest::executor::Network;
use crate::domain::manifest::run_paths::SANDBOX_JOB_DIR;
use crate::runtime::executor::ArtifactDirs;

/// System directories mounted read-only. `--ro-bind-try` because on merged-`/usr` systems
/// `/bin` and `/lib*` are symlinks into `/usr` (or absent): bubblewrap then binds what they
/// point at, or skips a missing one, instead of failing.
const SYSTEM_DIRS: [&str; 8] = [
    "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
];

/// What the sandbox is built around.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// The staged run directory: the only writable bind.
    pub run_dir: &'a Path,
    /// The step's working directory (inside `run_dir`).
    pub cwd: &'a Path,
    pub network: Network,
    /// A `RLIMIT_AS` in bytes, applied by `prlimit` inside the sandbox (when no cgroup could
    /// hold the limit). Not on bubblewrap itself, nor on the supervisor: the limit is for the
    /// step, not for the tools that start it.
    pub address_space: Option<u64>,
    /// The step's artifact folders, bound at their host paths (which the step's variables
    /// name): the inbound one read-only, the output one writable.
    pub artifacts: Option<&'a ArtifactDirs>,
}

/// `bwrap` arguments that run `program args` in the sandbox (the program is looked up on the
/// step's `PATH` inside it, by bubblewrap).
pub fn bwrap_args(layout: &Layout<'_>, program: &str, args: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| argv.extend(items.iter().map(|s| s.to_string()));
    // Own pid, mount, ipc, uts, network (and user/cgroup where possible) namespaces.
    push(&["--unshare-all"]);
    if layout.network == Network::Host {
        push(&["--share-net"]);
    }
    // Gone with the supervisor; no controlling terminal to push keystrokes into (TIOCSTI);
    // no capabilities even when the runtime runs as root.
    push(&["--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
    push(&["--ro-bind", "/usr", "/usr"]);
    for dir in SYSTEM_DIRS {
        push(&["--ro-bind-try", dir, dir]);
    }
    // Its own /proc (only its processes), a minimal /dev, and a private /tmp. The run dir is
    // bound after /tmp, so a run dir under /tmp is still reachable on its usual path.
    push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    let run_dir = layout.run_dir.display().to_string();
    let cwd = layout.cwd.display().to_string();
    push(&["--bind", &run_dir, &run_dir]);
    // The same directory where OpenShell sandboxes put the job, so commands written for them
    // (`python3 /sandbox/job/worker/main.py`) work unchanged.
    push(&["--bind", &run_dir, SANDBOX_JOB_DIR]);
    if let Some(dirs) = layout.artifacts {
        let (input, output) = (
            dirs.input.display().to_string(),
            dirs.output.display().to_string(),
        );
        push(&["--ro-bind", &input, &input, "--bind", &output, &output]);
    }
    // The host's home is not mounted: tools that write caches or config under $HOME (pip,
    // matplotlib, git) get the private /tmp instead of failing on a missing directory.
    push(&["--setenv", "HOME", "/tmp"]);
    push(&["--chdir", &cwd, "--"]);
    if let Some(bytes) = layout.address_space {
        argv.extend([
            "prlimit".to_string(),
            format!("--as={bytes}"),
            "--".to_string(),
        ]);
    }
    argv.push(program.to_string());
    argv.extend(args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(network: Network, address_space: Option<u64>) -> Layout<'static> {
        Layout {
            run_dir: Path::new("/tmp/mn/run1"),
            cwd: Path::new("/tmp/mn/run1/work"),
            network,
            address_space,
            artifacts: None,
        }
    }

    fn pairs(argv: &[String], flag: &str) -> Vec<(String, String)> {
        argv.windows(3)
            .filter(|w| w[0] == flag)
            .map(|w| (w[1].clone(), w[2].clone()))
            .collect()
    }

    #[test]
    fn artifact_folders_are_bound_inbound_read_only_outbound_writable() {
        let dirs = ArtifactDirs {
            input: "/art/j/a-1/in".into(),
            output: "/art/j/a-1/out".into(),
        };
        let mut with = layout(Network::None, None);
        with.artifacts = Some(&dirs);
        let argv = bwrap_args(&with, "true", &[]);
        let input = ("/art/j/a-1/in".to_string(), "/art/j/a-1/in".to_string());
        let output = ("/art/j/a-1/out".to_string(), "/art/j/a-1/out".to_string());
        assert!(pairs(&argv, "--ro-bind").contains(&input));
        assert!(pairs(&argv, "--bind").contains(&output));
        assert!(!pairs(&argv, "--bind").contains(&input));
    }

    #[test]
    fn home_is_the_private_tmp() {
        let dir = std::path::Path::new("/runs/r1");
        let layout = Layout {
            run_dir: dir,
            cwd: dir,
            network: Network::None,
            address_space: None,
            artifacts: None,
        };
        let argv = bwrap_args(&layout, "true", &[]);
        let at = argv.iter().position(|a| a == "--setenv").expect("setenv");
        assert_eq!(argv[at + 1..at + 3], ["HOME", "/tmp"]);
        assert!(at < argv.iter().position(|a| a == "--").expect("--"));
    }

    #[test]
    fn only_the_run_dir_is_writable_and_the_network_is_off() {
        let argv = bwrap_args(
            &layout(Network::None, None),
            "bash",
            &["-c".into(), "x".into()],
        );
        assert_eq!(argv[0], "--unshare-all");
        assert!(!argv.contains(&"--share-net".to_string()));
        for flag in ["--die-with-parent", "--new-session"] {
            assert!(argv.contains(&flag.to_string()), "{flag}");
        }
        let run_dir = "/tmp/mn/run1".to_string();
        assert_eq!(
            pairs(&argv, "--bind"),
            vec![
                (run_dir.clone(), run_dir.clone()),
                (run_dir, "/sandbox/job".to_string())
            ]
        );
        assert!(pairs(&argv, "--ro-bind-try").contains(&("/etc".into(), "/etc".into())));
        let tmpfs = argv.iter().position(|a| a == "--tmpfs").expect("tmpfs");
        let bind = argv.iter().position(|a| a == "--bind").expect("bind");
        assert!(
            tmpfs < bind,
            "the run dir must be bound over the private /tmp"
        );
        let sep = argv.iter().position(|a| a == "--").expect("--");
        assert_eq!(&argv[sep + 1..], ["bash", "-c", "x"]);
        assert_eq!(argv[sep - 1], "/tmp/mn/run1/work");
    }

    #[test]
    fn egress_shares_the_network_and_a_rlimit_wraps_the_program() {
        let argv = bwrap_args(&layout(Network::Host, Some(64 << 20)), "python3", &[]);
        assert!(argv.contains(&"--share-net".to_string()));
        let sep = argv.iter().position(|a| a == "--").expect("--");
        assert_eq!(
            &argv[sep + 1..],
            ["prlimit", "--as=67108864", "--", "python3"]
        );
    }
}
