//! `mirror-neuron job wait <id>`: waits for a job to end (it runs elsewhere: on a server, or
//! in another process on this store), showing its progress. Exit 0 when it completed, 1 when
//! it failed or was cancelled, or when `--timeout` passed first (the job goes on).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::jobs::Jobs;
use super::output::{print_json, short_json};
use super::progress::JobProgress;
use crate::domain::job::JobStatus;

/// How often the job's record is read.
const POLL: Duration = Duration::from_millis(250);

pub async fn wait(
    jobs: &mut Jobs<'_>,
    job_id: &str,
    timeout: Option<Duration>,
    json: bool,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let mut progress = JobProgress::new(job_id, !json);
    let (record, timed_out) = loop {
        let record = jobs.record(job_id).await?;
        progress.update(&record);
        if status_of(&record).is_some_and(JobStatus::is_terminal) {
            break (record, false);
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            break (record, true);
        }
        tokio::time::sleep(POLL).await;
    };
    progress.finish(&record);
    if json {
        print_json(&record)?;
    } else if let Some(result) = record.get("result").filter(|r| !r.is_null()) {
        println!("result: {}", short_json(result, 2000));
    }
    if timed_out {
        eprintln!(
            "timed out after {} s; job {job_id} is still {}",
            timeout.map_or(0, |t| t.as_secs()),
            record.get("status").and_then(Value::as_str).unwrap_or("-")
        );
        return Ok(1);
    }
    Ok(if status_of(&record) == Some(JobStatus::Completed) {
        0
    } else {
        1
    })
}

fn status_of(record: &Value) -> Option<JobStatus> {
    record
        .get("status")
        .and_then(Value::as_str)
        .and_then(JobStatus::parse)
}
