//! `mirror-neuron schedule ...`: periodic and delayed runs of a bundle, and the helpers the
//! `trigger` and `event` commands share. Without `--target` they act on the local store (a
//! running `serve` node sweeps the schedules and runs the jobs); with it, on that server.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::output::{print_json, print_table};
use super::schedule_place::{Action, Place, with_place};

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Run a bundle on one or more cron expressions in a time zone.
    Create {
        /// The bundle folder (holding `manifest.json` and `payloads/`).
        bundle: PathBuf,
        /// A cron expression (5 fields, or 6 with seconds first); repeat for several.
        #[arg(long = "cron", required = true)]
        crons: Vec<String>,
        /// IANA time zone the expressions are read in (DST handled).
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// A name to show in listings (default: the bundle's graph id).
        #[arg(long)]
        name: Option<String>,
        /// What to do with occurrences missed while no node was sweeping.
        #[arg(long, value_parser = ["skip", "catchup"], default_value = "skip")]
        missed_policy: String,
        /// With catchup: run at most this many of the newest missed occurrences.
        #[arg(long, default_value_t = 10)]
        catchup_limit: u32,
        /// Skip an occurrence while the previous run is still active (the default).
        #[arg(long, conflicts_with = "allow_overlap")]
        prohibit_overlap: bool,
        /// Start every occurrence even if the previous run is still active.
        #[arg(long)]
        allow_overlap: bool,
        #[command(flatten)]
        common: CreateArgs,
    },
    /// Run a bundle once, later.
    Delay {
        /// The bundle folder (holding `manifest.json` and `payloads/`).
        bundle: PathBuf,
        /// How long from now: 90s, 10m, 2h, 1d, 1h30m.
        #[arg(long = "in", conflicts_with = "at", required_unless_present = "at")]
        delay: Option<String>,
        /// When: ISO 8601 (2026-11-25T09:00:00+01:00; without an offset, in --timezone).
        #[arg(long)]
        at: Option<String>,
        /// IANA time zone (e.g. Europe/Paris) for the times given.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// A name to show in listings (default: the bundle's graph id).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        common: CreateArgs,
    },
    /// List schedules (triggers included).
    List {
        /// Only schedules of this kind (cron, delay, event).
        #[arg(long)]
        kind: Option<String>,
        /// Only entries in this status.
        #[arg(long)]
        status: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one schedule with its recent dispatches.
    Status {
        /// The schedule's id (as `schedule list` shows it).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a schedule's history (one JSON event per line with --json, else a table).
    Events {
        /// The schedule's id (as `schedule list` shows it).
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Pause a schedule: no run starts until it is resumed.
    Pause {
        /// The schedule's id (as `schedule list` shows it).
        id: String,
        /// Why, recorded with the change.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused schedule (occurrences missed while paused are not run).
    Resume {
        /// The schedule's id (as `schedule list` shows it).
        id: String,
    },
    /// Delete a schedule (its history stays readable).
    Delete {
        /// The schedule's id (as `schedule list` shows it).
        id: String,
        /// Why, recorded with the change.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Start a run now, with an optional payload.
    RunNow {
        /// The schedule's id (as `schedule list` shows it).
        id: String,
        /// A JSON object given to the run as its payload.
        #[arg(long)]
        payload_json: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Options every create command takes.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// JSON given to every run as `schedule.payload` in its initial input.
    #[arg(long)]
    pub payload_json: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--payload-json`-style flags, naming the flag on error.
pub(super) fn parse_json(flag: &str, text: Option<&str>) -> anyhow::Result<Option<Value>> {
    text.map(|t| {
        serde_json::from_str(t).map_err(|e| anyhow::anyhow!("{flag} is not valid JSON: {e}"))
    })
    .transpose()
}

/// `90s`, `10m`, `2h`, `1d`, `1h30m`, `500ms` -> milliseconds.
pub fn parse_duration_ms(text: &str) -> anyhow::Result<i64> {
    let bad =
        || anyhow::anyhow!("--in {text:?}: expected a duration like 90s, 10m, 2h, 1d or 1h30m");
    let mut total: i64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

pub(super) async fn create_from(
    place: &mut Place,
    bundle: PathBuf,
    mut spec: Map<String, Value>,
    common: CreateArgs,
    cli: &str,
) -> anyhow::Result<i32> {
    if let Some(p) = parse_json("--payload-json", common.payload_json.as_deref())? {
        spec.insert("payload".into(), p);
    }
    let view = place
        .create(bundle, Value::Object(spec), json!({ "cli": cli }))
        .await?;
    if common.json {
        print_json(&view)?;
    } else {
        println!(
            "{} {} (next run: {})",
            view["schedule_id"].as_str().unwrap_or("-"),
            view["status"].as_str().unwrap_or("-"),
            view["next_run_at"].as_str().unwrap_or("on event")
        );
    }
    Ok(0)
}

fn row(v: &Value) -> Vec<String> {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    let when = match v["kind"].as_str() {
        Some("periodic") => format!(
            "{} {}",
            v["crons"]
                .as_array()
                .map(|c| c
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" | "))
                .unwrap_or_default(),
            s("timezone")
        ),
        Some("delayed") => s("run_at"),
        Some("event") => match &v["trigger"]["event_type"] {
            Value::String(t) => format!("on {t}"),
            other => format!("on {other}"),
        },
        _ => "-".into(),
    };
    vec![
        s("schedule_id"),
        s("name"),
        s("kind"),
        s("status"),
        when,
        s("next_run_at"),
        s("job_id"),
    ]
}

const HEADER: [&str; 7] = [
    "ID", "NAME", "KIND", "STATUS", "WHEN", "NEXT RUN", "LAST JOB",
];

pub(super) async fn list(
    place: &mut Place,
    kind: Option<&str>,
    status: Option<&str>,
    json_out: bool,
) -> anyhow::Result<i32> {
    let rows = place.list(kind, status).await?;
    if json_out {
        print_json(&rows)?;
    } else {
        print_table(&HEADER, &rows.iter().map(row).collect::<Vec<_>>());
    }
    Ok(0)
}

/// Pauses, resumes or deletes, printing `<id> <status after>`.
pub(super) async fn control(place: &mut Place, id: &str, action: Action) -> anyhow::Result<i32> {
    let view = place.act(id, action).await?;
    println!("{id} {}", view["status"].as_str().unwrap_or("unknown"));
    Ok(0)
}

pub async fn run_schedule(target: Option<&str>, cmd: ScheduleCmd) -> anyhow::Result<i32> {
    with_place(target, |place| Box::pin(schedule_with(place, cmd))).await
}

async fn schedule_with(place: &mut Place, cmd: ScheduleCmd) -> anyhow::Result<i32> {
    match cmd {
        ScheduleCmd::Create {
            bundle,
            crons,
            timezone,
            name,
            missed_policy,
            catchup_limit,
            prohibit_overlap: _,
            allow_overlap,
            common,
        } => {
            let mut spec = Map::new();
            spec.insert("kind".into(), json!("periodic"));
            spec.insert("crons".into(), json!(crons));
            spec.insert("timezone".into(), json!(timezone));
            spec.insert("missed_policy".into(), json!(missed_policy));
            spec.insert("catchup_limit".into(), json!(catchup_limit));
            spec.insert("prohibit_overlap".into(), json!(!allow_overlap));
            if let Some(n) = name {
                spec.insert("name".into(), json!(n));
            }
            create_from(place, bundle, spec, common, "schedule create").await
        }
        ScheduleCmd::Delay {
            bundle,
            delay,
            at,
            timezone,
            name,
            common,
        } => {
            let mut spec = Map::new();
            spec.insert("kind".into(), json!("delayed"));
            spec.insert("timezone".into(), json!(timezone));
            match (delay, at) {
                (Some(d), _) => spec.insert("delay_ms".into(), json!(parse_duration_ms(&d)?)),
                (None, Some(at)) => spec.insert("run_at".into(), json!(at)),
                (None, None) => anyhow::bail!("give --in DURATION or --at TIME"),
            };
            if let Some(n) = name {
                spec.insert("name".into(), json!(n));
            }
            create_from(place, bundle, spec, common, "schedule delay").await
        }
        ScheduleCmd::List { kind, status, json } => {
            list(place, kind.as_deref(), status.as_deref(), json).await
        }
        ScheduleCmd::Status { id, json } => {
            let view = place.get(&id).await?;
            if json {
                print_json(&view)?;
            } else {
                print_table(&HEADER, &[row(&view)]);
                let c = &view["counters"];
                println!(
                    "dispatched: {}  missed: {}  blocked (overlap): {}  failed: {}",
                    c["dispatched"], c["missed"], c["blocked"], c["failed"]
                );
                let recent: Vec<Vec<String>> = view["dispatches"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .take(10)
                    .map(|d| {
                        ["job_id", "status", "reason", "scheduled_for", "decided_at"]
                            .iter()
                            .map(|k| d[*k].as_str().unwrap_or("-").to_string())
                            .collect()
                    })
                    .collect();
                if !recent.is_empty() {
                    print_table(
                        &["JOB ID", "STATUS", "REASON", "SCHEDULED FOR", "DECIDED AT"],
                        &recent,
                    );
                }
            }
            Ok(0)
        }
        ScheduleCmd::Events { id, json } => {
            let events = place.history(&id).await?;
            if json {
                print_json(&events)?;
            } else {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        vec![
                            (i + 1).to_string(),
                            e["type"].as_str().unwrap_or("-").to_string(),
                            super::output::short_json(&e["data"], 100),
                        ]
                    })
                    .collect();
                print_table(&["SEQ", "TYPE", "DATA"], &rows);
            }
            Ok(0)
        }
        ScheduleCmd::Pause { id, reason } => control(place, &id, Action::Pause(reason)).await,
        ScheduleCmd::Resume { id } => control(place, &id, Action::Resume).await,
        ScheduleCmd::Delete { id, reason } => control(place, &id, Action::Delete(reason)).await,
        ScheduleCmd::RunNow {
            id,
            payload_json,
            json,
        } => {
            let payload = parse_json("--payload-json", payload_json.as_deref())?;
            let view = place.run_now(&id, payload).await?;
            let job_id = view["job_id"].as_str().unwrap_or("-");
            if json {
                print_json(&json!({"schedule_id": id, "job_id": job_id, "status": "submitted"}))?;
            } else {
                println!("{job_id} submitted (a running `mirror-neuron serve` picks it up)");
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10m").ok(), Some(600_000));
        assert_eq!(parse_duration_ms("1h30m").ok(), Some(5_400_000));
        assert_eq!(parse_duration_ms("500ms").ok(), Some(500));
        assert_eq!(parse_duration_ms("2d").ok(), Some(172_800_000));
        for bad in ["", "10", "m", "10x", "1.5h"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }
}
