//! The container runner (`docker_worker`): a step of a container executor (see
//! [`crate::domain::manifest::executor::ContainerSpec`]) runs in its `image` with `docker` or
//! `podman`, with the same staging contract as the other runners: the staged run directory
//! is mounted at `/mn/job` and is the working directory, the `MIRROR_NEURON_*` paths and the
//! command's placeholders point into it, and the result is read back from stdout and the
//! files the step leaves there.
//!
//! What a step gets: a read-only image with a private `/tmp`, no network unless the executor
//! allows all egress, no capabilities, a pids limit, and the memory and CPU of its
//! `resources`; it runs as the runner's user so its files in `/mn/job` are the runner's.
//!
//! Like the sandbox it wraps the [`Prepared`] command (it becomes `<engine> run ... image
//! program args`) before it goes to the containment supervisor, so timeouts and cancels stop
//! the CLI as they stop any step; [`cleanup`] then removes the container itself, which the
//! engine would otherwise keep running.
//!
//! - [`argv`]: the `run` command line (pure);
//! - [`probe`]: finding an engine that answers (`MN_DOCKER_BIN`, `docker`, `podman`);
//! - [`image`]: the image must be on the node (pulled only when asked);
//! - [`cleanup`]: the container never outlives its step;
//! - [`env_file`]: the step's environment, off the command line and out of the CLI's.

pub mod argv;
pub mod cleanup;
pub mod env_file;
pub mod image;
pub mod probe;

use std::path::Path;

use super::command::Prepared;
use super::process::Termination;
use crate::domain::manifest::executor::ContainerSpec;
use crate::domain::manifest::run_paths::CONTAINER_JOB_DIR;
use crate::runtime::containment::Mode;
use argv::{Layout, User};
use cleanup::ContainerGuard;
use env_file::EnvFile;

/// Host variables the step gets only when the manifest sets or passes them: they describe
/// the host (its `PATH`, its home, its temp dir), not the image.
const HOST_ONLY: [&str; 3] = ["PATH", "HOME", "TMPDIR"];
/// What the engine's CLI gets from the host, and nothing else (see [`env_file`] for why the
/// step's variables stay out of it): where its tools are, where the daemon is, rootless
/// podman's runtime and config dirs.
const ENGINE_ENV: [&str; 9] = [
    "PATH",
    "HOME",
    "LANG",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "CONTAINER_HOST",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
];
/// `PATH` for the CLI when the host has none.
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A step ready to run in a container.
#[derive(Debug)]
pub struct Contained {
    pub prepared: Prepared,
    /// Removes the container if the step does not end on its own.
    pub guard: ContainerGuard,
    /// The step's environment; removed after the step.
    pub env_file: EnvFile,
    /// The limit asked, in MiB, for the failure message.
    pub memory_mb: Option<u64>,
}

/// Wraps `prepared` (whose working directory lies in `run_dir`) to run in `spec.image`.
/// `explicit` says whether the manifest set or passed a variable (so a `HOST_ONLY` name is
/// forwarded). Blocking (probes the engine once, checks the image): call from
/// `spawn_blocking`.
pub fn wrap(
    prepared: Prepared,
    spec: &ContainerSpec,
    run_dir: &Path,
    artifacts: Option<&super::ArtifactDirs>,
    step: &str,
    explicit: &dyn Fn(&str) -> bool,
) -> Result<Contained, String> {
    let engine = probe::engine()?;
    let image = spec.image.as_deref().ok_or_else(|| {
        "no image to run the step in (neither config.image nor its execution profile sets one)"
            .to_string()
    })?;
    image::ensure(engine, image, spec.pull)?;
    let host_dir = run_dir.display().to_string();
    // `--mount` is comma-separated key=value pairs; a run dir with a comma would be misread.
    if host_dir.contains(',') {
        return Err(format!(
            "the run directory {host_dir} has a comma, which the container engine cannot mount \
             (set MN_TEMP_DIR to a plain path)"
        ));
    }
    // Paths handed to the step (placeholders, MIRROR_NEURON_*) name the run dir; inside the
    // container it is /mn/job. The run dir's name is unique (a uuid), so replacing it
    // cannot touch anything else.
    let mut moves = vec![(host_dir.clone(), CONTAINER_JOB_DIR.to_string())];
    if let Some(dirs) = artifacts {
        for (host, target) in [
            (&dirs.input, argv::ARTIFACTS_IN_DIR),
            (&dirs.output, argv::ARTIFACTS_OUT_DIR),
        ] {
            let host = host.display().to_string();
            if host.contains(',') {
                return Err(format!(
                    "the artifact folder {host} has a comma, which the container engine cannot \
                     mount (set MN_JOB_ARTIFACT_ROOT to a plain path)"
                ));
            }
            moves.push((host, target.to_string()));
        }
    }
    // The artifact folders' names hold a uuid too: replacing them touches nothing else.
    let inside = |text: &str| {
        moves.iter().fold(text.to_string(), |t, (host, target)| {
            t.replace(host, target)
        })
    };
    let workdir = match prepared.cwd.strip_prefix(run_dir) {
        Ok(rel) if rel.as_os_str().is_empty() => CONTAINER_JOB_DIR.to_string(),
        Ok(rel) => format!("{CONTAINER_JOB_DIR}/{}", rel.display()),
        Err(_) => {
            return Err(format!(
                "the working directory {} is outside the run directory",
                prepared.cwd.display()
            ));
        }
    };
    let mut step_env: Vec<(String, String)> = prepared
        .env
        .iter()
        .filter(|(k, _)| !HOST_ONLY.contains(&k.as_str()) || explicit(k))
        .map(|(k, v)| (k.clone(), inside(v)))
        .collect();
    if !step_env.iter().any(|(k, _)| k == "HOME") {
        // The host's home is not there; tools that write under $HOME get the private /tmp.
        step_env.push(("HOME".to_string(), "/tmp".to_string()));
    }
    let env_file = EnvFile::write(run_dir, &step_env)?;
    let mut cli_env: Vec<(String, String)> = ENGINE_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    if !cli_env.iter().any(|(k, _)| k == "PATH") {
        cli_env.push(("PATH".to_string(), FALLBACK_PATH.to_string()));
    }
    let name = container_name(step);
    // SAFETY: getuid(2) and getgid(2) have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let layout = Layout {
        name: &name,
        image,
        run_dir,
        workdir: &workdir,
        network: spec.network,
        memory_mb: spec.memory_mb,
        cpu_millis: spec.cpu_millis,
        pids_limit: spec.pids_limit,
        nofile: nofile_limit(),
        user: if engine.rootless {
            User::KeepId
        } else {
            User::Id(uid, gid)
        },
        env_file: env_file.path(),
        artifacts,
    };
    let args: Vec<String> = prepared.args.iter().map(|a| inside(a)).collect();
    let args = argv::run_args(&layout, &inside(&prepared.program), &args);
    Ok(Contained {
        prepared: Prepared {
            program: engine.bin.display().to_string(),
            args,
            env: cli_env,
            cwd: prepared.cwd,
            join_cgroups: Vec::new(),
            // The engine isolates the step. Around its CLI, a subreaper that keeps the
            // capabilities rootful podman needs (in a pid or user namespace, or without
            // CAP_SYS_ADMIN, podman takes itself for rootless and drops the limits). It
            // still ends the CLI and its helpers with the step; the guard removes the
            // container.
            containment: Some(Mode::EngineCli),
        },
        guard: ContainerGuard::new(engine.bin.clone(), name),
        env_file,
        memory_mb: spec.memory_mb,
    })
}

/// This process's own hard `RLIMIT_NOFILE` (capped at the usual engine default): a limit
/// the runner can always grant, where an engine default above it fails the step at start.
fn nofile_limit() -> u64 {
    const ENGINE_DEFAULT: u64 = 1_048_576;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we pass and touches nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_max.min(ENGINE_DEFAULT)
}

/// `mn-<step>-<unique>`, within the characters engines accept in names.
fn container_name(step: &str) -> String {
    let step: String = step
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(80)
        .collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("mn-{}-{}", step.trim_matches('-'), &id[..12])
}

impl Contained {
    /// Whether the engine killed the step for its memory limit: the engines report an
    /// OOM-killed container as exit 137 (SIGKILL), and `--rm` leaves nothing to inspect, so
    /// this is read from the exit with the limit in force (a timeout is told apart by the
    /// runner, which sent it).
    pub fn memory_exceeded(&self, termination: Termination) -> Option<String> {
        let mb = self.memory_mb?;
        matches!(
            termination,
            Termination::Exited(137) | Termination::Signaled(9)
        )
        .then(|| {
            format!(
                "the step was killed (SIGKILL, exit 137) in its container, which has a memory \
                 limit of {mb} MB (resources.memory_mb): it most likely exceeded that limit"
            )
        })
    }

    /// The engine's own failure: docker and podman both exit 125 when they could not run
    /// the container at all (a bad flag for this engine version, a limit the host refuses),
    /// which is not the step's doing.
    pub fn engine_error(&self, termination: Termination, stderr: &[u8]) -> Option<String> {
        (termination == Termination::Exited(125)).then(|| {
            format!(
                "the container engine ({}) could not run the step (exit 125): {}",
                self.prepared.program,
                probe::last_line(&String::from_utf8_lossy(stderr))
            )
        })
    }

    /// After the step: a step that ended on its own was removed by `--rm`; any other end
    /// (timeout, a signal to the CLI) removes the container now. Blocking.
    pub fn finish(mut self, termination: Termination) {
        match termination {
            Termination::Exited(_) => self.guard.disarm(),
            Termination::Signaled(_) | Termination::TimedOut => self.guard.remove(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_unique_and_plain() {
        let a = container_name("host-local-job 1-agent/x");
        let b = container_name("host-local-job 1-agent/x");
        assert_ne!(a, b);
        assert!(a.starts_with("mn-host-local-job-1-agent-x-"), "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
