//! What an agent can begin next: the owner's "what runs now" for one agent, as a pure function
//! of the job state (the owner adds only what is running in its process right now).

use super::state::JobState;

/// A step to begin: its message and the attempt it will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    pub message_id: String,
    pub attempt: u32,
}

/// The steps `agent_id` can begin at `now_ms`, in the order to begin them: first each message
/// in flight that nothing is working on (a redo after a crash, a move or a restart), then
/// messages off the queue while the agent has room (its `concurrency`). `busy(message_id)`
/// says whether a step for that message is running, or its result is waiting to be recorded.
/// Nothing while a scheduled restart or reschedule waits for its time.
pub fn next_steps(
    state: &JobState,
    agent_id: &str,
    now_ms: i64,
    busy: impl Fn(&str) -> bool,
) -> Vec<NextStep> {
    let Some(agent) = state.agents.get(agent_id) else {
        return vec![];
    };
    if agent.eligible_at_ms.is_some_and(|t| t > now_ms) {
        return vec![];
    }
    let mut out: Vec<NextStep> = agent
        .inflight
        .iter()
        .filter(|f| !busy(&f.message.message_id))
        .map(|f| NextStep {
            message_id: f.message.message_id.clone(),
            attempt: f.attempt + 1,
        })
        .collect();
    let room = state
        .concurrency(agent_id)
        .saturating_sub(agent.inflight.len());
    out.extend(agent.queue.iter().take(room).map(|m| NextStep {
        message_id: m.message_id.clone(),
        attempt: 1,
    }));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::job::{InFlight, JobState};
    use crate::domain::manifest::parse_manifest;
    use crate::domain::message::Message;

    fn state(concurrency: u32, queued: usize, in_flight: usize) -> JobState {
        let manifest = parse_manifest(&json!({
            "manifest_version": "1.0", "graph_id": "g",
            "nodes": [{"node_id": "w", "agent_type": "executor", "role": "root",
                       "config": {"command": ["true"], "concurrency": concurrency}}],
            "edges": [], "initial_inputs": {}
        }))
        .expect("valid");
        let mut state = JobState::new("j");
        state.graph = Some(manifest);
        let agent = state.agent_mut("w");
        let message = |i: usize| -> Message {
            serde_json::from_value(json!({
                "message_id": format!("m{i}"), "job_id": "j", "from": "runtime", "to": "w",
                "type": "t", "class": "event", "correlation_id": null, "causation_id": null,
                "content_type": "application/json", "content_encoding": "identity",
                "body": {}, "timestamp_ms": 0
            }))
            .expect("a message")
        };
        for i in 0..in_flight {
            agent.inflight.push(InFlight {
                message: message(i),
                attempt: 1,
                node: None,
            });
        }
        agent
            .queue
            .extend((in_flight..in_flight + queued).map(message));
        state
    }

    fn ids(steps: &[NextStep]) -> Vec<(&str, u32)> {
        steps
            .iter()
            .map(|s| (s.message_id.as_str(), s.attempt))
            .collect()
    }

    #[test]
    fn one_at_a_time_by_default() {
        let s = state(1, 3, 0);
        assert_eq!(ids(&next_steps(&s, "w", 0, |_| false)), [("m0", 1)]);
        let s = state(1, 3, 1);
        assert!(next_steps(&s, "w", 0, |_| true).is_empty());
    }

    #[test]
    fn up_to_the_concurrency_with_redos_first() {
        let s = state(4, 5, 2);
        // m0 runs, m1 was in flight when the last owner stopped: redo it, then two more.
        let next = next_steps(&s, "w", 0, |id| id == "m0");
        assert_eq!(ids(&next), [("m1", 2), ("m2", 1), ("m3", 1)]);
    }

    #[test]
    fn a_pending_restart_waits_for_its_time() {
        let mut s = state(2, 1, 1);
        s.agent_mut("w").eligible_at_ms = Some(100);
        assert!(next_steps(&s, "w", 99, |_| false).is_empty());
        assert_eq!(next_steps(&s, "w", 100, |_| false).len(), 2);
    }
}
