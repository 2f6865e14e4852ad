//! Finding a container engine that answers on this node: `MN_DOCKER_BIN` when set (only it),
//! else `docker`, then `podman`, on this process's `PATH`. A CLI is not enough: a `docker`
//! client without a daemon behind it must not count, so each candidate must answer
//! `<bin> info` within [`ANSWER_WITHIN`]. Probed once per process; the node advertises
//! `docker_worker` only when this finds one, and a container step on a node without one fails
//! with the reason (it never runs on the host instead).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long `info` may take before the engine counts as not answering.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// Which engine a CLI drives: they take the same `run` flags, but differ in user mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Docker,
    Podman,
}

/// A working engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub bin: PathBuf,
    pub flavor: Flavor,
    /// Podman running as a non-root user: containers run in the user's own user namespace.
    pub rootless: bool,
}

impl Engine {
    /// The engine's name for messages (`podman`, `docker`).
    pub fn name(&self) -> &'static str {
        match self.flavor {
            Flavor::Docker => "docker",
            Flavor::Podman => "podman",
        }
    }
}

/// The working engine, or why there is none. Probed once per process.
pub fn engine() -> Result<&'static Engine, String> {
    static FOUND: OnceLock<Result<Engine, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let found = find();
            match &found {
                Ok(e) => tracing::info!(bin = %e.bin.display(), engine = e.name(), "container runner available"),
                Err(e) => tracing::info!(error = %e, "the container runner (docker_worker) is unavailable"),
            }
            found
        })
        .as_ref()
        .map_err(|e| {
            format!("the container runner (docker_worker) is unavailable on this node: {e}")
        })
}

fn find() -> Result<Engine, String> {
    if let Some(p) = crate::config::var("MN_DOCKER_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!("MN_DOCKER_BIN={} does not exist", p.display()));
        }
        return check(&p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut why = Vec::new();
    for name in ["docker", "podman"] {
        let Some(bin) = std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
        else {
            continue;
        };
        match check(&bin) {
            Ok(engine) => return Ok(engine),
            Err(e) => why.push(format!("{}: {e}", bin.display())),
        }
    }
    if why.is_empty() {
        Err("neither docker nor podman is installed (or set MN_DOCKER_BIN)".to_string())
    } else {
        Err(why.join("; "))
    }
}

/// Whether `bin` answers `info`, and which engine it is.
fn check(bin: &Path) -> Result<Engine, String> {
    let info = answer(bin, &["info"])?;
    if !info.0 {
        return Err(format!("`info` failed: {}", last_line(&info.1)));
    }
    // `podman --version` says "podman version 4.3.1"; a `docker` that is really podman (the
    // podman-docker shim) says so too, and gets podman's user mapping.
    let version = answer(bin, &["--version"]).map(|(_, text)| text.to_ascii_lowercase())?;
    let flavor = if version.contains("podman") {
        Flavor::Podman
    } else {
        Flavor::Docker
    };
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let rootless = flavor == Flavor::Podman && unsafe { libc::geteuid() } != 0;
    Ok(Engine {
        bin: bin.to_path_buf(),
        flavor,
        rootless,
    })
}

/// Runs `bin args` with [`ANSWER_WITHIN`]; (success, stdout + stderr).
pub fn answer(bin: &Path, args: &[&str]) -> Result<(bool, String), String> {
    answer_within(bin, args, ANSWER_WITHIN)
}

/// Runs `bin args`, killing it after `limit`; (success, stdout + stderr). The pipes are read
/// on their own threads, so a chatty command never stalls on a full pipe.
pub fn answer_within(bin: &Path, args: &[&str], limit: Duration) -> Result<(bool, String), String> {
    use std::io::Read;
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let mut bytes = Vec::new();
                let _ = p.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => {
                std::thread::sleep(Duration::from_millis(25));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{} {}` did not answer within {}s",
                    bin.display(),
                    args.join(" "),
                    limit.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for {}: {e}", bin.display())),
        }
    };
    let mut text = out.join().unwrap_or_default();
    text.push_str(&err.join().unwrap_or_default());
    Ok((status.success(), text))
}

/// The last non-empty line, where CLIs put their error.
pub fn last_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no output")
        .chars()
        .take(300)
        .collect()
}
