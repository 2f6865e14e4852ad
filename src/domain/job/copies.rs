//! Per-node jobs (`system`, `sysbatch`, core-spec 4.3): every executor runs as one copy per
//! eligible node, named `<agent>@<node>` by the scheduler's plan. A message addressed to the
//! agent goes to each of its copies; a copy routes onward as its agent does. A `sysbatch` job
//! completes when every copy has done its work; a `system` job runs until cancelled and gains
//! a copy (with the job's initial input) when a node joins.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::state::JobState;
use crate::domain::event::JobEvent;
use crate::domain::manifest::{AgentType, JobType};
use crate::domain::message::Message;
use crate::domain::scheduler::Plan;

/// Whether the job runs its executors once per node.
pub fn per_node(state: &JobState) -> bool {
    state
        .graph
        .as_ref()
        .is_some_and(|m| matches!(m.job_type, JobType::System | JobType::Sysbatch))
}

/// The manifest agent of a runtime agent id (`work@node-a` -> `work`).
pub fn source_of(agent_id: &str) -> &str {
    agent_id.split_once('@').map_or(agent_id, |(s, _)| s)
}

/// The copies `plan` makes of `source`.
pub fn copies_in<'a>(plan: &'a Plan, source: &str) -> Vec<&'a str> {
    plan.allocations
        .iter()
        .map(|a| a.agent_id.as_str())
        .filter(|id| id.contains('@') && source_of(id) == source)
        .collect()
}

/// The agents a message addressed to `target` reaches: each of its copies when the job runs
/// it per node, else `target` itself.
pub fn receivers(state: &JobState, target: &str) -> Vec<String> {
    let copies = state
        .plan
        .as_ref()
        .filter(|_| per_node(state))
        .map(|plan| copies_in(plan, target))
        .unwrap_or_default();
    if copies.is_empty() {
        vec![target.to_string()]
    } else {
        copies.into_iter().map(str::to_string).collect()
    }
}

/// A message to `source` becomes one message per copy (deterministic ids per copy); others
/// pass through. Only per-node jobs have copies.
pub fn fan_out(state: &JobState, messages: Vec<Message>) -> Vec<Message> {
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let receivers = receivers(state, &message.to);
        if receivers.len() == 1 && receivers[0] == message.to {
            out.push(message);
            continue;
        }
        out.extend(receivers.iter().map(|copy| to_copy(&message, copy)));
    }
    out
}

fn to_copy(message: &Message, copy: &str) -> Message {
    let node = copy.split_once('@').map_or("", |(_, n)| n);
    Message {
        message_id: format!("{}@{node}", message.message_id),
        to: copy.to_string(),
        ..message.clone()
    }
}

/// Notes the first message a copied agent was given (from the fold of `MessageSent`).
pub fn remember_input(state: &mut JobState, message: &Message) {
    let Some((source, _)) = message.to.split_once('@') else {
        return;
    };
    if state.copy_inputs.contains_key(source) {
        return;
    }
    let base_id = message
        .message_id
        .rsplit_once('@')
        .map_or(message.message_id.as_str(), |(id, _)| id);
    state.copy_inputs.insert(
        source.to_string(),
        Message {
            message_id: base_id.to_string(),
            to: source.to_string(),
            ..message.clone()
        },
    );
}

/// Inputs for copies that `new` adds to a running job (a node joined a `system` job): each
/// new copy gets the first message its siblings were given, or the job's seed for it.
pub fn seeds_for_new_copies(state: &JobState, new: &Plan, seeds: &[Message]) -> Vec<JobEvent> {
    if !per_node(state) {
        return vec![];
    }
    let old: BTreeSet<&str> = state
        .plan
        .as_ref()
        .map(|p| p.allocations.iter().map(|a| a.agent_id.as_str()).collect())
        .unwrap_or_default();
    let mut out = vec![];
    for a in &new.allocations {
        let copy = a.agent_id.as_str();
        if old.contains(copy) || !copy.contains('@') {
            continue;
        }
        let source = source_of(copy);
        let inputs: Vec<&Message> = match state.copy_inputs.get(source) {
            Some(m) => vec![m],
            None => seeds.iter().filter(|s| s.to == source).collect(),
        };
        for m in inputs {
            out.push(JobEvent::MessageSent {
                message: to_copy(m, copy),
            });
        }
    }
    out
}

/// For a running `sysbatch` job whose copies have all done their work and nothing is left
/// anywhere: the result to complete it with.
pub fn sysbatch_done(state: &JobState) -> Option<Value> {
    let manifest = state.graph.as_ref()?;
    if manifest.job_type != JobType::Sysbatch {
        return None;
    }
    // Without a plan (run in one process) the job is a single copy of each executor.
    let mut copies: Vec<&str> = state
        .plan
        .as_ref()
        .map(|p| {
            p.allocations
                .iter()
                .map(|a| a.agent_id.as_str())
                .filter(|id| id.contains('@'))
                .collect()
        })
        .unwrap_or_default();
    if copies.is_empty() {
        copies = manifest
            .nodes
            .iter()
            .filter(|n| n.agent_type == AgentType::Executor)
            .map(|n| n.node_id.as_str())
            .collect();
    }
    if copies.is_empty() {
        return None;
    }
    let idle = state.agents.values().all(|a| a.is_quiet());
    let all_ran = copies
        .iter()
        .all(|c| state.agents.get(*c).is_some_and(|a| a.processed > 0));
    if !(idle && all_ran) {
        return None;
    }
    let nodes: BTreeSet<&str> = copies
        .iter()
        .filter_map(|c| c.split_once('@').map(|(_, n)| n))
        .collect();
    Some(json!({
        "completed": "every copy finished",
        "copies": copies,
        "nodes": nodes,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::manifest::parse_manifest;

    fn plan_for(nodes: &[&str]) -> Plan {
        serde_json::from_value(json!({
            "status": "planned", "job_id": "j", "job_type": "system", "strategy": "binpack",
            "placement_count": nodes.len(),
            "requirements": {"cpu_millis": 0, "memory_mb": 0, "disk_mb": 0, "gpu_count": 0},
            "placements": nodes.iter().map(|n| json!({
                "agent_id": format!("probe@{n}"), "node": n,
                "cpu_millis": 0, "memory_mb": 0, "disk_mb": 0
            })).collect::<Vec<_>>(),
        }))
        .expect("a plan")
    }

    fn state(job_type: &str, nodes: &[&str]) -> JobState {
        let manifest = parse_manifest(&json!({
            "manifest_version": "1.0", "graph_id": "g", "type": job_type, "entrypoints": ["probe"],
            "nodes": [{"node_id": "probe", "agent_type": "executor", "config": {"command": "true"}}],
            "edges": [],
        }))
        .expect("manifest");
        let mut s = JobState::new("j");
        s.graph = Some(manifest);
        s.plan = Some(plan_for(nodes));
        s
    }

    fn message(to: &str) -> Message {
        let s = state("batch", &[]);
        let mut m =
            crate::domain::job::seed_messages("j", s.graph.as_ref().expect("graph"), 0).remove(0);
        m.message_id = "m1".into();
        m.to = to.into();
        m
    }

    fn sent_all(messages: Vec<Message>) -> Vec<JobEvent> {
        messages
            .into_iter()
            .map(|message| JobEvent::MessageSent { message })
            .collect()
    }

    fn sent(events: &[JobEvent]) -> Vec<(String, String)> {
        events
            .iter()
            .filter_map(|e| match e {
                JobEvent::MessageSent { message } => {
                    Some((message.to.clone(), message.message_id.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_message_to_a_copied_agent_reaches_every_copy_with_its_own_id() {
        let s = state("sysbatch", &["a", "b"]);
        let out = sent_all(fan_out(&s, vec![message("probe")]));
        assert_eq!(
            sent(&out),
            vec![
                ("probe@a".to_string(), "m1@a".to_string()),
                ("probe@b".to_string(), "m1@b".to_string())
            ]
        );
        // A batch job has no copies: messages pass through.
        let batch = state("batch", &["a", "b"]);
        let out = sent_all(fan_out(&batch, vec![message("probe")]));
        assert_eq!(sent(&out), vec![("probe".to_string(), "m1".to_string())]);
        assert_eq!(source_of("probe@a"), "probe");
    }

    #[test]
    fn a_joining_node_gets_a_copy_with_the_input_its_siblings_got() {
        let mut s = state("system", &["a"]);
        remember_input(&mut s, &to_copy(&message("probe"), "probe@a"));
        assert_eq!(s.copy_inputs["probe"].message_id, "m1");
        let out = seeds_for_new_copies(&s, &plan_for(&["a", "c"]), &[]);
        assert_eq!(
            sent(&out),
            vec![("probe@c".to_string(), "m1@c".to_string())]
        );
        assert!(seeds_for_new_copies(&s, &plan_for(&["a"]), &[]).is_empty());
    }

    #[test]
    fn sysbatch_is_done_only_when_every_copy_ran_and_nothing_is_left() {
        let mut s = state("sysbatch", &["a", "b"]);
        assert_eq!(sysbatch_done(&s), None);
        s.agent_mut("probe@a").processed = 1;
        assert_eq!(sysbatch_done(&s), None, "probe@b has not run");
        s.agent_mut("probe@b").processed = 1;
        s.agent_mut("probe@b").queue.push_back(message("probe@b"));
        assert_eq!(sysbatch_done(&s), None, "work is queued");
        s.agent_mut("probe@b").queue.clear();
        let done = sysbatch_done(&s).expect("done");
        assert_eq!(done["nodes"], json!(["a", "b"]));
        assert_eq!(sysbatch_done(&state("system", &["a"])), None);
    }
}
