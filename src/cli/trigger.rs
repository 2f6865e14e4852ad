//! `mirror-neuron trigger|event ...`: runs of a bundle started by emitted events, and
//! emitting and listing those events (locally, or on a server with `--target`).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Map, json};

use super::output::{print_json, print_table, short_json};
use super::schedule::{CreateArgs, control, create_from, list, parse_json};
use super::schedule_place::{Action, Place, with_place};

#[derive(Debug, Subcommand)]
pub enum TriggerCmd {
    /// Run a bundle whenever a matching event is emitted.
    Create {
        /// The bundle folder (holding `manifest.json` and `payloads/`).
        bundle: PathBuf,
        /// Event type to listen for.
        #[arg(long)]
        event: String,
        /// Filters on the event: {"order.total": {"gte": 100}, "region": ["eu", "us"]}.
        #[arg(long)]
        filter_json: Option<String>,
        /// A name to show in listings (default: the bundle's graph id).
        #[arg(long)]
        name: Option<String>,
        /// Start a run even while the previous one is still active.
        #[arg(long)]
        allow_overlap: bool,
        #[command(flatten)]
        common: CreateArgs,
    },
    /// List triggers.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a trigger: matching events no longer start runs.
    Delete {
        /// The trigger's id (as `trigger list` shows it).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventCmd {
    /// Emit an event; every matching trigger starts a run carrying its payload.
    Emit {
        /// The event type (triggers listening for it start runs).
        event_type: String,
        /// A JSON object given to the run as its payload.
        #[arg(long)]
        payload_json: Option<String>,
        /// Emitting twice with the same key records (and runs) the event once.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Who emitted the event (recorded with it).
        #[arg(long, default_value = "cli")]
        source: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Recently emitted events, newest first.
    List {
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run_trigger(target: Option<&str>, cmd: TriggerCmd) -> anyhow::Result<i32> {
    with_place(target, |place| Box::pin(trigger_with(place, cmd))).await
}

pub async fn run_event(target: Option<&str>, cmd: EventCmd) -> anyhow::Result<i32> {
    with_place(target, |place| Box::pin(event_with(place, cmd))).await
}

async fn trigger_with(place: &mut Place, cmd: TriggerCmd) -> anyhow::Result<i32> {
    match cmd {
        TriggerCmd::Create {
            bundle,
            event,
            filter_json,
            name,
            allow_overlap,
            common,
        } => {
            let filters = parse_json("--filter-json", filter_json.as_deref())?.unwrap_or(json!({}));
            let mut spec = Map::new();
            spec.insert("kind".into(), json!("event"));
            spec.insert(
                "trigger".into(),
                json!({"event_type": event, "filters": filters}),
            );
            spec.insert("prohibit_overlap".into(), json!(!allow_overlap));
            if let Some(n) = name {
                spec.insert("name".into(), json!(n));
            }
            create_from(place, bundle, spec, common, "trigger create").await
        }
        TriggerCmd::List { json } => list(place, Some("event"), None, json).await,
        TriggerCmd::Delete { id } => control(place, &id, Action::Delete(None)).await,
    }
}

async fn event_with(place: &mut Place, cmd: EventCmd) -> anyhow::Result<i32> {
    match cmd {
        EventCmd::Emit {
            event_type,
            payload_json,
            idempotency_key,
            source,
            json,
        } => {
            let payload =
                parse_json("--payload-json", payload_json.as_deref())?.unwrap_or(json!({}));
            let report = place
                .emit(&event_type, payload, &source, idempotency_key.as_deref())
                .await?;
            if json {
                print_json(&report)?;
            } else {
                let runs = report["runs"].as_array().cloned().unwrap_or_default();
                println!(
                    "{} {}: {} trigger(s) matched, {} run(s)",
                    report["event_id"].as_str().unwrap_or("-"),
                    report["status"].as_str().unwrap_or("-"),
                    report["matched"].as_array().map_or(0, Vec::len),
                    runs.len()
                );
                for r in &runs {
                    println!(
                        "  {} -> {}",
                        r["schedule_id"].as_str().unwrap_or("-"),
                        r["job_id"].as_str().unwrap_or("-")
                    );
                }
            }
            Ok(0)
        }
        EventCmd::List { limit, json } => {
            let events = place.events(limit).await?;
            if json {
                print_json(&events)?;
            } else {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            e["event_id"].as_str().unwrap_or("-").to_string(),
                            e["event_type"].as_str().unwrap_or("-").to_string(),
                            e["source"].as_str().unwrap_or("-").to_string(),
                            e["created_at"].as_str().unwrap_or("-").to_string(),
                            short_json(&e["payload"], 60),
                        ]
                    })
                    .collect();
                print_table(&["EVENT ID", "TYPE", "SOURCE", "CREATED", "PAYLOAD"], &rows);
            }
            Ok(0)
        }
    }
}
