//! Starting and recording agent steps: which steps begin now (the pure
//! [`next_steps`](crate::domain::job::next_steps) plus what this owner is running), built-in
//! steps run in place, and finished work recorded, in message order where the agent wants it.

use super::work::WorkDone;
use super::{Launch, Owner};
use crate::domain::agents;
use crate::domain::job::{JobCommand, JobStatus, NextStep, next_steps, source_of};
use crate::domain::manifest::AgentType;
use crate::runtime::clock::now_ms;

const BUILTIN: [AgentType; 3] = [AgentType::Router, AgentType::Aggregator, AgentType::Sensor];
const EXTERNAL: [AgentType; 2] = [AgentType::Executor, AgentType::Module];

impl Owner {
    /// Whether a step for the message is already being taken care of: running here or on a
    /// node, about to launch, or finished with its result not yet recorded.
    fn is_busy(&self, agent_id: &str, message_id: &str) -> bool {
        let same = |a: &str, m: &str| a == agent_id && m == message_id;
        self.running.is_running(agent_id, message_id)
            || self
                .to_launch
                .iter()
                .any(|l| same(&l.agent_id, &l.message_id))
            || self
                .done
                .iter()
                .chain(&self.held)
                .any(|d| same(&d.agent_id, &d.message_id))
    }

    /// What each agent of these kinds can begin now, in agent id order.
    pub(super) fn startable(&self, kinds: &[AgentType]) -> Vec<(String, AgentType, Vec<NextStep>)> {
        let Some(m) = self.manifest() else {
            return vec![];
        };
        let now = now_ms();
        self.state
            .agents
            .iter()
            // Idle agents first: most of a big job's agents have nothing to do, and looking
            // an agent up in the manifest is a scan.
            .filter(|(_, a)| !a.inflight.is_empty() || !a.queue.is_empty())
            .filter_map(|(id, _)| {
                let kind = m.node(source_of(id))?.agent_type;
                kinds.contains(&kind).then_some((id, kind))
            })
            .filter_map(|(id, kind)| {
                let next = next_steps(&self.state, id, now, |msg| self.is_busy(id, msg));
                (!next.is_empty()).then(|| (id.clone(), kind, next))
            })
            .collect()
    }

    pub(super) fn has_ready_builtin(&self) -> bool {
        self.state.status == Some(JobStatus::Running)
            && self.pending.len() < self.cfg.max_batch
            && !self.startable(&BUILTIN).is_empty()
    }

    /// Runs one message for every ready built-in agent. Returns whether anything ran.
    pub(super) fn run_builtin_steps(&mut self) -> bool {
        let mut progressed = false;
        for (agent_id, _, _) in self.startable(&BUILTIN) {
            let _step = tracing::debug_span!("agent_step", agent_id = %agent_id).entered();
            if self.pending.len() >= self.cfg.max_batch
                || self.state.status != Some(JobStatus::Running)
            {
                break;
            }
            let Some(agent) = self.state.agents.get(&agent_id) else {
                continue;
            };
            let Some(message) = agent.queue.front() else {
                continue;
            };
            let Some(node) = self.manifest().and_then(|m| m.node(&agent_id)) else {
                continue;
            };
            let Some(kind) = agents::Builtin::of(node.agent_type) else {
                continue;
            };
            // Effects are read off the current state without copying it; the state itself
            // advances when the step's event is applied.
            let outcome = agents::effects(kind, &node.config, &agent.state, message);
            let message_id = message.message_id.clone();
            // A built-in step begins and ends in one event: it runs here, at once, so there
            // is nothing to redo after a crash but the message still at the queue's head.
            self.decide_now(JobCommand::FinishStep {
                agent_id,
                message_id,
                outcome,
            });
            progressed = true;
        }
        progressed
    }

    /// Begins the steps every executor or module agent can take now: messages in flight that
    /// nothing runs (redone after a previous owner stopped), then new ones up to the agent's
    /// concurrency. On a cluster node an executor step goes to the node the job's plan gives
    /// its agent; while that node cannot take work, it waits in its queue.
    pub(super) fn begin_external_steps(&mut self) {
        for (agent_id, agent_type, next) in self.startable(&EXTERNAL) {
            let node = match (&self.cfg.cluster, agent_type) {
                // The planned node, while it can take work; otherwise the step waits for
                // `schedule` to re-place the agent.
                (Some(cache), AgentType::Executor) => match self.state.planned_node(&agent_id) {
                    Some(n) if cache.is_schedulable(n) => Some(n.to_string()),
                    _ => {
                        tracing::debug!(job_id = %self.job_id, agent_id, "no placement for the step now; it waits");
                        continue;
                    }
                },
                _ => None,
            };
            for NextStep {
                message_id,
                attempt,
            } in next
            {
                let first_run = attempt == 1
                    && self
                        .state
                        .agents
                        .get(&agent_id)
                        .is_some_and(|a| a.processed == 0 && a.inflight.is_empty());
                let begun = self.decide_now(JobCommand::BeginStep {
                    agent_id: agent_id.clone(),
                    message_id: message_id.clone(),
                    attempt,
                    node: node.clone(),
                });
                if !begun {
                    break;
                }
                self.to_launch.push(Launch {
                    agent_id: agent_id.clone(),
                    message_id,
                    attempt,
                    first_run,
                    node: node.clone(),
                });
            }
        }
    }

    /// Records finished work. An agent whose results must land in message order (`ordered`,
    /// the default) has a result held until every message taken before it has landed; the
    /// step itself is done, so the agent's next messages may already run.
    pub(super) fn record_finished(&mut self) {
        self.held.append(&mut self.done);
        while let Some(pos) = self.held.iter().position(|d| self.may_record(d)) {
            let done = self.held.remove(pos);
            self.record(done);
        }
    }

    /// Whether a result may be recorded now: its agent records in any order, or its message
    /// is the oldest in flight (or no longer in flight at all: the decider refuses it).
    fn may_record(&self, done: &WorkDone) -> bool {
        let Some(agent) = self.state.agents.get(&done.agent_id) else {
            return true;
        };
        let ordered = self
            .manifest()
            .and_then(|m| m.node(source_of(&done.agent_id)))
            .is_none_or(|n| n.concurrency.ordered);
        !ordered
            || agent.in_flight(&done.message_id).is_none()
            || agent
                .inflight
                .first()
                .is_some_and(|f| f.message.message_id == done.message_id)
    }

    fn record(&mut self, done: WorkDone) {
        if let Some(module) = done.module {
            self.running.modules.insert(done.agent_id.clone(), module);
        }
        let command = match done.result {
            Ok(outcome) => JobCommand::FinishStep {
                agent_id: done.agent_id.clone(),
                message_id: done.message_id.clone(),
                outcome,
            },
            Err(error) => JobCommand::FailStep {
                agent_id: done.agent_id.clone(),
                message_id: done.message_id.clone(),
                // The executor retries inside one step; report the attempts it really made.
                attempt: error
                    .get("attempts")
                    .and_then(serde_json::Value::as_u64)
                    .map_or(done.attempt, |a| a as u32),
                error,
                will_retry: false,
                now_ms: now_ms(),
            },
        };
        self.decide_now(command);
    }

    /// After a failover: steps in flight on a live node that still holds their work item are
    /// awaited, not run again (their result arrives on the results stream).
    pub(super) async fn adopt_inflight(&mut self) {
        let Some(cache) = self.cfg.cluster.clone() else {
            return;
        };
        let inflight: Vec<(String, String, String)> = self
            .state
            .agents
            .iter()
            .flat_map(|(id, a)| {
                a.inflight.iter().filter_map(move |f| {
                    Some((id.clone(), f.message.message_id.clone(), f.node.clone()?))
                })
            })
            .collect();
        for (agent_id, message_id, node) in inflight {
            if self.is_busy(&agent_id, &message_id) {
                continue;
            }
            let held = cache.is_alive(&node)
                && self
                    .store
                    .holds_work(&node, &self.job_id, &agent_id, &message_id)
                    .await
                    .unwrap_or(false);
            if held {
                tracing::info!(job_id = %self.job_id, agent_id, node, "awaiting a step still running on its node");
                self.running.mark_dispatched(&agent_id, &message_id);
            }
        }
    }
}
