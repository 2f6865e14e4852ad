//! A batch job with nothing left to do: every queue empty, nothing in flight, no restart or
//! placement pending. If some of its messages could not be delivered, nothing will ever
//! complete it, so it fails with a reason naming the dead letters instead of staying
//! `running` forever with nothing in flight (core-spec 13.7 dropped such messages silently).
//! A quiescent job without dead letters is left alone: that shape is a manifest whose sink
//! never completes, which `validate` is the place to catch.

use serde_json::{Value, json};

use super::state::JobState;
use super::status::JobStatus;
use crate::domain::manifest::JobType;

/// How many dead letters a job keeps in its state to explain a failure.
pub const DEAD_LETTER_SAMPLES: usize = 3;

/// One dead letter as the decider remembers it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetterSample {
    pub agent_id: Option<String>,
    pub reason: String,
}

/// Counts a dead letter and keeps the first few.
pub fn remember_dead_letter(state: &mut JobState, agent_id: Option<&str>, reason: &str) {
    state.dead_letters += 1;
    if state.dead_letter_samples.len() < DEAD_LETTER_SAMPLES {
        state.dead_letter_samples.push(DeadLetterSample {
            agent_id: agent_id.map(str::to_string),
            reason: reason.to_string(),
        });
    }
}

/// Whether nothing in the job can move any more.
fn quiescent(state: &JobState) -> bool {
    state.placement_blocked.is_none() && state.agents.values().all(|a| a.is_quiet())
}

/// For a running batch job that is quiescent with dead letters: the result to fail it with.
pub fn stalled_on_dead_letters(state: &JobState) -> Option<Value> {
    let manifest = state.graph.as_ref()?;
    if manifest.job_type != JobType::Batch
        || state.status != Some(JobStatus::Running)
        || state.dead_letters == 0
        || !quiescent(state)
    {
        return None;
    }
    let examples: Vec<String> = state
        .dead_letter_samples
        .iter()
        .map(|d| match &d.agent_id {
            Some(agent) => format!("from {agent}: {}", d.reason),
            None => d.reason.clone(),
        })
        .collect();
    Some(json!({
        "reason": format!(
            "nothing left to run and nothing completed the job: {} message(s) were dead-lettered ({}); see `job dead-letters`",
            state.dead_letters,
            examples.join("; ")
        ),
        "kind": "dead_letters",
        "dead_letters": state.dead_letters,
        "first_dead_letters": state.dead_letter_samples,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::event::{EventEnvelope, JobEvent, SCHEMA_VERSION};
    use crate::domain::job::{JobCommand, decide, fold};

    fn manifest(job_type: &str) -> serde_json::Value {
        let parsed = crate::domain::manifest::parse_manifest(&json!({
            "manifest_version": "1.0", "graph_id": "g", "type": job_type,
            "entrypoints": ["a"],
            "nodes": [
                {"node_id": "a", "agent_type": "router", "config": {"emit_type": "nowhere"}},
                {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
            ],
            "edges": [{"from_node": "a", "to_node": "sink", "message_type": "x"}]
        }))
        .expect("valid manifest");
        parsed.to_value()
    }

    /// Submits, starts and runs router `a` once: its one emit has no edge.
    fn after_dead_letter(job_type: &str) -> JobState {
        let mut history: Vec<EventEnvelope> = vec![];
        let mut state = JobState::new("j");
        let seed = crate::domain::job::seed_messages(
            "j",
            &crate::domain::manifest::Manifest::from_normalised(&manifest(job_type))
                .expect("manifest"),
            0,
        )
        .remove(0);
        let outcome = crate::domain::agents::StepOutcome {
            emits: vec![crate::domain::agents::Emit::routed("nowhere", json!({}))],
            ..Default::default()
        };
        for cmd in [
            JobCommand::Submit {
                graph_id: "g".into(),
                job_name: "g".into(),
                manifest: manifest(job_type),
                bundle_path: None,
                bundle_digest: None,
                deployment: None,
                now_ms: 0,
            },
            JobCommand::Start,
            JobCommand::FinishStep {
                agent_id: "a".into(),
                message_id: seed.message_id.clone(),
                outcome,
            },
        ] {
            for payload in decide(&state, &cmd).expect("decided") {
                history.push(EventEnvelope {
                    event_id: String::new(),
                    job_id: "j".into(),
                    seq: history.len() as u64 + 1,
                    event_type: payload.type_name().into(),
                    schema_version: SCHEMA_VERSION,
                    timestamp_ms: 1,
                    epoch: 0,
                    causation_id: None,
                    correlation_id: None,
                    payload,
                });
            }
            state = fold("j", &history);
        }
        state
    }

    #[test]
    fn a_batch_job_with_nothing_left_but_dead_letters_fails_with_them() {
        let state = after_dead_letter("batch");
        assert_eq!(state.dead_letters, 1);
        let result = stalled_on_dead_letters(&state).expect("stalled");
        assert_eq!(result["dead_letters"], 1);
        assert_eq!(result["first_dead_letters"][0]["agent_id"], "a");
        assert!(result["reason"].as_str().unwrap().contains("from a:"));
        assert!(matches!(
            decide(&state, &JobCommand::Fail { result }).unwrap()[..],
            [JobEvent::JobFailed { .. }]
        ));
    }

    #[test]
    fn work_left_or_a_long_running_job_is_not_stalled() {
        // A service job waits for what comes next.
        assert_eq!(stalled_on_dead_letters(&after_dead_letter("service")), None);
        // A queued message, a step in flight or a pending restart is work left.
        let mut restarting = after_dead_letter("batch");
        restarting.agent_mut("a").eligible_at_ms = Some(5);
        assert_eq!(stalled_on_dead_letters(&restarting), None);
        let mut queued = after_dead_letter("batch");
        let message = crate::domain::job::seed_messages("j", queued.graph.as_ref().unwrap(), 0);
        queued.agent_mut("sink").queue.extend(message);
        assert_eq!(stalled_on_dead_letters(&queued), None);
        let mut blocked = after_dead_letter("batch");
        blocked.placement_blocked = Some("no node".into());
        assert_eq!(stalled_on_dead_letters(&blocked), None);
    }
}
