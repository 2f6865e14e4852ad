//! `mirror-neuron job events <id> [--json] [--follow]`: the raw history, optionally live.

use std::time::Duration;

use super::output::{print_json, short_json};
use crate::domain::view::iso_ms;
use crate::store::{HistoryItem, Store};

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

/// Prints the history; with `follow`, keeps polling for new events until a terminal one.
pub async fn print(store: &Store, job_id: &str, json: bool, follow: bool) -> anyhow::Result<i32> {
    let history = store.history(job_id, 1, None).await?;
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
        batch = store.history(job_id, last + 1, None).await?;
    }
}
