//! `mirror-neuron run <bundle>`: validate, submit, run the job in this process, report.
//! Exit 0 completed; 1 failed, cancelled or timed out; 2 invalid bundle; 130 interrupted.
//! A run that stops before its job ends (Ctrl-C, SIGTERM, `--timeout`) hands the job back.

use std::path::PathBuf;
use std::time::Duration;

use super::interrupt::{EXIT_INTERRUPTED, Interrupts, handed_back_note};
use super::output::{print_json, short_json};
use crate::domain::job::JobStatus;
use crate::domain::view::JobView;
use crate::runtime::bundle::{BundleError, load_bundle};
use crate::runtime::hand_back::StopCause;
use crate::runtime::{Backend, local};

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The job bundle folder (manifest.json + payloads/).
    pub bundle: PathBuf,
    /// Show live progress until the job ends (the in-process runtime always runs the job to
    /// its end; this only controls the progress display).
    #[arg(long)]
    pub wait: bool,
    /// Give up after this many seconds (the job is handed back, active, for a serving node).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Print the final job record as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let path = args.bundle.clone();
    let bundle = match tokio::task::spawn_blocking(move || load_bundle(&path)).await? {
        Ok(b) => b,
        Err(BundleError::Invalid(errors)) => {
            for e in errors {
                eprintln!("{e}");
            }
            return Ok(super::validate::EXIT_INVALID);
        }
        Err(e) => {
            eprintln!("bundle: {e}");
            return Ok(super::validate::EXIT_INVALID);
        }
    };
    let manifest = &bundle.manifest;
    let warnings = crate::runtime::executor::config::output_cap_warnings(manifest)
        .into_iter()
        .chain(crate::runtime::executor::config::sandbox_warnings(manifest));
    for w in warnings {
        eprintln!("warning: {w}");
    }
    // Planned like `serve` plans it, on this machine alone: a job that cannot be placed here
    // is refused before it starts, with the scheduler's reason.
    let manifest = bundle.manifest.clone();
    let fit =
        tokio::task::spawn_blocking(move || crate::runtime::cluster::local_fit::check(&manifest))
            .await?;
    if let Err(reason) = fit {
        eprintln!(
            "cannot run {} on this machine: {reason}",
            bundle.manifest.graph_id
        );
        eprintln!(
            "(run it on a cluster that has what it needs: mirror-neuron --target HOST:PORT run ...)"
        );
        return Ok(super::validate::EXIT_INVALID);
    }
    let retention = crate::runtime::history::retention::retention_from_env()?;
    // Every setting the run reads, read now: a malformed one is refused before anything is
    // submitted, not after `submitted job ...`.
    crate::runtime::owner::OwnerConfig::from_env("check")?;
    crate::runtime::executor::ExecutorPools::from_env()?;
    let backend = Backend::open().await?;
    let result = submit_and_run(&backend, &bundle, &args, retention).await;
    backend.close().await;
    result
}

async fn submit_and_run(
    backend: &Backend,
    bundle: &crate::runtime::bundle::Bundle,
    args: &RunArgs,
    retention: Duration,
) -> anyhow::Result<i32> {
    let store = &backend.store;
    // Installed just before the job exists: up to here a signal may simply end the process
    // (nothing to hand back); from here on it must stop the run instead.
    let interrupts = Interrupts::install()?;
    let job_id = local::submit(store, bundle).await?;
    eprintln!("submitted job {job_id}");
    let progress = std::cell::RefCell::new(super::progress::JobProgress::new(
        &job_id,
        args.wait && !args.json,
    ));
    let node = format!("local-{}", std::process::id());
    let report = local::run_job_until(
        store,
        &job_id,
        &node,
        args.timeout.map(Duration::from_secs),
        interrupts.first(),
        |v: &JobView| {
            progress
                .borrow_mut()
                .update(&crate::api::job_json::record(v, &[]))
        },
    )
    .await?;
    if let Some(view) = &report.view {
        progress
            .borrow_mut()
            .finish(&crate::api::job_json::record(view, &[]));
    }
    let handed_back = report.handed_back();
    let Some(view) = report.view else {
        anyhow::bail!("job {job_id} disappeared");
    };
    if retention.is_zero() && view.status.is_some_and(JobStatus::is_terminal) {
        archive_now(store, &job_id).await;
    }
    // The same record `job inspect` and a server's `run --target` print.
    let record = super::jobs::Jobs::Local(store).record(&job_id).await?;
    print_outcome(&record, args.json)?;
    match handed_back {
        Some(StopCause::TimedOut) => {
            eprintln!(
                "timed out after {}s; {}",
                args.timeout.unwrap_or(0),
                handed_back_note(&job_id)
            );
            return Ok(1);
        }
        Some(StopCause::Interrupted) => {
            eprintln!("interrupted; {}", handed_back_note(&job_id));
            return Ok(EXIT_INTERRUPTED);
        }
        None => {}
    }
    Ok(if view.status == Some(JobStatus::Completed) {
        0
    } else {
        1
    })
}

/// What `run` prints at the end, locally and with `--target`: the job record as JSON, or its
/// id, status and result.
pub(super) fn print_outcome(job: &serde_json::Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(job);
    }
    let text = |k: &str| {
        job.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("-")
    };
    println!("job {}  {}", text("job_id"), text("status"));
    if let Some(result) = job.get("result").filter(|r| !r.is_null()) {
        println!("result: {}", short_json(result, 2000));
    }
    Ok(())
}

/// `MN_JOB_HISTORY_RETENTION=0`: archives the finished job's history before `run` exits (a
/// local run has no leader sweeping for it). A failure leaves the hot history in place, so it
/// is a warning, never a failed run.
async fn archive_now(store: &crate::store::Store, job_id: &str) {
    use crate::runtime::history::{ArchiveOutcome, archive_job};
    let blobs = crate::runtime::blobs::BlobStore::from_env();
    for _ in 0..2 {
        match archive_job(store, &blobs, job_id, crate::runtime::clock::now_ms()).await {
            Ok(ArchiveOutcome::ProjectionBehind { .. }) => {
                if let Err(e) = super::job::catch_up(store).await {
                    eprintln!("warning: history of job {job_id} not archived: {e:#}");
                    return;
                }
            }
            Ok(ArchiveOutcome::Archived(r)) => {
                tracing::info!(job_id, sha256 = %r.sha256, entries = r.entries, "history archived");
                return;
            }
            Ok(other) => {
                eprintln!("warning: history of job {job_id} not archived: {other:?}");
                return;
            }
            Err(e) => {
                eprintln!("warning: history of job {job_id} not archived: {e}");
                return;
            }
        }
    }
    eprintln!("warning: history of job {job_id} not archived: its views did not catch up");
}
