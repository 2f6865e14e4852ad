//! Live progress of one job, for `run --wait` (local or `--target`) and `job wait`.
//!
//! On a terminal: one bar redrawn in place, steps done against the messages delivered so far
//! (every delivered message is a step to run, so the total grows as the job fans out), with
//! failures, dead letters and the elapsed time. Elsewhere (a pipe, a log file, CI): a plain
//! line when the status changes and at most one every [`PLAIN_EVERY`] in between. Either way
//! the run ends with one summary line. Everything goes to stderr; stdout keeps the result.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::job::JobStatus;

/// How often a plain (non-terminal) progress line may be printed while nothing changes.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The counters of a job record (`api::job_json::record`, or a list row with counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub status: String,
    pub steps_ok: u64,
    pub steps_failed: u64,
    pub messages: u64,
    pub dead_letters: u64,
}

impl Counts {
    pub fn of(record: &Value) -> Counts {
        let c = &record["counters"];
        let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
        Counts {
            status: record
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string(),
            steps_ok: n("steps_finished"),
            steps_failed: n("steps_failed"),
            messages: n("messages_sent"),
            dead_letters: n("dead_letters"),
        }
    }

    fn done(&self) -> u64 {
        self.steps_ok + self.steps_failed
    }

    /// Steps known so far: at least one per delivered message, never less than done.
    fn total(&self) -> u64 {
        self.messages.max(self.done())
    }

    fn line(&self, elapsed: Duration) -> String {
        format!(
            "{}: {}/{} steps, {} failed, {} messages, {} dead letters, {:.1} s",
            self.status,
            self.done(),
            self.total(),
            self.steps_failed,
            self.messages,
            self.dead_letters,
            elapsed.as_secs_f64()
        )
    }
}

enum Display {
    Bar(indicatif::ProgressBar),
    Plain { last: Option<(String, Instant)> },
    Off,
}

/// The progress display of one job.
pub struct JobProgress {
    job_id: String,
    started: Instant,
    display: Display,
}

impl JobProgress {
    /// `show`: whether progress is wanted at all (`--wait` without `--json`).
    pub fn new(job_id: &str, show: bool) -> JobProgress {
        let display = if !show {
            Display::Off
        } else if std::io::stderr().is_terminal() {
            // No length until a message is known: an empty bar, not a full "0/0".
            let bar = indicatif::ProgressBar::no_length();
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {prefix} [{bar:28}] {pos}/{len} steps  {msg}  {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix("pending");
            bar.enable_steady_tick(Duration::from_millis(120));
            Display::Bar(bar)
        } else {
            Display::Plain { last: None }
        };
        JobProgress {
            job_id: job_id.to_string(),
            started: Instant::now(),
            display,
        }
    }

    /// Shows the job as `record` says it is now.
    pub fn update(&mut self, record: &Value) {
        let counts = Counts::of(record);
        let elapsed = self.started.elapsed();
        match &mut self.display {
            Display::Bar(bar) => {
                bar.set_prefix(counts.status.clone());
                if counts.total() > 0 {
                    bar.set_length(counts.total());
                }
                bar.set_position(counts.done());
                bar.set_message(format!(
                    "{} failed  {} messages  {} dead letters",
                    counts.steps_failed, counts.messages, counts.dead_letters
                ));
            }
            Display::Plain { last } => {
                // The end is the summary's to say, once.
                let ended = JobStatus::parse(&counts.status).is_some_and(JobStatus::is_terminal);
                let due = !ended
                    && last.as_ref().is_none_or(|(status, at)| {
                        *status != counts.status || at.elapsed() >= PLAIN_EVERY
                    });
                if due {
                    eprintln!("{}", counts.line(elapsed));
                    *last = Some((counts.status.clone(), Instant::now()));
                }
            }
            Display::Off => {}
        }
    }

    /// Clears the bar and prints the one summary line.
    pub fn finish(&mut self, record: &Value) {
        if let Display::Bar(bar) = &self.display {
            bar.finish_and_clear();
        }
        if !matches!(self.display, Display::Off) {
            let counts = Counts::of(record);
            eprintln!(
                "job {} {}",
                self.job_id,
                counts.line(self.started.elapsed())
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn steps_are_counted_against_the_messages_delivered() {
        let record = json!({"status": "running", "counters": {
            "steps_finished": 7, "steps_failed": 1, "messages_sent": 20, "dead_letters": 2}});
        let c = Counts::of(&record);
        assert_eq!((c.done(), c.total()), (8, 20));
        assert_eq!(
            c.line(Duration::from_millis(1500)),
            "running: 8/20 steps, 1 failed, 20 messages, 2 dead letters, 1.5 s"
        );
        // Never a total below what is done (seeds are steps without a message_sent).
        let c = Counts::of(&json!({"counters": {"steps_finished": 5, "messages_sent": 3}}));
        assert_eq!(c.total(), 5);
    }
}
