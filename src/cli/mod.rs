//! The `mirror-neuron` command line. Data goes to stdout, everything else to stderr.

mod admin;
mod events;
mod job;
mod output;
mod run;
mod serve;
mod validate;

use clap::{Parser, Subcommand};

/// Durable, message-driven workflow runtime, event-sourced on Redis Streams.
#[derive(Debug, Parser)]
#[command(name = "mirror-neuron", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a job bundle without running it (exit 0 valid, 2 invalid).
    Validate {
        bundle: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Submit a job bundle and run it to its end in this process.
    Run(run::RunArgs),
    /// Run a node: projection workers and job owners; resumes jobs whose runtime died.
    Serve,
    /// Inspect and control jobs.
    #[command(subcommand)]
    Job(job::JobCmd),
    /// Keyspace administration: migrations, projections, retention.
    #[command(subcommand)]
    Admin(admin::AdminCmd),
}

/// Parses arguments and runs the command; returns the process exit code.
pub async fn run() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { bundle, json } => validate::run(bundle, json).await,
        Command::Run(args) => run::run(args).await,
        Command::Serve => serve::run().await,
        Command::Job(cmd) => job::run(cmd).await,
        Command::Admin(cmd) => admin::run(cmd).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
