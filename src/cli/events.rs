//! `mirror-neuron job events <id> [--json] [--follow]`: the raw history, optionally live, and
//! `job dead-letters`, read from the history.

use std::time::Duration;

use serde_json::Value;

use super::jobs::Jobs;
use super::output::{print_json, short_json};
use crate::domain::view::iso_ms;
use crate::store::HistoryItem;

/// How often `--follow` looks for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

fn item_json(h: &HistoryItem) -> serde_json::Value {
    match &h.event {
        Ok(env) => env.to_json(),
        Err(e) => {
            serde_json::json!({"seq": h.seq, "stream_id": h.stream_id, "error": e.to_string()})
        }
    }
}

fn print_line(h: &HistoryItem) {
    match &h.event {
        Ok(env) => {
            let data = env.payload.readable_data();
            println!(
                "{:>5}  {}  {:<22} {}",
                env.seq,
                iso_ms(env.timestamp_ms).unwrap_or_default(),
                env.event_type,
                short_json(&data, 120)
            );
        }
        Err(e) => println!("{:>5}  (undecodable entry {}: {e})", h.seq, h.stream_id),
    }
}

fn is_terminal(h: &HistoryItem) -> bool {
    h.event.as_ref().is_ok_and(|env| env.payload.is_terminal())
}

/// Every entry of a job's history from `from_seq`, read page by page.
async fn read_from(
    jobs: &mut Jobs<'_>,
    job_id: &str,
    from_seq: u64,
) -> anyhow::Result<Vec<HistoryItem>> {
    let mut source = jobs.history(job_id, from_seq).await?;
    let mut all = Vec::new();
    while let Some(page) = source.next_page().await? {
        all.extend(page);
    }
    Ok(all)
}

/// Prints the history; with `follow`, keeps polling for new events until a terminal one.
/// The same pages come from this machine's store or a server, so both print the same.
pub async fn print(
    jobs: &mut Jobs<'_>,
    job_id: &str,
    json: bool,
    follow: bool,
) -> anyhow::Result<i32> {
    let history = read_from(jobs, job_id, 1).await?;
    if history.is_empty() {
        anyhow::bail!("job {job_id} was not found");
    }
    if json && !follow {
        print_json(&history.iter().map(item_json).collect::<Vec<_>>())?;
        return Ok(0);
    }
    let mut last = 0;
    let mut batch = history;
    loop {
        for h in &batch {
            if json {
                println!("{}", item_json(h));
            } else {
                print_line(h);
            }
            last = last.max(h.seq);
        }
        if !follow || batch.iter().any(is_terminal) {
            return Ok(0);
        }
        tokio::time::sleep(FOLLOW_POLL).await;
        batch = read_from(jobs, job_id, last + 1).await?;
    }
}

/// The job's dead letters, as the server's `StreamEvents` reports them (`dead_letter` rows
/// with `agent_id`, `reason`, `message`), read from its history on either side.
pub async fn dead_letters(jobs: &mut Jobs<'_>, job_id: &str) -> anyhow::Result<Vec<Value>> {
    let mut source = jobs.history(job_id, 1).await?;
    let mut rows = Vec::new();
    while let Some(page) = source.next_page().await? {
        for env in page.iter().filter_map(|h| h.event.as_ref().ok()) {
            rows.extend(
                crate::api::event_json::to_json_events(env)
                    .into_iter()
                    .filter(|e| e.get("type").and_then(Value::as_str) == Some("dead_letter")),
            );
        }
    }
    Ok(rows)
}
