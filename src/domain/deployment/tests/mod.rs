//! given(events) / when(command) / then(events | error) tests of the deployment aggregate,
//! with an injected clock.

mod actions;
mod failure;
mod flows;
mod planning;

use serde_json::{Value, json};

use super::*;
use crate::domain::manifest::{Manifest, parse_manifest};

pub(super) const T0: i64 = 1_000_000;

/// A job of type `job_type` with nodes a -> b -> c whose configs carry `versions`.
pub(super) fn graph(job_type: &str, versions: [u64; 3], update: Value) -> Manifest {
    let nodes: Vec<Value> = ["a", "b", "c"]
        .iter()
        .zip(versions)
        .map(|(id, v)| json!({"node_id": id, "agent_type": "router", "config": {"v": v}}))
        .collect();
    let doc = json!({
        "manifest_version": "1.0", "graph_id": "g", "job_name": "shop", "type": job_type,
        "entrypoints": ["a"], "nodes": nodes,
        "edges": [{"from_node": "a", "to_node": "b", "message_type": "m"},
                  {"from_node": "b", "to_node": "c", "message_type": "m"}],
        "policies": {"update": update},
    });
    parse(doc)
}

pub(super) fn parse(doc: Value) -> Manifest {
    parse_manifest(&doc).unwrap_or_else(|e| panic!("test manifest is valid: {e:?}"))
}

pub(super) fn service(versions: [u64; 3], update: Value) -> Manifest {
    graph("service", versions, update)
}

pub(super) fn target(n: u64, now_ms: i64) -> Target {
    Target {
        deployment_id: deployment_id("shop", n),
        job_id: format!("job-{n}"),
        policy: None,
        source_active: true,
        manifest_ref: None,
        bundle: BundleRef::default(),
        tag: None,
        now_ms,
    }
}

pub(super) fn deploy(target: Target, manifest: Manifest) -> DeploymentCommand {
    DeploymentCommand::Deploy {
        target,
        manifest: Box::new(manifest),
    }
}

/// A key's history and the state folded from it.
pub(super) struct Given {
    pub history: Vec<DeploymentEvent>,
    pub state: DeploymentState,
}

pub(super) fn given(history: Vec<DeploymentEvent>) -> Given {
    Given {
        state: fold("shop", &history),
        history,
    }
}

impl Given {
    pub fn when(
        &self,
        command: DeploymentCommand,
    ) -> Result<Vec<DeploymentEvent>, DeploymentError> {
        decide(&self.state, &command)
    }

    /// Applies an accepted command, returning its events; the history grows.
    pub fn run(&mut self, command: DeploymentCommand) -> Vec<DeploymentEvent> {
        let events =
            decide(&self.state, &command).unwrap_or_else(|e| panic!("command accepted: {e}"));
        for e in &events {
            self.state = evolve(self.state.clone(), e);
        }
        self.history.extend(events.iter().cloned());
        events
    }

    /// Starts the next batch at `at`, reports it healthy at once, and ticks once it has
    /// been healthy for `min_healthy_ms`; returns the tick's events.
    pub fn roll_batch(&mut self, at: i64) -> Vec<DeploymentEvent> {
        let rollout = self.state.rollout.as_ref().expect("a rollout");
        let (index, _) = rollout.next().expect("a batch to start");
        let done = at + i64::try_from(rollout.policy.min_healthy_ms).expect("small");
        self.run(DeploymentCommand::BatchStarted { index, now_ms: at });
        self.run(DeploymentCommand::BatchHealthy { index, at_ms: at });
        self.run(DeploymentCommand::Tick { now_ms: done })
    }

    pub fn status(&self) -> Option<DeploymentStatus> {
        self.state.status
    }

    /// Replaying the whole history reproduces the state built step by step.
    pub fn assert_replays(&self) {
        let json: Vec<String> = self.history.iter().map(DeploymentEvent::to_json).collect();
        let back: Vec<DeploymentEvent> = json
            .iter()
            .map(|j| DeploymentEvent::from_json(j).expect("event reads back"))
            .collect();
        assert_eq!(back, self.history);
        assert_eq!(fold("shop", &back), self.state);
    }
}

pub(super) fn types(events: &[DeploymentEvent]) -> Vec<&'static str> {
    events.iter().map(DeploymentEvent::type_name).collect()
}

/// A key whose version 1 (`versions`, `update`) is deployed and stable, as job `job-1`.
pub(super) fn deployed(versions: [u64; 3], update: Value) -> Given {
    let mut g = given(vec![]);
    g.run(deploy(target(1, T0), service(versions, update)));
    g.roll_batch(T0 + 10);
    assert_eq!(g.status(), Some(DeploymentStatus::Successful));
    g
}
