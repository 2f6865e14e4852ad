//! The `mirror-neuron` command line. Data goes to stdout, everything else to stderr.

mod admin;
mod admin_gc;
mod blob;
mod deployment;
mod deployment_place;
mod deployment_render;
mod events;
mod history_pages;
mod interrupt;
mod job;
mod jobs;
mod node;
mod output;
mod plan;
mod progress;
mod remote;
mod remote_follow;
mod replay;
mod run;
mod schedule;
mod schedule_place;
mod serve;
mod service;
mod trigger;
mod validate;
mod wait;

use clap::{Parser, Subcommand};

/// Durable, message-driven workflow runtime, event-sourced on Redis Streams.
#[derive(Debug, Parser)]
#[command(name = "mirror-neuron", version, about)]
pub struct Cli {
    /// Talk to a mirror-neuron server at HOST:PORT instead of running in this process
    /// (the token comes from MN_GRPC_AUTH_TOKEN).
    #[arg(long, global = true, env = "MN_GRPC_TARGET")]
    target: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a job bundle without running it (exit 0 valid, 2 invalid).
    Validate {
        /// The bundle folder (holding `manifest.json` and `payloads/`).
        bundle: std::path::PathBuf,
        /// Print the errors and warnings as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Where a job bundle's executors would run on the cluster now (nothing is submitted):
    /// per agent the node, resources and devices; exit 2 with the reason when nothing fits.
    Plan {
        /// The bundle folder (holding `manifest.json` and `payloads/`).
        bundle: std::path::PathBuf,
        /// Print the plan as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Submit a job bundle: run it to its end in this process, or with --target submit it to a
    /// server (add --wait to follow it to its end).
    Run(run::RunArgs),
    /// Run a node: projection workers and job owners; resumes jobs whose runtime died.
    Serve,
    /// Inspect and control jobs.
    #[command(subcommand)]
    Job(job::JobCmd),
    /// The cluster's nodes: list, status, drain, undrain, maintenance.
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// The service registry: list, resolve, check (core-spec 9.1).
    #[command(subcommand)]
    Service(service::ServiceCmd),
    /// Keyspace administration: migrations, projections, retention.
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// Versioned rollouts of a long-running bundle under a key: deploy, list, status,
    /// promote, rollback, pause, resume, fail.
    #[command(subcommand)]
    Deployment(deployment::DeploymentCmd),
    /// Periodic (cron) and delayed runs of a bundle.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCmd),
    /// Runs of a bundle started by emitted events.
    #[command(subcommand)]
    Trigger(trigger::TriggerCmd),
    /// Emit and list trigger events.
    #[command(subcommand)]
    Event(trigger::EventCmd),
    /// Read stored blobs (large step outputs that events carry as references).
    #[command(subcommand)]
    Blob(blob::BlobCmd),
}

/// Why a command does not talk to a server, for the commands that never do: a target given
/// to them is said to be unused rather than silently ignored.
fn target_unused(command: &Command) -> Option<&'static str> {
    match command {
        Command::Validate { .. } => {
            Some("validate checks the bundle on this machine, with the rules a server applies")
        }
        Command::Serve => Some("serve runs a server here; it does not connect to one"),
        Command::Admin(_) => Some("admin commands work on the Redis keyspace (MN_REDIS_URL)"),
        _ => None,
    }
}

/// Parses arguments and runs the command; returns the process exit code.
pub async fn run() -> i32 {
    let cli = Cli::parse();
    if let Some(target) = &cli.target
        && let Some(why) = target_unused(&cli.command)
    {
        eprintln!("warning: --target {target} (or MN_GRPC_TARGET) is not used: {why}");
    }
    let result = match cli.command {
        Command::Validate { bundle, json } => validate::run(bundle, json).await,
        Command::Plan { bundle, json } => plan::run(cli.target.as_deref(), bundle, json).await,
        Command::Run(args) => match &cli.target {
            Some(t) => remote::run(t, args).await,
            None => {
                // The person running this owns the environment the steps would read: their
                // own secret-like variables may go to the steps that ask for them by name.
                if crate::config::var("MN_EXECUTOR_SECRET_ENV").is_none() {
                    crate::runtime::executor::command::set_secret_grants(
                        crate::domain::secrets::Grants::All,
                    );
                }
                run::run(args).await
            }
        },
        Command::Serve => serve::run().await,
        Command::Job(cmd) => job::run(cmd, cli.target.as_deref()).await,
        Command::Node(cmd) => node::run(cli.target.as_deref(), cmd).await,
        Command::Service(cmd) => service::run(cli.target.as_deref(), cmd).await,
        Command::Admin(cmd) => admin::run(cmd).await,
        Command::Deployment(cmd) => deployment::run(cli.target.as_deref(), cmd).await,
        Command::Schedule(cmd) => schedule::run_schedule(cli.target.as_deref(), cmd).await,
        Command::Trigger(cmd) => trigger::run_trigger(cli.target.as_deref(), cmd).await,
        Command::Event(cmd) => trigger::run_event(cli.target.as_deref(), cmd).await,
        Command::Blob(cmd) => blob::run(cli.target.as_deref(), cmd).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
