//! Per-agent concurrency in the decider: several messages in flight, landing in any order,
//! and a fold of the history that rebuilds the same state.

use serde_json::json;

use super::*;
use crate::domain::agents::{Emit, StepOutcome};
use crate::domain::event::{EventEnvelope, JobEvent, SCHEMA_VERSION};
use crate::domain::manifest::parse_manifest;

struct Run {
    state: JobState,
    history: Vec<EventEnvelope>,
}

impl Run {
    fn new(concurrency: u32) -> Run {
        let manifest = parse_manifest(&json!({
            "manifest_version": "1.0", "graph_id": "g", "entrypoints": ["work"],
            "initial_inputs": {"work": [{"n": 1}, {"n": 2}, {"n": 3}]},
            "nodes": [
                {"node_id": "work", "agent_type": "executor",
                 "config": {"command": "true", "concurrency": concurrency}},
                {"node_id": "sink", "agent_type": "aggregator"}
            ],
            "edges": [{"from_node": "work", "to_node": "sink", "message_type": "done"}],
        }))
        .expect("valid manifest");
        let mut run = Run {
            state: JobState::new("job"),
            history: vec![],
        };
        run.ok(JobCommand::Submit {
            graph_id: "g".into(),
            job_name: "g".into(),
            manifest: manifest.to_value(),
            bundle_path: None,
            bundle_digest: None,
            deployment: None,
            now_ms: 0,
        });
        run.ok(JobCommand::Start);
        run
    }

    fn decide(&mut self, command: JobCommand) -> Result<(), DomainError> {
        for payload in decide(&self.state, &command)? {
            let env = EventEnvelope {
                event_id: format!("e{}", self.state.seq + 1),
                job_id: "job".into(),
                seq: self.state.seq + 1,
                event_type: payload.type_name().into(),
                schema_version: SCHEMA_VERSION,
                timestamp_ms: 0,
                epoch: 0,
                causation_id: None,
                correlation_id: None,
                payload,
            };
            self.state = evolve(std::mem::take(&mut self.state), &env);
            self.history.push(env);
        }
        Ok(())
    }

    fn ok(&mut self, command: JobCommand) {
        self.decide(command).expect("decided");
    }

    fn queued(&self) -> Vec<String> {
        self.state.agents["work"]
            .queue
            .iter()
            .map(|m| m.message_id.clone())
            .collect()
    }

    fn in_flight(&self) -> Vec<String> {
        self.state.agents["work"]
            .inflight
            .iter()
            .map(|f| f.message.message_id.clone())
            .collect()
    }

    fn begin(&mut self, message_id: &str) -> Result<(), DomainError> {
        self.decide(JobCommand::BeginStep {
            agent_id: "work".into(),
            message_id: message_id.into(),
            attempt: 1,
            node: None,
        })
    }

    fn finish(&mut self, message_id: &str, n: i64) {
        self.ok(JobCommand::FinishStep {
            agent_id: "work".into(),
            message_id: message_id.into(),
            outcome: StepOutcome {
                emits: vec![Emit::routed("done", json!({ "n": n }))],
                ..StepOutcome::default()
            },
        });
    }
}

#[test]
fn one_agent_takes_up_to_its_concurrency() {
    let mut run = Run::new(2);
    let ids = run.queued();
    run.begin(&ids[0]).expect("first");
    run.begin(&ids[1]).expect("second: room for two");
    assert!(matches!(
        run.begin(&ids[2]),
        Err(DomainError::NotInFlight { .. })
    ));
    assert_eq!(run.in_flight(), ids[..2]);

    let mut one = Run::new(1);
    let ids = one.queued();
    one.begin(&ids[0]).expect("first");
    assert!(one.begin(&ids[1]).is_err(), "one at a time by default");
}

#[test]
fn steps_land_in_any_order_and_the_fold_agrees() {
    let mut run = Run::new(3);
    let ids = run.queued();
    for id in &ids {
        run.begin(id).expect("begun");
    }
    // The last one lands first: the record names its message.
    run.finish(&ids[2], 3);
    assert_eq!(run.in_flight(), ids[..2]);
    let named = run.history.iter().rev().find_map(|e| match &e.payload {
        JobEvent::AgentStepped(s) => Some(s.message_id.clone()),
        _ => None,
    });
    assert_eq!(named, Some(Some(ids[2].clone())));
    // The oldest lands: implied, nothing to name.
    run.finish(&ids[0], 1);
    let implied = run.history.iter().rev().find_map(|e| match &e.payload {
        JobEvent::AgentStepped(s) => Some(s.message_id.clone()),
        _ => None,
    });
    assert_eq!(implied, Some(None));
    run.finish(&ids[1], 2);
    assert!(run.in_flight().is_empty());
    assert_eq!(run.state.agents["work"].processed, 3);
    let bodies: Vec<_> = run.state.agents["sink"]
        .queue
        .iter()
        .map(|m| m.body["n"].clone())
        .collect();
    assert_eq!(bodies, [json!(3), json!(1), json!(2)]);
    assert_eq!(fold("job", &run.history), run.state);
}

#[test]
fn a_failure_lands_only_its_own_message() {
    let mut run = Run::new(2);
    let ids = run.queued();
    run.begin(&ids[0]).expect("begun");
    run.begin(&ids[1]).expect("begun");
    run.ok(JobCommand::FailStep {
        agent_id: "work".into(),
        message_id: ids[1].clone(),
        attempt: 1,
        error: json!({"error": "boom"}),
        will_retry: true,
        now_ms: 0,
    });
    assert_eq!(
        run.in_flight(),
        ids[..2],
        "a retried message stays in flight"
    );
    run.finish(&ids[0], 1);
    assert_eq!(run.in_flight(), [ids[1].clone()]);
}

#[test]
fn a_state_written_with_one_message_in_flight_still_reads() {
    let mut run = Run::new(1);
    let ids = run.queued();
    run.begin(&ids[0]).expect("begun");
    let mut old = serde_json::to_value(&run.state).expect("encodes");
    let one = old["agents"]["work"]["inflight"][0].clone();
    old["agents"]["work"]["inflight"] = one;
    let back: JobState = serde_json::from_value(old.clone()).expect("decodes");
    assert_eq!(
        back.agents["work"].inflight,
        run.state.agents["work"].inflight
    );
    old["agents"]["work"]["inflight"] = serde_json::Value::Null;
    let back: JobState = serde_json::from_value(old).expect("decodes");
    assert!(back.agents["work"].inflight.is_empty());
}
