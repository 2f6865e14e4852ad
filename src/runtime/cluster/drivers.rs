//! The runtime drivers this machine really offers, probed at start, so an executor that asks
//! for a sandbox never runs on the host because nobody checked:
//! - `host_local`: always;
//! - `openshell` (and its alias `sandbox`): when the sandbox runner works here (bubblewrap
//!   starts a namespaced process; the same probe a sandboxed step relies on).
//!
//! `docker_worker` is offered by no node yet: there is no container runner, and offering it
//! would run container steps on the host. Such steps are never placed (placement is blocked
//! naming the driver) and a local `run` refuses them.

/// The drivers to advertise, `host_local` first.
pub fn probe_drivers() -> Vec<String> {
    let mut out = vec!["host_local".to_string()];
    if crate::runtime::executor::sandbox::probe::bwrap().is_ok() {
        out.extend(["openshell".to_string(), "sandbox".to_string()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_local_always_and_never_docker_without_a_container_runner() {
        let drivers = probe_drivers();
        assert_eq!(drivers.first().map(String::as_str), Some("host_local"));
        assert!(!drivers.iter().any(|d| d == "docker_worker"));
    }
}
