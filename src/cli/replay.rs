//! `job history`, `job replay` and `job export`: debugging a job from its history alone.
//!
//! The folding is [`crate::domain::replay`] (pure, the runtime's own `evolve`); this module
//! only reads the history and prints. The history comes page by page from a [`PageSource`]
//! (this machine's store, hot or archived, or a server with `--target`), so the local and
//! remote commands are one code path and a long history is never held whole. `job replay --file`
//! never opens a Backend, so an export can be studied on a machine without Redis.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::history_pages::PageSource;
use super::output::{print_dead_letters, print_json, print_table, short_json};
use crate::domain::event::JobEvent;
use crate::domain::replay::{
    Entry, ExportLine, Replay, ReplayPoint, ReplayReport, export_line, parse_export, replay,
};
use crate::domain::view::iso_ms;
use crate::store::HistoryItem;

/// Arguments of `job replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The job to replay from Redis (with --file: optional, checked against the file).
    #[arg(required_unless_present = "file")]
    pub job_id: Option<String>,
    /// Replay an export written by `job export` instead of Redis (works without Redis).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Stop after the event with this seq.
    #[arg(long, conflicts_with = "at")]
    pub until: Option<u64>,
    /// Stop before the first event written after this time (RFC 3339, e.g. 2026-11-24T20:00:00Z).
    #[arg(long)]
    pub at: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl ReplayArgs {
    /// True when the replay reads a file and needs neither Redis nor a server.
    pub fn is_offline(&self) -> bool {
        self.file.is_some()
    }

    fn point(&self) -> anyhow::Result<ReplayPoint> {
        Ok(match (self.until, &self.at) {
            (Some(seq), _) => ReplayPoint::Seq(seq),
            (None, Some(at)) => {
                let t = chrono::DateTime::parse_from_rfc3339(at).map_err(|e| {
                    anyhow::anyhow!(
                        "--at must be an RFC 3339 time like 2026-11-24T20:00:00Z (got {at:?}: {e})"
                    )
                })?;
                ReplayPoint::Time(t.timestamp_millis())
            }
            (None, None) => ReplayPoint::End,
        })
    }
}

/// A history entry as the replay fold takes it.
fn entry(item: &HistoryItem) -> Entry<'_> {
    match &item.event {
        Ok(env) => Entry::Event(env),
        Err(_) => Entry::Undecodable { seq: item.seq },
    }
}

/// One line of human-readable summary for an event's payload.
pub fn summary(event: &JobEvent) -> String {
    match event {
        JobEvent::JobSubmitted(s) => format!("graph {} ({})", s.graph_id, s.job_name),
        JobEvent::JobStarted | JobEvent::JobResumed => String::new(),
        JobEvent::JobPaused { reason } => reason.clone().unwrap_or_default(),
        JobEvent::JobCancelled { reason } => reason.clone(),
        JobEvent::JobCompleted { result } | JobEvent::JobFailed { result } => {
            short_json(result, 100)
        }
        JobEvent::LeaseAcquired {
            owner,
            epoch,
            local_run,
        } => {
            let local = if *local_run { " (local run)" } else { "" };
            format!("{owner} epoch {epoch}{local}")
        }
        JobEvent::LeaseReleased {
            owner,
            epoch,
            reason,
        } => match reason {
            Some(why) => format!("{owner} epoch {epoch}: {why}"),
            None => format!("{owner} epoch {epoch}"),
        },
        JobEvent::InputsQueued { counts } => counts
            .iter()
            .map(|(agent, n)| format!("{n} -> {agent}"))
            .collect::<Vec<_>>()
            .join(", "),
        JobEvent::AgentStepped(step) => step_summary(step),
        JobEvent::MessageSent { message: m } => {
            format!("{} -> {} {} {}", m.from, m.to, m.message_type, m.message_id)
        }
        JobEvent::AgentStepStarted {
            agent_id,
            message_id,
            attempt,
            node,
        } => match node {
            Some(n) => format!("{agent_id} takes {message_id} (attempt {attempt}) on {n}"),
            None => format!("{agent_id} takes {message_id} (attempt {attempt})"),
        },
        JobEvent::ReliabilityResolved { reliability } => short_json(reliability, 80),
        JobEvent::AgentRestartScheduled {
            agent_id,
            attempt,
            delay_ms,
            deferred,
            ..
        } => format!(
            "{agent_id} restart {attempt} in {delay_ms} ms{}",
            if *deferred { " (deferred)" } else { "" }
        ),
        JobEvent::AgentRescheduleScheduled {
            agent_id,
            attempt,
            delay_ms,
            avoid_node,
            ..
        } => format!(
            "{agent_id} reschedule {attempt} in {delay_ms} ms away from {}",
            avoid_node.as_deref().unwrap_or("-")
        ),
        JobEvent::JobPlanned { plan, reason } => {
            let placements = plan
                .get("placements")
                .and_then(serde_json::Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let field =
                                |k| p.get(k).and_then(serde_json::Value::as_str).unwrap_or("?");
                            format!("{}@{}", field("agent_id"), field("node"))
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            match reason {
                Some(r) => format!("{placements} ({r})"),
                None => placements,
            }
        }
        JobEvent::JobPlacementBlocked { reason, .. } => reason.clone(),
        JobEvent::AgentStepFinished {
            agent_id,
            message_id,
            state,
        } => match state {
            Some(s) => format!("{agent_id} done {message_id} state {}", short_json(s, 60)),
            None => format!("{agent_id} done {message_id}"),
        },
        JobEvent::AgentStepFailed {
            agent_id,
            message_id,
            attempt,
            error,
            will_retry,
        } => format!(
            "{agent_id} failed {message_id} attempt {attempt}{}: {}",
            if *will_retry { ", will retry" } else { "" },
            short_json(error, 60)
        ),
        JobEvent::AgentEventRecorded {
            agent_id,
            name,
            payload,
        } => format!("{agent_id} {name} {}", short_json(payload, 60)),
        JobEvent::DeadLettered {
            agent_id, reason, ..
        } => format!("{} {reason}", agent_id.as_deref().unwrap_or("-")),
        JobEvent::ServiceRegistered { instance } => format!(
            "{} on {} ({})",
            instance.service.name,
            instance.node.as_deref().unwrap_or("any node"),
            instance.status.as_str()
        ),
        JobEvent::ServiceDeregistered {
            service_name,
            reason,
            ..
        } => format!("{service_name}: {reason}"),
        JobEvent::ServiceHealthChanged {
            service_name,
            status,
            previous_status,
            ..
        } => format!(
            "{service_name} {} -> {}",
            previous_status.as_str(),
            status.as_str()
        ),
        JobEvent::AgentsReplaced {
            nodes, deployment, ..
        } => format!(
            "{} replaced by version {} ({:?})",
            nodes
                .iter()
                .filter_map(|n| n.get("node_id").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(", "),
            deployment.version,
            deployment.role
        ),
        JobEvent::AgentsPromoted { version } => format!("version {version} promoted"),
    }
}

/// A step in one line: the agent, where its emits went, what it noted.
fn step_summary(step: &crate::domain::event::StepRecord) -> String {
    let mut out = format!("{} done", step.agent_id);
    for e in &step.emits {
        match &e.dead {
            Some(reason) => out.push_str(&format!("; {} dead-lettered: {reason}", e.message_type)),
            None => out.push_str(&format!("; {} -> {}", e.message_type, e.to.join(","))),
        }
    }
    for (name, _) in &step.notes {
        out.push_str(&format!("; {name}"));
    }
    if let Some(s) = &step.state {
        out.push_str(&format!("; state {}", short_json(s, 60)));
    }
    out
}

/// The `history --json` object of one entry.
fn history_json(item: &HistoryItem) -> Value {
    match &item.event {
        Ok(env) => {
            let data = env.payload.readable_data();
            json!({
                "seq": env.seq,
                "time": iso_ms(env.timestamp_ms),
                "timestamp_ms": env.timestamp_ms,
                "type": env.event_type,
                "epoch": env.epoch,
                "event_id": env.event_id,
                "causation_id": env.causation_id,
                "correlation_id": env.correlation_id,
                "summary": summary(&env.payload),
                "data": data,
            })
        }
        Err(e) => json!({"seq": item.seq, "stream_id": item.stream_id, "error": e.to_string()}),
    }
}

fn history_row(item: &HistoryItem) -> Vec<String> {
    match &item.event {
        Ok(env) => vec![
            env.seq.to_string(),
            iso_ms(env.timestamp_ms).unwrap_or_default(),
            env.event_type.clone(),
            env.epoch.to_string(),
            summary(&env.payload),
        ],
        Err(e) => vec![
            item.seq.to_string(),
            String::new(),
            "(undecodable)".into(),
            String::new(),
            format!("{}: {e}", item.stream_id),
        ],
    }
}

/// `job history <id> [--json]`: a table, or one JSON object per line (JSON Lines). Printed
/// page by page; the table's column widths come from the header and the first page.
pub async fn history(source: &mut PageSource, json: bool) -> anyhow::Result<i32> {
    let header = ["SEQ", "TIME", "TYPE", "EPOCH", "SUMMARY"];
    let mut widths: Option<Vec<usize>> = None;
    let mut out = std::io::stdout().lock();
    while let Some(page) = source.next_page().await? {
        if json {
            for item in &page {
                writeln!(out, "{}", history_json(item))?;
            }
            continue;
        }
        let rows: Vec<Vec<String>> = page.iter().map(history_row).collect();
        let widths = widths.get_or_insert_with(|| {
            let w = column_widths(&header, &rows);
            write_row(&mut out, header.iter().copied(), &w);
            w
        });
        for row in &rows {
            write_row(&mut out, row.iter().map(String::as_str), widths);
        }
    }
    if widths.is_none() && !json {
        print_table(&header, &[]);
    }
    Ok(0)
}

fn column_widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths
}

fn write_row<'a>(out: &mut impl Write, cells: impl Iterator<Item = &'a str>, widths: &[usize]) {
    let parts: Vec<String> = cells
        .zip(widths)
        .map(|(c, w)| format!("{c:<w$}", w = *w))
        .collect();
    // stdout going away (a closed pipe) ends the listing, like `print_table`.
    let _ = writeln!(out, "{}", parts.join("  ").trim_end());
}

fn export_line_of(item: HistoryItem) -> ExportLine {
    match item.event {
        Ok(env) => ExportLine::Event(Box::new(env)),
        Err(e) => ExportLine::Undecodable {
            seq: item.seq,
            stream_id: item.stream_id,
            error: e.to_string(),
        },
    }
}

/// Writes every line of the history to `out`; returns how many.
async fn write_export(source: &mut PageSource, out: &mut impl Write) -> anyhow::Result<usize> {
    let mut count = 0usize;
    while let Some(page) = source.next_page().await? {
        for item in page {
            out.write_all(export_line(&export_line_of(item))?.as_bytes())?;
            out.write_all(b"\n")?;
            count += 1;
        }
    }
    out.flush()?;
    Ok(count)
}

/// `job export <id> -o FILE` (`-o -` writes to stdout). A file is written beside its final
/// name and renamed at the end, so a failed export never leaves a truncated file behind.
pub async fn export(source: &mut PageSource, output: &Path) -> anyhow::Result<i32> {
    if output == Path::new("-") {
        write_export(
            source,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        )
        .await?;
        return Ok(0);
    }
    let name = output
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("-o {} does not name a file", output.display()))?;
    let partial = output.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let file = std::fs::File::create(&partial)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
    let written = write_export(source, &mut std::io::BufWriter::new(file)).await;
    let count = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, output)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
    eprintln!(
        "exported {count} events of job {} to {}",
        source.job_id(),
        output.display()
    );
    Ok(0)
}

/// `job replay <id> [--until|--at]` from a store or a server: folds page by page.
pub async fn replay_stored(source: &mut PageSource, args: &ReplayArgs) -> anyhow::Result<i32> {
    let point = args.point()?;
    let mut state = Replay::new(source.job_id());
    'pages: while let Some(page) = source.next_page().await? {
        for item in &page {
            let e = entry(item);
            if Replay::beyond(point, e) {
                break 'pages;
            }
            state.apply(e);
        }
    }
    print_report(&state.report(), args.json)
}

/// The job id a stored replay is of (the file form needs none). Checks `--at` first, so a
/// bad time is refused before any store or server is asked.
pub fn replay_job_id(args: &ReplayArgs) -> anyhow::Result<&str> {
    args.point()?;
    args.job_id
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("job replay needs a job id or --file"))
}

/// Replays an export file; pure apart from reading the file.
pub fn replay_file(
    file: &Path,
    job_id: Option<&str>,
    point: ReplayPoint,
) -> anyhow::Result<ReplayReport> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let export = parse_export(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if let Some(id) = job_id
        && id != export.job_id
    {
        anyhow::bail!(
            "{} is an export of job {}, not {id}",
            file.display(),
            export.job_id
        );
    }
    Ok(replay(
        &export.job_id,
        export.lines.iter().map(ExportLine::entry),
        point,
    )
    .report())
}

/// `job replay --file FILE [--until|--at]`: no Redis, no server.
pub fn replay_offline(args: &ReplayArgs) -> anyhow::Result<i32> {
    let file = args
        .file
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("job replay --file needs a file"))?;
    let report = replay_file(file, args.job_id.as_deref(), args.point()?)?;
    print_report(&report, args.json)
}

fn message_line(m: &crate::domain::replay::MessageRef) -> String {
    let attempt = m.attempt.map_or(String::new(), |a| format!(" attempt {a}"));
    format!(
        "{} {} from {}{attempt}  {}",
        m.message_id,
        m.message_type,
        m.from,
        short_json(&m.body, 80)
    )
}

fn print_report(report: &ReplayReport, json: bool) -> anyhow::Result<i32> {
    if json {
        print_json(report)?;
        return Ok(0);
    }
    println!(
        "job {}  {}  at seq {}{}",
        report.job_id,
        report.status.map_or("-".to_string(), |s| s.to_string()),
        report.seq,
        report
            .at
            .as_ref()
            .map_or(String::new(), |t| format!(" ({t})"))
    );
    let v = &report.view;
    println!(
        "messages: {}  steps: {} ok / {} failed  dead letters: {}",
        v.messages_sent, v.steps_finished, v.steps_failed, v.dead_letters
    );
    if let Some(owner) = &report.lease_owner {
        println!("lease: {owner} (epoch {})", report.lease_epoch);
    }
    if !report.undecodable_seqs.is_empty() {
        println!("undecodable entries skipped: {:?}", report.undecodable_seqs);
    }
    if let Some(result) = &report.result {
        println!("result: {}", short_json(result, 400));
    }
    println!();
    let rows: Vec<Vec<String>> = report
        .agents
        .iter()
        .map(|a| {
            vec![
                a.agent_id.clone(),
                a.status.clone(),
                a.processed.to_string(),
                a.queue_length.to_string(),
                match a.inflight.as_slice() {
                    [] => "-".to_string(),
                    [m] => m.message_id.clone(),
                    [m, rest @ ..] => format!("{} (+{})", m.message_id, rest.len()),
                },
                a.failed_attempts.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "AGENT",
            "STATUS",
            "PROCESSED",
            "QUEUED",
            "IN FLIGHT",
            "FAILURES",
        ],
        &rows,
    );
    let queued: Vec<_> = report
        .agents
        .iter()
        .filter(|a| !a.queue.is_empty())
        .collect();
    if !queued.is_empty() {
        println!("\nqueues:");
        for a in queued {
            for m in &a.queue {
                println!("  {}: {}", a.agent_id, message_line(m));
            }
        }
    }
    let inflight: Vec<_> = report
        .agents
        .iter()
        .flat_map(|a| a.inflight.iter().map(move |m| (a, m)))
        .collect();
    if !inflight.is_empty() {
        println!("\nin flight:");
        for (a, m) in inflight {
            println!("  {}: {}", a.agent_id, message_line(m));
        }
    }
    if !report.dead_letters.is_empty() {
        println!("\ndead letters:");
        let rows = serde_json::to_value(&report.dead_letters)?;
        print_dead_letters(rows.as_array().map_or(&[][..], Vec::as_slice));
    }
    Ok(0)
}
