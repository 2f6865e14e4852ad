//! Replay for debugging: rebuild a job as it stood at any point of its history.
//!
//! A replay folds a prefix of the history twice, with the very functions the runtime uses:
//! the decider's [`evolve`] (queues, in-flight messages, agent state: what the owner saw) and
//! the read views' [`JobProjection::apply`] (the job row, agent rows and dead letters: what
//! `job inspect` showed). Nothing here is a second implementation of the rules, so a replay to
//! the end agrees with the live views, and a replay to seq N is what the owner knew at N.
//!
//! The export format (one JSON object per line, see [`export_line`]) lives here too, because
//! it must stay decodable by every later build: it is the envelope's own serde shape.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::event::EventEnvelope;
use crate::domain::job::{JobState, JobStatus, evolve};
use crate::domain::message::Message;
use crate::domain::view::{AgentView, DeadLetterView, JobProjection, JobView, iso_ms};

/// Where a replay stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayPoint {
    /// The whole history.
    End,
    /// Every event with `seq <= n`.
    Seq(u64),
    /// The longest prefix of the history whose events were all written at or before this
    /// time (milliseconds since the epoch). A prefix, not a filter: a state is only ever
    /// the fold of a prefix, even when writers' clocks disagree.
    Time(i64),
}

/// One history entry as replay sees it.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    Event(&'a EventEnvelope),
    /// An entry that could not be decoded; it still takes up its seq.
    Undecodable {
        seq: u64,
    },
}

/// The job rebuilt from a prefix of its history.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// The decider's state, exactly as the owner folds it.
    pub state: JobState,
    /// The read views, exactly as the projection workers fold them.
    pub projection: JobProjection,
    /// Events applied (undecodable entries excluded).
    pub applied: u64,
    /// Seqs of undecodable entries stepped over.
    pub undecodable: Vec<u64>,
    /// Time of the last applied event.
    pub last_timestamp_ms: Option<i64>,
}

impl Replay {
    /// An empty replay of `job_id`.
    pub fn new(job_id: &str) -> Replay {
        Replay {
            state: JobState::new(job_id),
            ..Default::default()
        }
    }

    /// True when `entry` lies beyond `point` (replay stops before it).
    pub fn beyond(point: ReplayPoint, entry: Entry<'_>) -> bool {
        match (point, entry) {
            (ReplayPoint::End, _) => false,
            (ReplayPoint::Seq(n), Entry::Event(e)) => e.seq > n,
            (ReplayPoint::Seq(n), Entry::Undecodable { seq }) => seq > n,
            (ReplayPoint::Time(t), Entry::Event(e)) => e.timestamp_ms > t,
            // Its time is unknown; it changes no state, so keeping it costs nothing.
            (ReplayPoint::Time(_), Entry::Undecodable { .. }) => false,
        }
    }

    /// Applies one entry with the runtime's own folds.
    pub fn apply(&mut self, entry: Entry<'_>) {
        match entry {
            Entry::Event(env) => {
                self.state = evolve(std::mem::take(&mut self.state), env);
                self.projection.apply(env);
                self.applied += 1;
                self.last_timestamp_ms = Some(env.timestamp_ms);
            }
            Entry::Undecodable { seq } => {
                self.state.seq = self.state.seq.max(seq);
                self.projection.skip_undecodable(seq);
                self.undecodable.push(seq);
            }
        }
    }

    /// The seq the replay reached.
    pub fn seq(&self) -> u64 {
        self.state.seq
    }
}

/// Replays `entries` (in history order) up to `point`.
pub fn replay<'a>(
    job_id: &str,
    entries: impl IntoIterator<Item = Entry<'a>>,
    point: ReplayPoint,
) -> Replay {
    let mut replay = Replay::new(job_id);
    for entry in entries {
        if Replay::beyond(point, entry) {
            break;
        }
        replay.apply(entry);
    }
    replay
}

/// A message waiting in a queue or in flight, as a report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRef {
    pub message_id: String,
    pub from: String,
    #[serde(rename = "type")]
    pub message_type: String,
    /// Attempt number of an in-flight message; absent for a queued one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attempt: Option<u32>,
    pub body: Value,
}

impl MessageRef {
    fn of(m: &Message, attempt: Option<u32>) -> MessageRef {
        MessageRef {
            message_id: m.message_id.clone(),
            from: m.from.clone(),
            message_type: m.message_type.clone(),
            attempt,
            body: m.body.clone(),
        }
    }
}

/// One agent at the replay point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReport {
    pub agent_id: String,
    /// `idle`, `queued`, `running` or `error`, as the agent view computes it.
    pub status: String,
    pub processed: u64,
    pub failed_attempts: u64,
    pub queue_length: usize,
    pub queue: Vec<MessageRef>,
    /// Messages in flight, oldest first (several with `config.concurrency`).
    pub inflight: Vec<MessageRef>,
    pub last_error: Option<Value>,
    /// The agent's local state (aggregator bodies, executor `next_state`).
    pub state: Value,
}

/// What `job replay` prints: the job, its agents, queues and dead letters at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayReport {
    pub job_id: String,
    /// Last seq folded.
    pub seq: u64,
    /// Events applied (undecodable entries excluded).
    pub events_applied: u64,
    pub undecodable_seqs: Vec<u64>,
    pub at: Option<String>,
    pub at_ms: Option<i64>,
    pub status: Option<JobStatus>,
    pub result: Option<Value>,
    pub lease_owner: Option<String>,
    pub lease_epoch: u64,
    /// The job row as the projections would have shown it at this point.
    pub view: JobView,
    /// Every agent of the graph, and any other agent the history mentions.
    pub agents: Vec<AgentReport>,
    pub dead_letters: Vec<DeadLetterView>,
}

impl Replay {
    /// The report of this replay.
    pub fn report(&self) -> ReplayReport {
        let state = &self.state;
        let mut ids: Vec<String> = state
            .graph
            .as_ref()
            .map(|g| g.nodes.iter().map(|n| n.node_id.clone()).collect())
            .unwrap_or_default();
        for id in state.agents.keys().chain(self.projection.agents.keys()) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        let agents = ids
            .into_iter()
            .map(|id| {
                let runtime = state.agents.get(&id).cloned().unwrap_or_default();
                let view = self.projection.agents.get(&id);
                AgentReport {
                    status: view
                        .map_or_else(|| "idle".to_string(), |v: &AgentView| v.status.clone()),
                    processed: runtime.processed,
                    failed_attempts: runtime.failed_attempts,
                    queue_length: runtime.queue.len(),
                    queue: runtime
                        .queue
                        .iter()
                        .map(|m| MessageRef::of(m, None))
                        .collect(),
                    inflight: runtime
                        .inflight
                        .iter()
                        .map(|f| MessageRef::of(&f.message, Some(f.attempt)))
                        .collect(),
                    last_error: runtime.last_error.clone(),
                    state: runtime.state.clone(),
                    agent_id: id,
                }
            })
            .collect();
        ReplayReport {
            job_id: state.job_id.clone(),
            seq: state.seq,
            events_applied: self.applied,
            undecodable_seqs: self.undecodable.clone(),
            at: self.last_timestamp_ms.and_then(iso_ms),
            at_ms: self.last_timestamp_ms,
            status: state.status,
            result: state.result.clone(),
            lease_owner: state.lease_owner.clone(),
            lease_epoch: state.lease_epoch,
            view: self.projection.job.clone(),
            agents,
            dead_letters: self.projection.new_dead_letters.clone(),
        }
    }
}

/// One line of an export: a decoded envelope, or a marker for an entry that was not.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportLine {
    Event(Box<EventEnvelope>),
    Undecodable {
        seq: u64,
        stream_id: String,
        error: String,
    },
}

impl ExportLine {
    /// The entry replay folds for this line.
    pub fn entry(&self) -> Entry<'_> {
        match self {
            ExportLine::Event(e) => Entry::Event(e),
            ExportLine::Undecodable { seq, .. } => Entry::Undecodable { seq: *seq },
        }
    }
}

/// Key that marks an undecodable entry's line in an export.
const UNDECODABLE_KEY: &str = "undecodable";

/// The JSON line (no trailing newline) for an export entry. An event is its envelope's own
/// JSON shape (payload included), so it decodes back into an equal envelope.
pub fn export_line(line: &ExportLine) -> Result<String, serde_json::Error> {
    match line {
        ExportLine::Event(env) => serde_json::to_string(&env.to_json()),
        ExportLine::Undecodable {
            seq,
            stream_id,
            error,
        } => serde_json::to_string(&serde_json::json!({
            "seq": seq,
            "stream_id": stream_id,
            UNDECODABLE_KEY: error,
        })),
    }
}

/// Why an export file could not be read back.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("the export holds no events")]
    Empty,
    #[error("line {line}: event of job {found}, but the export is of job {expected}")]
    MixedJobs {
        line: usize,
        expected: String,
        found: String,
    },
    #[error("line {line}: seq {seq} does not follow seq {previous}")]
    OutOfOrder {
        line: usize,
        seq: u64,
        previous: u64,
    },
}

/// A parsed export: the job id and its entries in history order.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub job_id: String,
    pub lines: Vec<ExportLine>,
}

/// Parses an export (blank lines are ignored). Checks that every event belongs to one job and
/// that seqs increase, so a concatenated or shuffled file is refused rather than misreplayed.
pub fn parse_export(text: &str) -> Result<Export, ImportError> {
    let mut lines = Vec::new();
    let mut job_id: Option<String> = None;
    let mut previous = 0u64;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| ImportError::Line { line, reason };
        let value: Value = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        let parsed = if let Some(error) = value.get(UNDECODABLE_KEY) {
            ExportLine::Undecodable {
                seq: value
                    .get("seq")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("undecodable entry without a seq".into()))?,
                stream_id: value
                    .get("stream_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                error: error.as_str().unwrap_or_default().to_string(),
            }
        } else {
            let env: EventEnvelope =
                serde_json::from_value(value).map_err(|e| bad(format!("not an event: {e}")))?;
            match &job_id {
                None => job_id = Some(env.job_id.clone()),
                Some(expected) if *expected != env.job_id => {
                    return Err(ImportError::MixedJobs {
                        line,
                        expected: expected.clone(),
                        found: env.job_id,
                    });
                }
                Some(_) => {}
            }
            ExportLine::Event(Box::new(env))
        };
        let seq = match &parsed {
            ExportLine::Event(e) => e.seq,
            ExportLine::Undecodable { seq, .. } => *seq,
        };
        if seq <= previous {
            return Err(ImportError::OutOfOrder {
                line,
                seq,
                previous,
            });
        }
        previous = seq;
        lines.push(parsed);
    }
    let job_id = job_id.ok_or(ImportError::Empty)?;
    Ok(Export { job_id, lines })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{JobEvent, JobSubmitted, SCHEMA_VERSION};
    use serde_json::json;

    fn env(seq: u64, ts: i64, payload: JobEvent) -> EventEnvelope {
        EventEnvelope {
            event_id: format!("e{seq}"),
            job_id: "job-1".into(),
            seq,
            event_type: payload.type_name().into(),
            schema_version: SCHEMA_VERSION,
            timestamp_ms: ts,
            epoch: 1,
            causation_id: None,
            correlation_id: None,
            payload,
        }
    }

    fn message(id: &str, to: &str) -> Message {
        Message {
            message_id: id.into(),
            job_id: "job-1".into(),
            from: "runtime".into(),
            to: to.into(),
            message_type: "work".into(),
            class: "event".into(),
            correlation_id: None,
            causation_id: None,
            content_type: "application/json".into(),
            content_encoding: "identity".into(),
            headers: Default::default(),
            body: json!({"x": 0.1 + 0.2, "big": u64::MAX, "neg": -7}),
            artifacts: vec![],
            stream: None,
            timestamp_ms: 0,
        }
    }

    fn history() -> Vec<EventEnvelope> {
        let manifest = crate::domain::manifest::parse_manifest(&json!({
            "manifest_version": "1.0",
            "graph_id": "g",
            "entrypoints": ["a"],
            "nodes": [
                {"node_id": "a", "agent_type": "executor", "config": {"command": ["true"]}},
                {"node_id": "b", "agent_type": "aggregator", "config": {"complete_after": 1}}
            ],
            "edges": [
                {"edge_id": "e", "from_node": "a", "to_node": "b", "message_type": "executor_result"}
            ]
        }))
        .expect("a valid manifest")
        .to_value();
        vec![
            env(
                1,
                1_000,
                JobEvent::JobSubmitted(JobSubmitted {
                    graph_id: "g".into(),
                    job_name: "g".into(),
                    manifest,
                    bundle_path: None,
                    bundle_digest: None,
                    deployment: None,
                    submitted_at_ms: 1_000,
                }),
            ),
            env(2, 2_000, JobEvent::JobStarted),
            env(
                3,
                3_000,
                JobEvent::MessageSent {
                    message: message("m1", "a"),
                },
            ),
            env(
                4,
                4_000,
                JobEvent::MessageSent {
                    message: message("m2", "a"),
                },
            ),
            env(
                5,
                5_000,
                JobEvent::AgentStepStarted {
                    agent_id: "a".into(),
                    message_id: "m1".into(),
                    attempt: 1,
                    node: None,
                },
            ),
            env(
                6,
                6_000,
                JobEvent::DeadLettered {
                    agent_id: Some("a".into()),
                    reason: "no route".into(),
                    message: json!({"m": 1}),
                },
            ),
            env(
                7,
                7_000,
                JobEvent::AgentStepFinished {
                    agent_id: "a".into(),
                    message_id: "m1".into(),
                    state: Some(json!({"n": 1})),
                },
            ),
            env(8, 8_000, JobEvent::JobCompleted { result: json!(1) }),
        ]
    }

    fn entries(h: &[EventEnvelope]) -> impl Iterator<Item = Entry<'_>> {
        h.iter().map(Entry::Event)
    }

    #[test]
    fn until_seq_shows_queue_and_inflight_at_that_point() {
        let h = history();
        let r = replay("job-1", entries(&h), ReplayPoint::Seq(6)).report();
        assert_eq!(r.seq, 6);
        assert_eq!(r.status, Some(JobStatus::Running));
        let a = r
            .agents
            .iter()
            .find(|a| a.agent_id == "a")
            .expect("agent a");
        assert_eq!(a.queue_length, 1);
        assert_eq!(a.queue[0].message_id, "m2");
        assert_eq!(
            a.inflight.first().map(|m| m.message_id.as_str()),
            Some("m1")
        );
        assert_eq!(a.inflight.first().and_then(|m| m.attempt), Some(1));
        assert_eq!(a.status, "running");
        // Agent b is in the graph but never got a message.
        let b = r
            .agents
            .iter()
            .find(|a| a.agent_id == "b")
            .expect("agent b");
        assert_eq!((b.processed, b.queue_length), (0, 0));
        assert_eq!(r.dead_letters.len(), 1);
        assert_eq!(r.view.dead_letters, 1);
    }

    #[test]
    fn until_time_stops_at_the_first_later_event() {
        let h = history();
        let r = replay("job-1", entries(&h), ReplayPoint::Time(4_500)).report();
        assert_eq!(r.seq, 4);
        assert_eq!(r.at_ms, Some(4_000));
        let before = replay("job-1", entries(&h), ReplayPoint::Time(500)).report();
        assert_eq!((before.seq, before.status), (0, None));
    }

    #[test]
    fn end_matches_the_runtime_folds() {
        let h = history();
        let r = replay("job-1", entries(&h), ReplayPoint::End);
        assert_eq!(r.state, crate::domain::job::fold("job-1", &h));
        let mut view = JobProjection::default();
        for e in &h {
            view.apply(e);
        }
        assert_eq!(r.projection, view);
        let report = r.report();
        assert_eq!(report.status, Some(JobStatus::Completed));
        let a = report.agents.iter().find(|a| a.agent_id == "a").expect("a");
        assert_eq!((a.processed, a.state.clone()), (1, json!({"n": 1})));
    }

    #[test]
    fn undecodable_entries_keep_their_seq() {
        let h = history();
        let mut with_gap: Vec<Entry> = entries(&h[..2]).collect();
        with_gap.push(Entry::Undecodable { seq: 3 });
        let r = replay("job-1", with_gap, ReplayPoint::End);
        assert_eq!(r.seq(), 3);
        assert_eq!(r.projection.job.last_seq, 3);
        assert_eq!(r.report().undecodable_seqs, vec![3]);
    }

    #[test]
    fn export_round_trips_every_envelope_exactly() {
        let h = history();
        let mut lines: Vec<ExportLine> = h
            .iter()
            .map(|e| ExportLine::Event(Box::new(e.clone())))
            .collect();
        lines.insert(
            8,
            ExportLine::Undecodable {
                seq: 9,
                stream_id: "9-0".into(),
                error: "corrupt event: x".into(),
            },
        );
        let text: String = lines
            .iter()
            .map(|l| export_line(l).expect("encode") + "\n")
            .collect();
        let back = parse_export(&text).expect("parse");
        assert_eq!(back.job_id, "job-1");
        assert_eq!(back.lines, lines);
    }

    #[test]
    fn bad_exports_are_refused_with_the_line() {
        let h = history();
        let l1 = export_line(&ExportLine::Event(Box::new(h[0].clone()))).expect("encode");
        let l2 = export_line(&ExportLine::Event(Box::new(h[1].clone()))).expect("encode");
        assert_eq!(parse_export(""), Err(ImportError::Empty));
        assert!(matches!(
            parse_export(&format!("{l1}\nnot json\n")),
            Err(ImportError::Line { line: 2, .. })
        ));
        assert!(matches!(
            parse_export(&format!("{l2}\n{l1}\n")),
            Err(ImportError::OutOfOrder { line: 2, .. })
        ));
        let mut other = h[1].clone();
        other.job_id = "job-2".into();
        let l3 = export_line(&ExportLine::Event(Box::new(other))).expect("encode");
        assert!(matches!(
            parse_export(&format!("{l1}\n{l3}\n")),
            Err(ImportError::MixedJobs { line: 2, .. })
        ));
        assert!(matches!(
            parse_export("{\"seq\": 1}\n"),
            Err(ImportError::Line { line: 1, .. })
        ));
    }
}
