//! Reads a node's inventory off the machine: CPU, memory and disk with sysinfo, NVIDIA GPUs
//! with NVML, plus what the operator declares in `MN_NODE_GPU` (described by
//! `MN_NODE_GPU_MEMORY_MB`, `_VENDOR`, `_MODEL`, `_DRIVER`), `MN_NODE_CAPABILITIES` and
//! `MN_NODE_EXECUTION_PROFILES`. A machine without the NVIDIA driver reports no GPUs; that is
//! not an error.

use std::path::Path;

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use crate::config::{ConfigError, var};
use crate::domain::node::{DeclaredGpu, Gpu, Inventory};

/// What NVML saw: the GPUs and the driver version.
pub fn probe_gpus() -> (Vec<Gpu>, Option<String>) {
    let nvml = match Nvml::init() {
        Ok(n) => n,
        Err(
            NvmlError::LibloadingError(_)
            | NvmlError::LibraryNotFound
            | NvmlError::DriverNotLoaded
            | NvmlError::NoPermission,
        ) => return (vec![], None),
        Err(e) => {
            tracing::warn!(error = %e, "NVML is present but failed to start; reporting no GPUs");
            return (vec![], None);
        }
    };
    let driver = nvml.sys_driver_version().ok();
    let count = nvml.device_count().unwrap_or(0);
    let gpus = (0..count)
        .filter_map(|i| {
            let d = nvml.device_by_index(i).ok()?;
            Some(Gpu {
                index: i,
                uuid: d.uuid().unwrap_or_default(),
                name: d.name().unwrap_or_default(),
                memory_mb: d
                    .memory_info()
                    .map(|m| m.total / (1024 * 1024))
                    .unwrap_or(0),
            })
        })
        .collect();
    (gpus, driver)
}

fn list_var(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `MN_NODE_GPU` as a count; `None` when unset.
pub fn declared_gpus_from_env() -> Result<Option<u32>, ConfigError> {
    var("MN_NODE_GPU")
        .map(|v| {
            v.trim().parse().map_err(|_| ConfigError::NotInteger {
                name: "MN_NODE_GPU",
                value: v,
            })
        })
        .transpose()
}

/// What the declared GPUs are (`MN_NODE_GPU_MEMORY_MB`, `MN_NODE_GPU_VENDOR`,
/// `MN_NODE_GPU_MODEL`, `MN_NODE_GPU_DRIVER`); `None` when none of them is set.
pub fn declared_gpu_from_env() -> Result<Option<DeclaredGpu>, ConfigError> {
    let text = |name: &str| var(name).map(|v| v.trim().to_string());
    let gpu = DeclaredGpu {
        memory_mb: crate::config::u64_var("MN_NODE_GPU_MEMORY_MB", 0)?,
        vendor: text("MN_NODE_GPU_VENDOR").map(|v| v.to_lowercase()),
        model: text("MN_NODE_GPU_MODEL"),
        driver: text("MN_NODE_GPU_DRIVER").map(|v| v.to_lowercase()),
    };
    Ok((gpu != DeclaredGpu::default()).then_some(gpu))
}

/// The node's inventory; `home` is the directory whose disk counts, `slots` the executor
/// concurrency of the node's default pool.
pub fn probe(home: &Path, slots: u32) -> Inventory {
    let memory_mb = sysinfo::System::new()
        .map(|mut s| {
            s.refresh_memory();
            s.total_memory() / (1024 * 1024)
        })
        .unwrap_or(0);
    let cpu_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let disks = sysinfo::Disks::new_with_refreshed_list().ok();
    // The disk holding `home` is the mount point that is the longest prefix of it.
    let home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    let disk_mb = disks
        .iter()
        .flat_map(|d| d.iter())
        .filter(|d| home.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map_or(0, |d| d.available_space() / (1024 * 1024));
    let (gpus, gpu_driver) = probe_gpus();
    Inventory {
        hostname: sysinfo::System::host_name().unwrap_or_default(),
        cpu_cores,
        memory_mb,
        disk_mb,
        gpus,
        gpu_driver,
        // `serve` refuses malformed values at start (`NodeConfig::from_env`); a local run's
        // check says so and carries on without them.
        declared_gpus: declared_gpus_from_env().unwrap_or_else(|e| {
            tracing::warn!("{e}; ignoring it");
            None
        }),
        declared_gpu: declared_gpu_from_env()
            .unwrap_or_else(|e| {
                tracing::warn!("{e}; ignoring it");
                None
            })
            .map(Box::new),
        capabilities: list_var("MN_NODE_CAPABILITIES"),
        execution_profiles: {
            let p = list_var("MN_NODE_EXECUTION_PROFILES");
            if p.is_empty() {
                vec!["host_local".into()]
            } else {
                p
            }
        },
        executor_slots: slots,
        runtime_drivers: super::drivers::probe_drivers(),
        host_volumes: list_var("MN_NODE_HOST_VOLUMES"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probing_this_machine_reports_its_cpu_and_memory_and_never_fails_without_a_gpu() {
        let inv = probe(Path::new("/"), 4);
        assert!(inv.cpu_cores >= 1);
        assert!(inv.memory_mb > 0);
        assert_eq!(inv.executor_slots, 4);
        // Devices are only ever reported together with the driver that runs them.
        if !inv.gpus.is_empty() {
            assert!(inv.gpu_driver.is_some());
        }
        assert!(inv.execution_profiles.contains(&"host_local".to_string()));
    }
}
