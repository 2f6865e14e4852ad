//! The settings of a container (`docker_worker`) executor: the image its steps run in and
//! what they may use there.
//!
//! - `image` (the execution profile's name for it; `from` is the original's alias): required,
//!   a plain image reference, unless the executor names an execution profile, whose `image`
//!   then applies when the step runs (see `runtime::executor::profile`). A reference starting
//!   with `-` or holding spaces is refused: it would be read by the engine as a flag.
//! - `container.network`: `"none"` (default) or `"host"`, as for the sandbox.
//! - `container.pids_limit`: processes the step may have at once (default
//!   [`DEFAULT_PIDS_LIMIT`](super::runner::DEFAULT_PIDS_LIMIT), so a fork bomb stays inside
//!   its container).
//! - `container.pull` (or `pull`): pull a missing image. Off by default: a step must not
//!   silently download and run code its node was not given.
//! - memory and CPU come from the node's `resources` (`memory_mb`, `cpu_cores`, ...).

use serde_json::{Map, Value};

use super::super::error::{Errors, join};
use super::runner::{Network, cpu_millis, network, pids_limit};

/// What a container step runs in and may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// `None`: none in the config, but the executor names an execution profile that is to
    /// give it (the runner refuses the step when it does not).
    pub image: Option<String>,
    pub network: Network,
    /// `resources.memory_mb` (or `memory`/`memory_gb`), in MiB; `None` = no limit asked.
    pub memory_mb: Option<u64>,
    /// `resources.cpu_cores` (or `cpu`, `cores`, ...) in millicores; `None` = no limit asked.
    pub cpu_millis: Option<u64>,
    pub pids_limit: u64,
    /// Pull the image when the node does not have it.
    pub pull: bool,
}

const SETTINGS: [&str; 3] = ["network", "pids_limit", "pull"];

/// Reads a container executor's settings; `None` (with errors pushed) when they are unusable.
pub(super) fn parse(
    config: &Map<String, Value>,
    resources: &Value,
    path: &str,
    memory_mb: Option<u64>,
    errs: &mut Errors,
) -> Option<ContainerSpec> {
    let before = errs.len();
    let image = image(config, path, errs);
    let at = join(path, "container");
    let empty = Map::new();
    let settings = match config.get("container") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(other) => {
            errs.push(
                &at,
                format!("container must be an object like {{\"network\": \"none\"}}, got {other}"),
            );
            &empty
        }
    };
    for key in settings.keys().filter(|k| !SETTINGS.contains(&k.as_str())) {
        errs.push(
            join(&at, key),
            format!(
                "unknown container setting {key:?} (known: {})",
                SETTINGS.join(", ")
            ),
        );
    }
    let network = network(
        settings.get("network"),
        &join(&at, "network"),
        "the container runner",
        errs,
    )
    .unwrap_or_default();
    let pids_limit = pids_limit(settings.get("pids_limit"), &join(&at, "pids_limit"), errs);
    let pull = flag(settings, "pull", &at, errs) || flag(config, "pull", path, errs);
    let cpu_millis = cpu_millis(resources);
    (errs.len() == before).then_some(ContainerSpec {
        image,
        network,
        memory_mb,
        cpu_millis,
        pids_limit,
        pull,
    })
}

/// The execution profile an executor names (`execution_profile`, else `profile`).
pub fn profile_named(config: &Map<String, Value>) -> Option<&str> {
    ["execution_profile", "profile"]
        .iter()
        .find_map(|k| config.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `image`, else `from`; required unless an execution profile is named (it may give one).
fn image(config: &Map<String, Value>, path: &str, errs: &mut Errors) -> Option<String> {
    let (key, value) = ["image", "from"]
        .into_iter()
        .find_map(|k| config.get(k).filter(|v| !v.is_null()).map(|v| (k, v)))
        .or_else(|| {
            if profile_named(config).is_none() {
                errs.push(
                    join(path, "image"),
                    "a docker_worker executor needs the image its steps run in: set image \
                     (e.g. \"python:3.12-slim\"), or name an execution profile that sets it",
                );
            }
            None
        })?;
    let at = join(path, key);
    match value.as_str().map(str::trim) {
        Some(s) if valid_image(s) => Some(s.to_string()),
        Some(s) => {
            errs.push(
                at,
                format!(
                    "{key} {s:?} is not an image reference (letters, digits and ._/:@- only, \
                     not starting with '-')"
                ),
            );
            None
        }
        None => {
            errs.push(at, format!("{key} must be a string, got {value}"));
            None
        }
    }
}

/// A reference the engine cannot mistake for a flag or split into several arguments.
fn valid_image(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.len() <= 512
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:@-".contains(c))
}

fn flag(map: &Map<String, Value>, key: &str, path: &str, errs: &mut Errors) -> bool {
    match map.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errs.push(
                join(path, key),
                format!("{key} must be true or false, got {other}"),
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::manifest::executor::runner::DEFAULT_PIDS_LIMIT;
    use serde_json::json;

    fn parsed(config: Value, resources: Value) -> Result<ContainerSpec, Vec<String>> {
        let mut errs = Errors::default();
        let map = config.as_object().cloned().unwrap_or_default();
        let spec = parse(&map, &resources, "nodes[0].config", Some(64), &mut errs);
        match spec {
            Some(s) if errs.is_empty() => Ok(s),
            _ => Err(errs
                .into_vec()
                .into_iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect()),
        }
    }

    #[test]
    fn defaults_are_closed() {
        let spec = parsed(
            json!({"image": "python:3.12-slim"}),
            json!({"cpu_cores": 0.5}),
        )
        .expect("valid");
        assert_eq!(spec.image.as_deref(), Some("python:3.12-slim"));
        assert_eq!(spec.network, Network::None);
        assert_eq!(spec.pids_limit, DEFAULT_PIDS_LIMIT);
        assert_eq!(spec.cpu_millis, Some(500));
        assert_eq!(spec.memory_mb, Some(64));
        assert!(!spec.pull);
    }

    #[test]
    fn missing_or_flag_like_images_are_refused_by_path() {
        let e = parsed(json!({}), json!({})).expect_err("no image");
        assert!(e[0].starts_with("nodes[0].config.image: "), "{e:?}");
        let e = parsed(json!({"image": "--privileged"}), json!({})).expect_err("flag");
        assert!(e[0].starts_with("nodes[0].config.image: "), "{e:?}");
        let e = parsed(json!({"from": 3}), json!({})).expect_err("not a string");
        assert!(e[0].starts_with("nodes[0].config.from: "), "{e:?}");
        // A named execution profile may give the image when the step runs.
        let spec = parsed(json!({"execution_profile": "py"}), json!({})).expect("deferred");
        assert_eq!(spec.image, None);
    }

    #[test]
    fn container_settings_are_checked() {
        let spec = parsed(
            json!({"image": "x", "container": {"network": "host", "pids_limit": 64, "pull": true}}),
            json!({}),
        )
        .expect("valid");
        assert_eq!(
            (spec.network, spec.pids_limit, spec.pull),
            (Network::Host, 64, true)
        );
        let e = parsed(
            json!({"image": "x", "container": {"network": ["example.com"], "pids": 1}}),
            json!({}),
        )
        .expect_err("bad");
        assert!(
            e.iter()
                .any(|m| m.starts_with("nodes[0].config.container.pids: unknown")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("nodes[0].config.container.network: ")),
            "{e:?}"
        );
    }
}
