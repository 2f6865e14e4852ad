//! `mirror-neuron deployment deploy|list|status|promote|rollback|pause|resume|fail`:
//! versioned rollouts of a long-running bundle under a key (core-spec 9.2). Without
//! `--target` the requests are recorded in the local store and a running `serve` leader
//! rolls them out; with it, they go to that server. Either way the output is the same.
//! Exit 2 when the input is refused (bundle, policy flags, key, version), 1 on other
//! failures and when a waited-for rollout ends failed or reverted.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::deployment_place::{Deploy, Invalid, Place};
use super::deployment_render as render;
use super::output::print_json;
use crate::runtime::deployments::{ActionKind, RollbackRequest, moving};

#[derive(Debug, Subcommand)]
pub enum DeploymentCmd {
    /// Deploy a bundle under a key, or update the key to it (its history decides).
    Deploy(DeployArgs),
    /// Every deployment key with its latest rollout.
    List {
        /// Print the records as one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// One deployment: its record, versions and latest events.
    Status {
        /// A deployment key, or a deployment id.
        id_or_key: String,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Promote the canaries (or candidate job) of a rollout awaiting promotion.
    Promote(ActionArgs),
    /// Roll an older version out again, as a new version (default: the last stable one).
    Rollback {
        /// A deployment key, or a deployment id.
        id_or_key: String,
        /// The version to return to.
        #[arg(long, conflicts_with = "tag")]
        version: Option<String>,
        /// The tagged version to return to.
        #[arg(long)]
        tag: Option<String>,
        /// Why (kept in the rollout's description and events).
        #[arg(long)]
        reason: Option<String>,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause a rollout: deadlines and progress wait for a resume.
    Pause(ActionArgs),
    /// Resume a paused rollout where it stopped (deadlines do not count the pause).
    Resume(ActionArgs),
    /// Mark a rollout failed (with auto_revert, it is then undone).
    Fail(ActionArgs),
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// A deployment key, or a deployment id.
    pub id_or_key: String,
    /// Recorded with the action (pause and fail).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print the record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Policy flags override the manifest's `policies.update`; flags not given leave it be.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The job folder (manifest.json and payloads/).
    pub bundle: PathBuf,
    /// The deployment key (default: the manifest's, else its job name).
    #[arg(long)]
    pub key: Option<String>,
    /// rolling: changed agents in batches of --max-parallel; canary: --canary agents first,
    /// then a promote; blue-green: a new job beside the old, which promotion cancels.
    #[arg(long, value_parser = ["rolling", "canary", "blue-green"])]
    pub strategy: Option<String>,
    /// Agents replaced first as canaries.
    #[arg(long)]
    pub canary: Option<u64>,
    /// Agents replaced at a time.
    #[arg(long)]
    pub max_parallel: Option<u64>,
    /// How long a batch must stay healthy before the next starts.
    #[arg(long)]
    pub min_healthy_ms: Option<u64>,
    /// How long a batch may take to become healthy.
    #[arg(long)]
    pub healthy_deadline_ms: Option<u64>,
    /// How long the rollout may go without progress.
    #[arg(long)]
    pub progress_deadline_ms: Option<u64>,
    /// What makes a batch healthy: its service checks passing, or its agents free of errors.
    #[arg(long, value_parser = ["checks", "agent_states"])]
    pub health_check: Option<String>,
    /// Promote healthy canaries without an operator.
    #[arg(long)]
    pub auto_promote: bool,
    /// Undo a failed rollout by rolling the last stable version out again.
    #[arg(long)]
    pub auto_revert: bool,
    /// A label to roll back to this version by.
    #[arg(long)]
    pub tag: Option<String>,
    /// Follow the rollout until it stops moving (finished, failed, awaiting promotion,
    /// paused); exit 1 if it ends failed or reverted.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit 1).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Print the record as JSON.
    #[arg(long)]
    pub json: bool,
}

impl DeployArgs {
    /// The flags given, as policy overrides (`None` when none is).
    fn policy(&self) -> Option<Value> {
        let mut o = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.into(), v);
            }
        };
        put("strategy", self.strategy.as_ref().map(|s| json!(s)));
        put("canary", self.canary.map(|n| json!(n)));
        put("max_parallel", self.max_parallel.map(|n| json!(n)));
        put("min_healthy_ms", self.min_healthy_ms.map(|n| json!(n)));
        put(
            "healthy_deadline_ms",
            self.healthy_deadline_ms.map(|n| json!(n)),
        );
        put(
            "progress_deadline_ms",
            self.progress_deadline_ms.map(|n| json!(n)),
        );
        put("health_check", self.health_check.as_ref().map(|s| json!(s)));
        put("auto_promote", self.auto_promote.then_some(json!(true)));
        put("auto_revert", self.auto_revert.then_some(json!(true)));
        (!o.is_empty()).then_some(Value::Object(o))
    }
}

/// Runs a deployment command here or against `target`; returns the exit code.
pub async fn run(target: Option<&str>, cmd: DeploymentCmd) -> anyhow::Result<i32> {
    let mut place = Place::open(target).await?;
    let outcome = run_with(&mut place, cmd).await;
    place.close().await;
    match outcome {
        Err(e) if e.downcast_ref::<Invalid>().is_some() => {
            eprintln!("error: {e}");
            Ok(super::validate::EXIT_INVALID)
        }
        other => other,
    }
}

async fn run_with(place: &mut Place, cmd: DeploymentCmd) -> anyhow::Result<i32> {
    match cmd {
        DeploymentCmd::Deploy(args) => deploy(place, args).await,
        DeploymentCmd::List { json } => {
            let rows = place.list().await?;
            if json {
                print_json(&rows)?;
            } else {
                print!("{}", render::list(&rows));
            }
            Ok(0)
        }
        DeploymentCmd::Status { id_or_key, json } => {
            let r = place.get(&id_or_key).await?;
            show(&r, json, render::status)
        }
        DeploymentCmd::Promote(a) => {
            let r = place.promote(&a.id_or_key).await?;
            show(&r, a.json, render::record)
        }
        DeploymentCmd::Rollback {
            id_or_key,
            version,
            tag,
            reason,
            json,
        } => {
            let to = RollbackRequest {
                version,
                tag,
                reason,
            };
            let r = place.rollback(&id_or_key, to).await?;
            show(&r, json, render::record)
        }
        DeploymentCmd::Pause(a) => act(place, a, ActionKind::Pause).await,
        DeploymentCmd::Resume(a) => act(place, a, ActionKind::Resume).await,
        DeploymentCmd::Fail(a) => act(place, a, ActionKind::Fail).await,
    }
}

fn show(record: &Value, json: bool, page: fn(&Value) -> String) -> anyhow::Result<i32> {
    if json {
        print_json(record)?;
    } else {
        print!("{}", page(record));
    }
    Ok(0)
}

async fn act(place: &mut Place, a: ActionArgs, kind: ActionKind) -> anyhow::Result<i32> {
    let r = place.action(&a.id_or_key, kind, a.reason).await?;
    show(&r, a.json, render::record)
}

async fn deploy(place: &mut Place, args: DeployArgs) -> anyhow::Result<i32> {
    let recorded = place
        .deploy(Deploy {
            bundle: &args.bundle,
            key: args.key.clone(),
            policy: args.policy(),
            tag: args.tag.clone(),
        })
        .await?;
    if !args.wait {
        if place.is_local() && !args.json {
            eprintln!("recorded; a running `mirror-neuron serve` rolls it out");
        }
        return show(&recorded, args.json, render::record);
    }
    let key = recorded["deployment_key"].as_str().unwrap_or_default();
    if !place.serving().await {
        eprintln!(
            "no node is serving on this Redis: the rollout waits until `mirror-neuron serve` runs"
        );
    }
    let (last, timed_out) = follow(place, key, Duration::from_secs(args.timeout)).await?;
    show(&last, args.json, render::record)?;
    let status = last["status"].as_str().unwrap_or_default();
    if timed_out {
        eprintln!(
            "timed out after {}s; deployment {key} is still {status}",
            args.timeout
        );
        return Ok(1);
    }
    Ok(if matches!(status, "failed" | "reverted") {
        1
    } else {
        0
    })
}

/// Polls the record until the rollout stops moving or `limit` passes; returns the last
/// record and whether time ran out. A bar on a terminal, else a line per change (stderr).
async fn follow(place: &mut Place, key: &str, limit: Duration) -> anyhow::Result<(Value, bool)> {
    let bar = (std::io::stdout().is_terminal() && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let start = Instant::now();
    let mut last_line = String::new();
    loop {
        let r = place.get(key).await?;
        let (done, total) = render::progress(&r);
        let line = render::progress_line(&r);
        match &bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(format!(
                    "{} {}",
                    r["status"].as_str().unwrap_or("-"),
                    r["description"].as_str().unwrap_or_default()
                ));
                bar.tick();
            }
            None if line != last_line => eprintln!("{line}"),
            None => {}
        }
        last_line = line;
        let still = moving(r["status"].as_str().unwrap_or_default());
        if !still || start.elapsed() >= limit {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            return Ok((r, still));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: DeploymentCmd,
    }

    fn deploy_args(args: &[&str]) -> DeployArgs {
        let all = [&["t", "deploy", "b"], args].concat();
        match T::try_parse_from(all).expect("parses").cmd {
            DeploymentCmd::Deploy(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_the_flags_given_become_overrides() {
        assert_eq!(deploy_args(&[]).policy(), None);
        let a = deploy_args(&[
            "--strategy",
            "canary",
            "--canary",
            "1",
            "--min-healthy-ms",
            "200",
            "--health-check",
            "agent_states",
            "--auto-promote",
        ]);
        assert_eq!(
            a.policy(),
            Some(
                json!({"strategy": "canary", "canary": 1, "min_healthy_ms": 200,
                        "health_check": "agent_states", "auto_promote": true})
            )
        );
        assert!(T::try_parse_from(["t", "deploy", "b", "--strategy", "sideways"]).is_err());
    }
}
