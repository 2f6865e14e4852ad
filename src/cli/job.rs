//! `mirror-neuron job ...`: list, inspect, agents, events, dead-letters, pause, resume, cancel.

use std::time::Duration;

use clap::Subcommand;

use serde_json::Value;

use super::jobs::{Control, Jobs};
use super::output::{print_agents, print_dead_letters, print_json, print_table, short_json, text};
use crate::domain::job::JobStatus;
use crate::runtime::{Backend, Projectors, wait_projections_caught_up};
use crate::store::{Store, validate_job_id};

#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// List jobs, newest first.
    List {
        /// Only jobs in this status (pending, running, paused, completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// At most this many jobs (0: all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one job.
    Inspect {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a job's agents.
    Agents {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a job's event history.
    Events {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// JSON: an array, or with --follow one object per line.
        #[arg(long)]
        json: bool,
        /// Keep printing new events as they are appended, until the job ends.
        #[arg(long)]
        follow: bool,
    },
    /// Print a job's full event history: seq, time, type, writer epoch, payload summary.
    History {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// One JSON object per event, one per line (JSON Lines).
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a job's state from its history up to a point (default: the end) with the
    /// runtime's own fold: status, agents, queues, in-flight messages, dead letters.
    Replay(super::replay::ReplayArgs),
    /// Write a job's history as JSON lines (one event envelope per line) for `replay --file`.
    Export {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// The file to write (`-` for stdout).
        #[arg(short = 'o', long)]
        output: std::path::PathBuf,
    },
    /// Show a job's dead letters.
    DeadLetters {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pause a running job.
    Pause {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
    },
    /// Resume a paused job.
    Resume {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
    },
    /// Take over an active job whose runtime is gone and run it to its end in this process
    /// (waits for the previous owner's lease to expire).
    Recover {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// Give up waiting for the lease after this many seconds.
        #[arg(long, default_value_t = 120)]
        lease_wait: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Wait for a job to end, showing its progress; exit 0 when it completed, 1 when it
    /// failed, was cancelled or the timeout passed.
    Wait {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// Give up after this many seconds (the job goes on).
        #[arg(long)]
        timeout: Option<u64>,
        /// Print the final job record as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job.
    Cancel {
        /// The job: its id, or any unique prefix of it.
        job_id: String,
        /// Why, recorded with the change.
        #[arg(long, default_value = "cancelled by operator")]
        reason: String,
    },
}

/// A spinner/bar on stderr that hides itself when stderr is not a terminal.
pub fn progress_bar(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(message);
    bar
}

/// Runs a `job` subcommand: against the server at `target`, else on this machine's store.
/// Both go through [`run_on`], so the two print the same thing.
pub async fn run(cmd: JobCmd, target: Option<&str>) -> anyhow::Result<i32> {
    if let JobCmd::Replay(args) = &cmd
        && args.is_offline()
    {
        return super::replay::replay_offline(args);
    }
    if let Some(target) = target {
        if let JobCmd::Recover { .. } = cmd {
            anyhow::bail!(
                "job recover runs a job in this process; run it without --target (a server adopts orphaned jobs by itself)"
            );
        }
        let client = super::remote::connect(target).await?;
        return run_on(&mut Jobs::Remote(Box::new(client)), cmd).await;
    }
    let backend = Backend::open().await?;
    let code = run_local(&backend.store, cmd).await;
    backend.close().await;
    code
}

/// Makes sure the views reflect every appended event (the in-process runtime has no
/// always-on projection workers, so it runs them until the feed is drained).
pub async fn catch_up(store: &Store) -> anyhow::Result<()> {
    if store
        .feed_backlog(crate::runtime::projector::PROJECTION_GROUP)
        .await?
        == 0
    {
        return Ok(());
    }
    let workers = Projectors::start(store, "cli", 1);
    let res = wait_projections_caught_up(store, Duration::from_secs(60)).await;
    workers.stop().await;
    res
}

async fn run_local(store: &Store, cmd: JobCmd) -> anyhow::Result<i32> {
    catch_up(store).await?;
    match cmd {
        JobCmd::Recover {
            job_id,
            lease_wait,
            json,
        } => {
            let job_id = Jobs::Local(store).resolve(&job_id).await?;
            recover(store, &job_id, lease_wait, json).await
        }
        // Nothing projects the views while a local `wait` polls them: run workers meanwhile.
        JobCmd::Wait { .. } => {
            let workers = Projectors::start(store, "cli-wait", 1);
            let code = run_on(&mut Jobs::Local(store), cmd).await;
            workers.stop().await;
            code
        }
        cmd => run_on(&mut Jobs::Local(store), cmd).await,
    }
}

/// The row of the jobs table.
fn job_row(job: &Value) -> Vec<String> {
    ["job_id", "graph_id", "status", "submitted_at", "updated_at"]
        .iter()
        .map(|k| text(job, k))
        .collect()
}

const JOB_HEADERS: [&str; 5] = ["JOB ID", "GRAPH", "STATUS", "SUBMITTED", "UPDATED"];

/// One code path for every `job` verb, whichever side answers.
async fn run_on(jobs: &mut Jobs<'_>, cmd: JobCmd) -> anyhow::Result<i32> {
    match cmd {
        JobCmd::List {
            status,
            limit,
            json,
        } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
                    anyhow::anyhow!("--status must be one of pending, running, paused, completed, failed, cancelled (got {s:?})")
                })?),
            };
            let rows = jobs.list(status, limit).await?;
            if json {
                print_json(&rows)?;
            } else {
                print_table(&JOB_HEADERS, &rows.iter().map(job_row).collect::<Vec<_>>());
            }
        }
        JobCmd::Inspect { job_id, json } => {
            let id = jobs.resolve(&job_id).await?;
            let record = jobs.record(&id).await?;
            if json {
                print_json(&record)?;
            } else {
                print_record(&record);
            }
        }
        JobCmd::Agents { job_id, json } => {
            let id = jobs.resolve(&job_id).await?;
            let record = jobs.record(&id).await?;
            let agents = record
                .get("agents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if json {
                print_json(&agents)?
            } else {
                print_agents(&agents)
            }
        }
        JobCmd::Events {
            job_id,
            json,
            follow,
        } => {
            let id = jobs.resolve(&job_id).await?;
            return super::events::print(jobs, &id, json, follow).await;
        }
        JobCmd::DeadLetters { job_id, json } => {
            let id = jobs.resolve(&job_id).await?;
            let rows = super::events::dead_letters(jobs, &id).await?;
            if json {
                print_json(&rows)?
            } else {
                print_dead_letters(&rows)
            }
        }
        JobCmd::History { job_id, json } => {
            let id = jobs.resolve(&job_id).await?;
            let mut source = jobs.history(&id, 1).await?;
            return super::replay::history(&mut source, json).await;
        }
        JobCmd::Replay(mut args) => {
            let id = jobs.resolve(super::replay::replay_job_id(&args)?).await?;
            args.job_id = Some(id.clone());
            let mut source = jobs.history(&id, 1).await?;
            return super::replay::replay_stored(&mut source, &args).await;
        }
        JobCmd::Export { job_id, output } => {
            let id = jobs.resolve(&job_id).await?;
            let mut source = jobs.history(&id, 1).await?;
            return super::replay::export(&mut source, &output).await;
        }
        JobCmd::Wait {
            job_id,
            timeout,
            json,
        } => {
            let id = jobs.resolve(&job_id).await?;
            return super::wait::wait(jobs, &id, timeout.map(Duration::from_secs), json).await;
        }
        JobCmd::Pause { job_id } => {
            let id = jobs.resolve(&job_id).await?;
            println!("{}", jobs.control(&id, Control::Pause).await?);
        }
        JobCmd::Resume { job_id } => {
            let id = jobs.resolve(&job_id).await?;
            println!("{}", jobs.control(&id, Control::Resume).await?);
        }
        JobCmd::Cancel { job_id, reason } => {
            let id = jobs.resolve(&job_id).await?;
            println!("{}", jobs.control(&id, Control::Cancel { reason }).await?);
        }
        JobCmd::Recover { .. } => {
            anyhow::bail!("job recover runs a job in this process, on this machine's store")
        }
    }
    Ok(0)
}

/// `job inspect` as text: the row, counters, lease, placement, services and result.
pub fn print_record(job: &Value) {
    print_table(&JOB_HEADERS, &[job_row(job)]);
    let c = &job["counters"];
    println!(
        "events: {}  messages: {}  steps: {} ok / {} failed  dead letters: {}",
        job["last_seq"],
        c["messages_sent"],
        c["steps_finished"],
        c["steps_failed"],
        c["dead_letters"]
    );
    if let Some(owner) = job.get("lease_owner").and_then(Value::as_str) {
        println!("lease: {owner} (epoch {})", job["lease_epoch"]);
    }
    if let Some(reason) = job.get("placement_blocked").and_then(Value::as_str) {
        println!("placement blocked: {reason}");
    }
    print_service_report(job.get("result"));
    if let Some(result) = job.get("result").filter(|r| !r.is_null()) {
        println!("result: {}", short_json(result, 400));
    }
    for s in job
        .get("services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "service: {} {} on {}",
            text(s, "name"),
            text(s, "status"),
            s.get("node").and_then(Value::as_str).unwrap_or("any node")
        );
    }
}

fn not_found(job_id: &str) -> anyhow::Error {
    anyhow::anyhow!("job {job_id} was not found")
}

async fn recover(store: &Store, job_id: &str, lease_wait: u64, json: bool) -> anyhow::Result<i32> {
    use crate::runtime::local;
    use crate::runtime::owner::OwnerExit;
    validate_job_id(job_id)?;
    let node = format!("recover-{}", std::process::id());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(lease_wait);
    // One signal for the whole command: it ends the run in progress, which hands the job back.
    let interrupt = super::interrupt::Interrupts::install()?.first();
    let mut interrupt = std::pin::pin!(interrupt);
    loop {
        let report =
            local::run_job_until(store, job_id, &node, None, interrupt.as_mut(), |_| {}).await?;
        // The interrupt has fired and must not be awaited again: no further attempt.
        if report.interrupted && !matches!(report.exit, OwnerExit::Finished(_)) {
            match report.handed_back() {
                Some(_) => eprintln!(
                    "interrupted; {}",
                    super::interrupt::handed_back_note(job_id)
                ),
                None => eprintln!("interrupted"),
            }
            return Ok(super::interrupt::EXIT_INTERRUPTED);
        }
        match report.exit {
            OwnerExit::NotFound => return Err(not_found(job_id)),
            OwnerExit::NotOwner { holder } if tokio::time::Instant::now() < deadline => {
                tracing::info!(?holder, "job lease is held; waiting for it to expire");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            OwnerExit::NotOwner { holder } => {
                anyhow::bail!(
                    "job {job_id} is owned by {} and its lease did not expire",
                    holder.unwrap_or_else(|| "another runtime".into())
                )
            }
            OwnerExit::Finished(_) | OwnerExit::Stopped => {
                let view = report.view.ok_or_else(|| not_found(job_id))?;
                let record = Jobs::Local(store).record(job_id).await?;
                if json {
                    print_json(&record)?;
                } else {
                    print_table(&JOB_HEADERS, &[job_row(&record)]);
                }
                return Ok(if view.status == Some(JobStatus::Completed) {
                    0
                } else {
                    1
                });
            }
        }
    }
}

/// A failed preflight, one line per unmet requirement (the report is in the result too).
fn print_service_report(result: Option<&serde_json::Value>) {
    let Some(report) = result.and_then(|r| r.get("report")) else {
        return;
    };
    if report["version"] != crate::domain::service::report::REPORT_VERSION {
        return;
    }
    println!("{}:", crate::domain::service::report::NOT_MET);
    for issue in report["issues"].as_array().into_iter().flatten() {
        println!(
            "  {} [{}] {}",
            issue["location"]["path"].as_str().unwrap_or("-"),
            issue["code"].as_str().unwrap_or("-"),
            issue["message"].as_str().unwrap_or("-")
        );
    }
}
