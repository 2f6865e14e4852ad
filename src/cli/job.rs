//! `mirror-neuron job ...`: list, inspect, agents, events, dead-letters, pause, resume, cancel.

use std::time::Duration;

use clap::Subcommand;

use super::history_pages::PageSource;
use super::output::{print_agents, print_dead_letters, print_json, print_table, short_json};
use crate::domain::job::{JobCommand, JobStatus};
use crate::domain::view::JobView;
use crate::runtime::commands::{self, CommandError};
use crate::runtime::{Backend, Projectors, wait_projections_caught_up};
use crate::store::{JobListFilter, Store, validate_job_id};

#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// List jobs, newest first.
    List {
        /// Only jobs in this status (pending, running, paused, completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show one job.
    Inspect {
        job_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a job's agents.
    Agents {
        job_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Print a job's event history.
    Events {
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
        job_id: String,
        /// The file to write (`-` for stdout).
        #[arg(short = 'o', long)]
        output: std::path::PathBuf,
    },
    /// Show a job's dead letters.
    DeadLetters {
        job_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Pause a running job.
    Pause { job_id: String },
    /// Resume a paused job.
    Resume { job_id: String },
    /// Take over an active job whose runtime is gone and run it to its end in this process
    /// (waits for the previous owner's lease to expire).
    Recover {
        job_id: String,
        /// Give up waiting for the lease after this many seconds.
        #[arg(long, default_value_t = 120)]
        lease_wait: u64,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job.
    Cancel {
        job_id: String,
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

impl JobCmd {
    /// True for commands that read a local file only (no Redis, no server).
    pub fn is_offline(&self) -> bool {
        matches!(self, JobCmd::Replay(args) if args.is_offline())
    }
}

pub async fn run(cmd: JobCmd) -> anyhow::Result<i32> {
    if let JobCmd::Replay(args) = &cmd
        && args.is_offline()
    {
        return super::replay::replay_offline(args);
    }
    let backend = Backend::open().await?;
    let code = run_with(&backend.store, cmd).await;
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

fn job_row(v: &JobView) -> Vec<String> {
    vec![
        v.job_id.clone(),
        v.graph_id.clone(),
        v.status.map_or("-".into(), |s| s.to_string()),
        v.submitted_at.clone().unwrap_or_default(),
        v.updated_at.clone().unwrap_or_default(),
    ]
}

/// Checks the id and that the job exists in the views.
async fn require_job(store: &Store, job_id: &str) -> anyhow::Result<JobView> {
    validate_job_id(job_id)?;
    store
        .job_view(job_id)
        .await?
        .ok_or_else(|| not_found(job_id))
}

fn not_found(job_id: &str) -> anyhow::Error {
    anyhow::anyhow!("job {job_id} was not found")
}

async fn run_with(store: &Store, cmd: JobCmd) -> anyhow::Result<i32> {
    // History, replay and export read the history itself, not the views.
    if !matches!(
        cmd,
        JobCmd::History { .. } | JobCmd::Replay(_) | JobCmd::Export { .. }
    ) {
        catch_up(store).await?;
    }
    match cmd {
        JobCmd::History { job_id, json } => {
            let mut source = PageSource::local(store, &job_id).await?;
            super::replay::history(&mut source, json).await
        }
        JobCmd::Replay(args) => {
            let job_id = super::replay::replay_job_id(&args)?;
            let mut source = PageSource::local(store, job_id).await?;
            super::replay::replay_stored(&mut source, &args).await
        }
        JobCmd::Export { job_id, output } => {
            let mut source = PageSource::local(store, &job_id).await?;
            super::replay::export(&mut source, &output).await
        }
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
            let jobs = store.list_jobs(&JobListFilter { status, limit }).await?;
            if json {
                print_json(&jobs)?;
            } else {
                let rows: Vec<Vec<String>> = jobs.iter().map(job_row).collect();
                print_table(
                    &["JOB ID", "GRAPH", "STATUS", "SUBMITTED", "UPDATED"],
                    &rows,
                );
            }
            Ok(0)
        }
        JobCmd::Inspect { job_id, json } => {
            validate_job_id(&job_id)?;
            let view = store
                .job_view(&job_id)
                .await?
                .ok_or_else(|| not_found(&job_id))?;
            if json {
                print_json(&view)?;
            } else {
                print_table(
                    &["JOB ID", "GRAPH", "STATUS", "SUBMITTED", "UPDATED"],
                    &[job_row(&view)],
                );
                println!(
                    "events: {}  messages: {}  steps: {} ok / {} failed  dead letters: {}",
                    view.last_seq,
                    view.messages_sent,
                    view.steps_finished,
                    view.steps_failed,
                    view.dead_letters
                );
                if let Some(owner) = &view.lease_owner {
                    println!("lease: {owner} (epoch {})", view.lease_epoch);
                }
                if let Some(reason) = &view.placement_blocked {
                    println!("placement blocked: {reason}");
                }
                print_service_report(view.result.as_ref());
                if let Some(result) = &view.result {
                    println!("result: {}", short_json(result, 400));
                }
                for s in view.services.values() {
                    println!(
                        "service: {} {} on {}",
                        s.service.name,
                        s.status.as_str(),
                        s.node.as_deref().unwrap_or("any node")
                    );
                }
            }
            Ok(0)
        }
        JobCmd::Agents { job_id, json } => {
            require_job(store, &job_id).await?;
            let agents = serde_json::to_value(store.agent_views(&job_id).await?)?;
            let rows = agents.as_array().cloned().unwrap_or_default();
            if json {
                print_json(&rows)?
            } else {
                print_agents(&rows)
            }
            Ok(0)
        }
        JobCmd::Events {
            job_id,
            json,
            follow,
        } => {
            validate_job_id(&job_id)?;
            super::events::print(store, &job_id, json, follow).await
        }
        JobCmd::DeadLetters { job_id, json } => {
            require_job(store, &job_id).await?;
            let dead = serde_json::to_value(store.dead_letter_views(&job_id).await?)?;
            let rows = dead.as_array().cloned().unwrap_or_default();
            if json {
                print_json(&rows)?
            } else {
                print_dead_letters(&rows)
            }
            Ok(0)
        }
        JobCmd::Recover {
            job_id,
            lease_wait,
            json,
        } => recover(store, &job_id, lease_wait, json).await,
        JobCmd::Pause { job_id } => {
            control(store, &job_id, JobCommand::Pause { reason: None }, "paused").await
        }
        JobCmd::Resume { job_id } => control(store, &job_id, JobCommand::Resume, "resumed").await,
        JobCmd::Cancel { job_id, reason } => {
            control(store, &job_id, JobCommand::Cancel { reason }, "cancelled").await
        }
    }
}

async fn control(store: &Store, job_id: &str, cmd: JobCommand, done: &str) -> anyhow::Result<i32> {
    validate_job_id(job_id)?;
    match commands::execute(store, job_id, &cmd, None).await {
        Ok(_) => {
            println!("{done}");
            Ok(0)
        }
        Err(CommandError::Domain(e)) => {
            eprintln!("error: job {job_id}: {e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
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
                if json {
                    print_json(&view)?;
                } else {
                    print_table(
                        &["JOB ID", "GRAPH", "STATUS", "SUBMITTED", "UPDATED"],
                        &[job_row(&view)],
                    );
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
