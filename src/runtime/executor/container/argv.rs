//! The `<engine> run` command line for one step. Pure: the same inputs always give the same
//! argv, so the isolation it asks for is checked by unit tests without an engine.

use std::path::Path;

use crate::domain::manifest::executor::Network;
use crate::domain::manifest::run_paths::CONTAINER_JOB_DIR;
use crate::runtime::executor::ArtifactDirs;

/// Label on every step container, so an operator (or a sweep) can find them.
pub const STEP_LABEL: &str = "io.mirror-neuron.step=1";

/// RLIMIT_NPROC above the pids limit: it counts every process and thread of the step's user
/// on the host (the runner's own, when the step runs as the runner's user).
pub const NPROC_HEADROOM: u64 = 4096;

/// Whose files the step writes in the run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    /// `--user uid:gid`: a rootful engine (docker's daemon, podman as root) runs the step as
    /// the runner's own user, so what it writes in `/mn/job` is the runner's.
    Id(u32, u32),
    /// `--userns keep-id`: rootless podman maps the runner's uid to itself in the container.
    KeepId,
}

/// What the container is built around.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// Unique per step, so a timeout or cancel can kill and remove exactly this container.
    pub name: &'a str,
    pub image: &'a str,
    /// The staged run directory, mounted read-write at `/mn/job`: the only writable place
    /// besides the private `/tmp`.
    pub run_dir: &'a Path,
    /// The working directory inside the container (`/mn/job/...`).
    pub workdir: &'a str,
    pub network: Network,
    pub memory_mb: Option<u64>,
    pub cpu_millis: Option<u64>,
    pub pids_limit: u64,
    /// `RLIMIT_NOFILE` for the step (soft = hard).
    pub nofile: u64,
    pub user: User,
    /// The step's environment (see [`super::env_file`]): values never appear on a command
    /// line that `ps` shows.
    pub env_file: &'a Path,
    /// The step's artifact folders, mounted at [`ARTIFACTS_IN_DIR`] (read-only) and
    /// [`ARTIFACTS_OUT_DIR`].
    pub artifacts: Option<&'a ArtifactDirs>,
}

/// Where the container sees the inbound artifacts (`MN_ARTIFACTS_IN`).
pub const ARTIFACTS_IN_DIR: &str = "/mn/artifacts/in";
/// Where the container's published files go (`MN_ARTIFACT_DIR`).
pub const ARTIFACTS_OUT_DIR: &str = "/mn/artifacts/out";

/// `run` arguments for the step `program args` in `layout.image`.
pub fn run_args(layout: &Layout<'_>, program: &str, args: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| argv.extend(items.iter().map(|s| s.to_string()));
    // Removed when it exits; never pulled here (a missing image was checked, and pulled only
    // when the manifest asked, before this runs).
    push(&["run", "--rm", "--pull", "never", "--name", layout.name]);
    push(&["--label", STEP_LABEL]);
    let network = match layout.network {
        Network::None => "none",
        Network::Host => "host",
    };
    push(&["--network", network]);
    // Read-only image, a private /tmp, no capabilities, no privilege gain through setuid.
    push(&["--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev"]);
    push(&["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]);
    let pids = layout.pids_limit.to_string();
    push(&["--pids-limit", &pids]);
    // Explicit rlimits: an engine's defaults (podman asks for a million open files) can be
    // above what this host lets the runner grant, and the step then fails to start. The pids
    // cgroup is the real process limit; RLIMIT_NPROC (counted per user, host-wide, threads
    // included) is only a ceiling above it.
    let nofile = format!("nofile={0}:{0}", layout.nofile);
    let nproc = format!("nproc={0}:{0}", layout.pids_limit + NPROC_HEADROOM);
    push(&["--ulimit", &nofile, "--ulimit", &nproc]);
    if let Some(mb) = layout.memory_mb {
        // Swap equal to memory: no swap, so exceeding the limit is an OOM kill, not a crawl.
        let limit = format!("{mb}m");
        push(&["--memory", &limit, "--memory-swap", &limit]);
    }
    if let Some(millis) = layout.cpu_millis {
        let cpus = format!("{}.{:03}", millis / 1000, millis % 1000);
        push(&["--cpus", &cpus]);
    }
    match layout.user {
        User::Id(uid, gid) => {
            let user = format!("{uid}:{gid}");
            push(&["--user", &user]);
        }
        User::KeepId => push(&["--userns", "keep-id"]),
    }
    let mount = format!(
        "type=bind,source={},target={CONTAINER_JOB_DIR}",
        layout.run_dir.display()
    );
    push(&["--mount", &mount, "--workdir", layout.workdir]);
    if let Some(dirs) = layout.artifacts {
        let input = format!(
            "type=bind,source={},target={ARTIFACTS_IN_DIR},readonly",
            dirs.input.display()
        );
        let output = format!(
            "type=bind,source={},target={ARTIFACTS_OUT_DIR}",
            dirs.output.display()
        );
        push(&["--mount", &input, "--mount", &output]);
    }
    let env_file = layout.env_file.display().to_string();
    push(&["--env-file", &env_file]);
    push(&[layout.image, program]);
    argv.extend(args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(network: Network) -> Layout<'static> {
        Layout {
            name: "mn-step-1",
            image: "python:3.12-slim",
            run_dir: Path::new("/tmp/mn/run1"),
            workdir: "/mn/job/worker",
            network,
            memory_mb: Some(64),
            cpu_millis: Some(1500),
            pids_limit: 128,
            nofile: 1024,
            user: User::Id(1000, 1000),
            env_file: Path::new("/tmp/mn/run1.env"),
            artifacts: None,
        }
    }

    fn value(argv: &[String], flag: &str) -> Vec<String> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    }

    #[test]
    fn artifact_folders_are_mounted_inbound_read_only() {
        let dirs = ArtifactDirs {
            input: "/art/j/a-1/in".into(),
            output: "/art/j/a-1/out".into(),
        };
        let mut with = layout(Network::None);
        with.artifacts = Some(&dirs);
        let argv = run_args(&with, "true", &[]);
        assert_eq!(
            value(&argv, "--mount")[1..],
            [
                "type=bind,source=/art/j/a-1/in,target=/mn/artifacts/in,readonly",
                "type=bind,source=/art/j/a-1/out,target=/mn/artifacts/out"
            ]
        );
    }

    #[test]
    fn closed_by_default_and_only_the_run_dir_is_writable() {
        let argv = run_args(&layout(Network::None), "bash", &["-c".into(), "x".into()]);
        assert_eq!(argv[..2], ["run", "--rm"]);
        for flag in ["--read-only", "--rm"] {
            assert!(argv.contains(&flag.to_string()), "{flag}");
        }
        assert_eq!(value(&argv, "--network"), ["none"]);
        assert_eq!(value(&argv, "--pull"), ["never"]);
        assert_eq!(value(&argv, "--name"), ["mn-step-1"]);
        assert_eq!(value(&argv, "--memory"), ["64m"]);
        assert_eq!(value(&argv, "--memory-swap"), ["64m"]);
        assert_eq!(value(&argv, "--cpus"), ["1.500"]);
        assert_eq!(value(&argv, "--pids-limit"), ["128"]);
        assert_eq!(
            value(&argv, "--ulimit"),
            ["nofile=1024:1024", "nproc=4224:4224"]
        );
        assert_eq!(value(&argv, "--user"), ["1000:1000"]);
        assert_eq!(
            value(&argv, "--mount"),
            ["type=bind,source=/tmp/mn/run1,target=/mn/job"]
        );
        assert_eq!(value(&argv, "--workdir"), ["/mn/job/worker"]);
        // Values go through the env file, never on the command line.
        assert_eq!(value(&argv, "--env-file"), ["/tmp/mn/run1.env"]);
        assert!(value(&argv, "--env").is_empty());
        let image = argv
            .iter()
            .position(|a| a == "python:3.12-slim")
            .expect("image");
        assert_eq!(argv[image + 1..], ["bash", "-c", "x"]);
    }

    #[test]
    fn egress_and_rootless_user_mapping() {
        let mut l = layout(Network::Host);
        l.user = User::KeepId;
        l.memory_mb = None;
        l.cpu_millis = None;
        let argv = run_args(&l, "true", &[]);
        assert_eq!(value(&argv, "--network"), ["host"]);
        assert_eq!(value(&argv, "--userns"), ["keep-id"]);
        assert!(value(&argv, "--user").is_empty());
        assert!(value(&argv, "--memory").is_empty() && value(&argv, "--cpus").is_empty());
    }
}
