//! `mirror-neuron trigger|event ...`: runs of a bundle started by emitted events, and
//! emitting and listing those events (local mode, like `schedule`).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Map, json};

use super::output::{print_json, print_table, short_json};
use super::schedule::{CreateArgs, control, create_from, list, parse_json, with_store};
use crate::domain::schedule::ScheduleCommand;
use crate::runtime::clock::now_ms;
use crate::runtime::schedules::emit;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum TriggerCmd {
    /// Run a bundle whenever a matching event is emitted.
    Create {
        bundle: PathBuf,
        /// Event type to listen for.
        #[arg(long)]
        event: String,
        /// Filters on the event: {"order.total": {"gte": 100}, "region": ["eu", "us"]}.
        #[arg(long)]
        filter_json: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Start a run even while the previous one is still active.
        #[arg(long)]
        allow_overlap: bool,
        #[command(flatten)]
        common: CreateArgs,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventCmd {
    /// Emit an event; every matching trigger starts a run carrying its payload.
    Emit {
        event_type: String,
        #[arg(long)]
        payload_json: Option<String>,
        /// Emitting twice with the same key records (and runs) the event once.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[arg(long, default_value = "cli")]
        source: String,
        #[arg(long)]
        json: bool,
    },
    /// Recently emitted events, newest first.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run_trigger(cmd: TriggerCmd) -> anyhow::Result<i32> {
    with_store(|store| Box::pin(trigger_with(store, cmd))).await
}

pub async fn run_event(cmd: EventCmd) -> anyhow::Result<i32> {
    with_store(|store| Box::pin(event_with(store, cmd))).await
}

async fn trigger_with(store: &Store, cmd: TriggerCmd) -> anyhow::Result<i32> {
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
            create_from(store, bundle, spec, common, "trigger create").await
        }
        TriggerCmd::List { json } => list(store, Some("event"), None, json).await,
        TriggerCmd::Delete { id } => {
            control(
                store,
                &id,
                ScheduleCommand::Delete {
                    reason: None,
                    now_ms: now_ms(),
                },
                "deleted",
            )
            .await
        }
    }
}

async fn event_with(store: &Store, cmd: EventCmd) -> anyhow::Result<i32> {
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
            let report = emit(
                store,
                &event_type,
                payload,
                &source,
                idempotency_key.as_deref(),
            )
            .await?;
            if json {
                print_json(&report.to_json())?;
            } else {
                let status = if report.duplicate {
                    "duplicate"
                } else {
                    "emitted"
                };
                println!(
                    "{} {status}: {} trigger(s) matched, {} run(s)",
                    report.event.event_id,
                    report.matched.len(),
                    report.runs.len()
                );
                for (schedule, job) in &report.runs {
                    println!("  {schedule} -> {job}");
                }
            }
            Ok(0)
        }
        EventCmd::List { limit, json } => {
            let events = store.emitted_events(limit).await?;
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
