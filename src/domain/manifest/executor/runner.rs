//! Where an executor's steps run: on the host, in the `sandbox` runner (bubblewrap, see
//! [`crate::runtime::executor::sandbox`]) or in a container (`docker_worker`, see
//! [`crate::runtime::executor::container`]). Decided once, here, from the node's settings:
//!
//! - an explicit `runtime_driver` (in `resources` or `config`): `sandbox` or `openshell` run
//!   sandboxed, `docker_worker` in a container, `host_local` on the host;
//! - else `config.runner_module` ending in `.DockerWorker`, or a `config.container` object,
//!   runs in a container; ending in `.OpenShell`, or a `config.sandbox` object, sandboxed;
//! - anything else keeps the host runner (what every executor did before the sandbox existed).
//!
//! Network for a sandboxed step is `config.sandbox.network`: `"none"` (default) or `"host"`
//! (all egress). The sandbox cannot filter per host, so an allow-list there is refused rather
//! than widened to "everything". An OpenShell `policy` file is not read: without
//! `sandbox.network: "host"` such a step gets no network (closed, never silently open).

use serde_json::{Map, Value};

use super::super::error::{Errors, join};
pub use super::container::ContainerSpec;

/// The runner an executor's steps use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Runner {
    /// Directly on this host, contained but not isolated (the default).
    #[default]
    Host,
    /// In a bubblewrap sandbox.
    Sandbox(SandboxSpec),
    /// In a container of `docker` or `podman` (the `docker_worker` driver).
    Container(ContainerSpec),
}

impl Runner {
    /// The name step results report (`sandbox.runner`).
    pub fn name(&self) -> &'static str {
        match self {
            Runner::Host => "host_local",
            Runner::Sandbox(_) => "sandbox",
            Runner::Container(_) => "docker_worker",
        }
    }
}

/// What a sandboxed step may reach and use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    pub network: Network,
    /// `resources.memory_mb` (or `memory`/`memory_gb`), in MiB; `None` = no limit asked.
    pub memory_mb: Option<u64>,
    /// `resources.cpu_cores` (or `cpu`, `cores`, ...) in millicores; `None` = no limit asked.
    pub cpu_millis: Option<u64>,
    /// `sandbox.pids_limit`: processes the step may have at once (a fork bomb stays inside).
    pub pids_limit: u64,
}

impl Default for SandboxSpec {
    fn default() -> Self {
        SandboxSpec {
            network: Network::None,
            memory_mb: None,
            cpu_millis: None,
            pids_limit: DEFAULT_PIDS_LIMIT,
        }
    }
}

/// Processes a sandboxed or container step may have at once unless its settings say.
pub const DEFAULT_PIDS_LIMIT: u64 = 1024;

/// Network access of a sandboxed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Its own empty network namespace (loopback only, nothing reachable).
    #[default]
    None,
    /// The host's network: all egress allowed.
    Host,
}

/// Drivers that select the sandbox runner.
const SANDBOX_DRIVERS: [&str; 2] = ["sandbox", "openshell"];
/// The driver that selects the container runner.
pub const CONTAINER_DRIVER: &str = "docker_worker";

/// Which runner the settings ask for, before their details are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Sandbox,
    Container,
}

/// Reads the runner choice. `resources` is the node's resources object (already checked by
/// the resources validator), found at `resources_path`; errors name the offending field.
pub(super) fn parse(
    config: &Map<String, Value>,
    resources: &Value,
    config_path: &str,
    resources_path: &str,
    errs: &mut Errors,
) -> Runner {
    let sandbox = sandbox_settings(config, config_path, errs);
    match kind(config, resources) {
        Kind::Host => Runner::Host,
        Kind::Sandbox => Runner::Sandbox(SandboxSpec {
            network: sandbox.network.unwrap_or_default(),
            memory_mb: memory_mb(resources, resources_path, errs),
            cpu_millis: cpu_millis(resources),
            pids_limit: sandbox.pids_limit,
        }),
        Kind::Container => {
            let memory_mb = memory_mb(resources, resources_path, errs);
            super::container::parse(config, resources, config_path, memory_mb, errs)
                .map_or(Runner::Host, Runner::Container)
        }
    }
}

/// The runner kind `config` and `resources` select (see the module docs for the order).
fn kind(config: &Map<String, Value>, resources: &Value) -> Kind {
    let explicit = [
        resources.get("runtime_driver"),
        config.get("runtime_driver"),
    ]
    .into_iter()
    .flatten()
    .find_map(Value::as_str)
    .map(|d| d.trim().to_ascii_lowercase());
    if let Some(driver) = explicit {
        return if SANDBOX_DRIVERS.contains(&driver.as_str()) {
            Kind::Sandbox
        } else if driver == CONTAINER_DRIVER {
            Kind::Container
        } else {
            Kind::Host
        };
    }
    let module = config.get("runner_module").and_then(Value::as_str);
    let set = |key: &str| config.get(key).is_some_and(|v| !v.is_null());
    // Runner settings without a driver ask for that runner: running such a step on the host
    // would silently ignore them.
    if module.is_some_and(|m| m.ends_with(".DockerWorker")) || set("container") {
        Kind::Container
    } else if module.is_some_and(|m| m.ends_with(".OpenShell")) || set("sandbox") {
        Kind::Sandbox
    } else {
        Kind::Host
    }
}

/// What `config.sandbox` says.
struct SandboxSettings {
    network: Option<Network>,
    pids_limit: u64,
}

/// The keys `config.sandbox` may hold.
const SANDBOX_SETTINGS: [&str; 2] = ["network", "pids_limit"];

/// `config.sandbox`: `{"network": "none" | "host", "pids_limit": N}`. Checked on every
/// executor, so a typo fails validation even before the executor is switched to the sandbox.
fn sandbox_settings(config: &Map<String, Value>, path: &str, errs: &mut Errors) -> SandboxSettings {
    let at = join(path, "sandbox");
    let mut out = SandboxSettings {
        network: None,
        pids_limit: DEFAULT_PIDS_LIMIT,
    };
    let map = match config.get("sandbox") {
        None | Some(Value::Null) => return out,
        Some(Value::Object(map)) => map,
        Some(other) => {
            errs.push(
                at,
                format!("sandbox must be an object like {{\"network\": \"none\"}}, got {other}"),
            );
            return out;
        }
    };
    for key in map
        .keys()
        .filter(|k| !SANDBOX_SETTINGS.contains(&k.as_str()))
    {
        errs.push(
            join(&at, key),
            format!(
                "unknown sandbox setting {key:?} (known: {})",
                SANDBOX_SETTINGS.join(", ")
            ),
        );
    }
    out.network = network(
        map.get("network"),
        &join(&at, "network"),
        "the sandbox",
        errs,
    );
    out.pids_limit = pids_limit(map.get("pids_limit"), &join(&at, "pids_limit"), errs);
    out
}

/// A runner's `pids_limit`: a positive integer, [`DEFAULT_PIDS_LIMIT`] when absent.
pub(super) fn pids_limit(value: Option<&Value>, path: &str, errs: &mut Errors) -> u64 {
    match value {
        None | Some(Value::Null) => DEFAULT_PIDS_LIMIT,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => n,
            _ => {
                errs.push(
                    path,
                    format!("pids_limit must be a positive integer, got {v}"),
                );
                DEFAULT_PIDS_LIMIT
            }
        },
    }
}

/// The CPU a step may use, in millicores, read like the scheduler reads it; `None` when
/// none was asked. Resource errors are reported where the memory limit is read.
pub(super) fn cpu_millis(resources: &Value) -> Option<u64> {
    crate::domain::scheduler::resources::Demand::parse(resources, "")
        .ok()
        .map(|d| d.cpu_millis)
        .filter(|m| *m > 0)
}

/// A runner's `network` setting: `"none"` or `"host"`; `runner` names it in the refusal of a
/// per-host allow-list (neither runner can filter per host, so it is refused, never widened).
pub(super) fn network(
    value: Option<&Value>,
    path: &str,
    runner: &str,
    errs: &mut Errors,
) -> Option<Network> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "none" => Some(Network::None),
        Some(Value::String(s)) if s == "host" => Some(Network::Host),
        Some(Value::Array(_) | Value::Object(_)) => {
            errs.push(
                path,
                format!(
                    "{runner} cannot enforce a per-host egress allow-list (it can only give a \
                     step all of the host's network or none); use \"host\" to allow all egress \
                     or \"none\""
                ),
            );
            None
        }
        Some(other) => {
            errs.push(
                path,
                format!("network must be \"none\" or \"host\", got {other}"),
            );
            None
        }
    }
}

/// The memory limit in MiB, read like the scheduler reads it (`memory_mb`, `memory: "2Gi"`,
/// `memory_gb`); zero means none asked.
fn memory_mb(resources: &Value, path: &str, errs: &mut Errors) -> Option<u64> {
    match crate::domain::scheduler::resources::Demand::parse(resources, path) {
        Ok(d) if d.memory_mb > 0 => Some(d.memory_mb),
        Ok(_) => None,
        Err(e) => {
            errs.push(e.path, e.message);
            None
        }
    }
}
