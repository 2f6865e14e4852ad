//! What an executor learns about its allocation (core-spec 7.6): the scheduler decided which
//! resources and devices a step may use, and the process can only honour that if it is told.
//! Set after the manifest's own `environment`, so a bundle cannot claim devices it was not
//! given.

use crate::domain::scheduler::Allocation;

/// The variables for `alloc`: `MN_ALLOCATION_JSON` (the whole allocation),
/// `MN_ALLOCATED_DEVICE_IDS`, `MN_PORT_<LABEL>` per port, and, when GPUs were allocated,
/// `CUDA_VISIBLE_DEVICES` / `NVIDIA_VISIBLE_DEVICES` listing `gpus` (UUIDs or indexes, both
/// of which CUDA accepts). Without GPUs neither is set: the child's environment starts empty.
pub fn allocation_env(alloc: &Allocation, gpus: &[String]) -> Vec<(String, String)> {
    let mut env = vec![(
        "MN_ALLOCATION_JSON".to_string(),
        serde_json::to_string(alloc).unwrap_or_default(),
    )];
    if !alloc.device_ids.is_empty() {
        env.push((
            "MN_ALLOCATED_DEVICE_IDS".to_string(),
            alloc.device_ids.join(","),
        ));
    }
    if !gpus.is_empty() {
        let list = gpus.join(",");
        env.push(("CUDA_VISIBLE_DEVICES".to_string(), list.clone()));
        env.push(("NVIDIA_VISIBLE_DEVICES".to_string(), list));
    }
    for p in &alloc.ports {
        env.push((
            format!("MN_PORT_{}", env_suffix(&p.label)),
            p.port.to_string(),
        ));
    }
    env
}

/// Upper-cased, anything but ASCII letters and digits as `_` (`http-admin` → `HTTP_ADMIN`).
fn env_suffix(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::scheduler::PlannedPort;

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn gpus_become_visible_devices_and_the_allocation_travels_whole() {
        let alloc = Allocation {
            job_id: "j".into(),
            agent_id: "w".into(),
            node: "gpu-box".into(),
            cpu_millis: 500,
            gpus: 2,
            device_ids: vec!["GPU-a".into(), "GPU-b".into()],
            ports: vec![PlannedPort {
                label: "http-admin".into(),
                port: 8080,
                protocol: "tcp".into(),
            }],
            ..Allocation::default()
        };
        let env = allocation_env(&alloc, &alloc.device_ids);
        let json: Allocation =
            serde_json::from_str(get(&env, "MN_ALLOCATION_JSON").unwrap()).unwrap();
        assert_eq!(json, alloc);
        assert_eq!(get(&env, "CUDA_VISIBLE_DEVICES"), Some("GPU-a,GPU-b"));
        assert_eq!(get(&env, "NVIDIA_VISIBLE_DEVICES"), Some("GPU-a,GPU-b"));
        assert_eq!(get(&env, "MN_ALLOCATED_DEVICE_IDS"), Some("GPU-a,GPU-b"));
        assert_eq!(get(&env, "MN_PORT_HTTP_ADMIN"), Some("8080"));
    }

    #[test]
    fn without_gpus_nothing_claims_devices() {
        let alloc = Allocation {
            agent_id: "w".into(),
            node: "n".into(),
            ..Allocation::default()
        };
        let env = allocation_env(&alloc, &[]);
        assert!(get(&env, "MN_ALLOCATION_JSON").is_some());
        assert_eq!(get(&env, "CUDA_VISIBLE_DEVICES"), None);
        assert_eq!(get(&env, "MN_ALLOCATED_DEVICE_IDS"), None);
    }
}
