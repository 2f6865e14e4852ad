//! Whether this machine can hold a job before a local `run` starts it: the same plan `serve`
//! would make, on a one-node cluster of this machine (its CPU, memory, disk, GPUs, runtime
//! drivers and host volumes, probed now). Without it a local run ignored resources: a GPU job
//! ran on a GPU-less laptop, a `docker_worker` step ran on the host.

use crate::domain::manifest::Manifest;
use crate::domain::scheduler;
use crate::runtime::cluster::candidates::from_inventory;
use crate::runtime::cluster::dry_run::executor_request;
use crate::runtime::cluster::probe::probe;

/// `Err` with the plan's explanation when the job's executors cannot all be placed here.
/// Blocking: it probes the machine (NVML, bubblewrap, the container engine).
pub fn check(manifest: &Manifest) -> Result<(), String> {
    use crate::runtime::cluster::probe::{declared_gpu_from_env, declared_gpus_from_env};
    // What this machine declares must be readable, or the plan would be made without it.
    declared_gpus_from_env().map_err(|e| e.to_string())?;
    declared_gpu_from_env().map_err(|e| e.to_string())?;
    let request = executor_request(manifest, &manifest.graph_id).map_err(|e| e.to_string())?;
    if request.tasks.is_empty() {
        return Ok(());
    }
    let slots = crate::runtime::executor::ExecutorPools::from_env()
        .ok()
        .and_then(|p| p.capacity("default"))
        .unwrap_or(4);
    let here = from_inventory("this machine", &probe(&crate::config::home_dir(), slots));
    scheduler::plan(&[here], &[], &request)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
