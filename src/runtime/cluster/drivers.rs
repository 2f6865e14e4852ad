//! The runtime drivers this machine really offers, probed at start, so an executor that asks
//! for a sandbox or a container never runs on the host because nobody checked:
//! - `host_local`: always;
//! - `openshell` (and its alias `sandbox`): when the sandbox runner works here (bubblewrap
//!   starts a namespaced process; the same probe a sandboxed step relies on);
//! - `docker_worker`: when a container engine answers here (`MN_DOCKER_BIN`, else `docker`
//!   or `podman`; a CLI without a working daemon does not count). Steps of such executors
//!   are otherwise never placed (placement is blocked naming the driver), and a local `run`
//!   refuses them.

use crate::domain::manifest::executor::CONTAINER_DRIVER;

/// The drivers to advertise, `host_local` first.
pub fn probe_drivers() -> Vec<String> {
    let mut out = vec!["host_local".to_string()];
    if crate::runtime::executor::sandbox::probe::bwrap().is_ok() {
        out.extend(["openshell".to_string(), "sandbox".to_string()]);
    }
    if crate::runtime::executor::container::probe::engine().is_ok() {
        out.push(CONTAINER_DRIVER.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_local_always_and_docker_only_with_a_working_engine() {
        let drivers = probe_drivers();
        assert_eq!(drivers.first().map(String::as_str), Some("host_local"));
        let engine = crate::runtime::executor::container::probe::engine();
        assert_eq!(
            drivers.iter().any(|d| d == CONTAINER_DRIVER),
            engine.is_ok(),
            "{engine:?}"
        );
    }
}
