//! The owner's part in an in-place deployment update (`agents_replaced`): the replaced
//! agents' next step runs the new spec. A step in flight is stopped and its message redone
//! under the new spec (a long-running service step would otherwise keep the old version
//! forever); an idle module process is ended so the next message starts the new one; and
//! the agent's steps run the new version's payloads ([`Owner::bundle_of`]). Steps placed on
//! other nodes stop there by themselves (`cluster::worker` sees the agent was superseded).

use std::collections::BTreeMap;

use super::Owner;
use super::work::WorkContext;
use crate::domain::deployment::Version;
use crate::domain::job::source_of;

/// What the owner last acted on.
#[derive(Debug, Default)]
pub(super) struct Seen {
    generation: u64,
    versions: BTreeMap<String, Version>,
}

impl Seen {
    /// What a freshly started owner takes as already in effect (it starts no old steps).
    pub(super) fn of(state: &crate::domain::job::JobState) -> Seen {
        Seen {
            generation: state.deployment.generation,
            versions: versions(state),
        }
    }
}

fn versions(state: &crate::domain::job::JobState) -> BTreeMap<String, Version> {
    state
        .deployment
        .agents
        .iter()
        .map(|(id, d)| (id.clone(), d.version))
        .collect()
}

impl Owner {
    /// Acts on replacements recorded since the last look.
    pub(super) async fn follow_deployment(&mut self) {
        if self.state.deployment.generation == self.seen.generation {
            return;
        }
        let now = versions(&self.state);
        let replaced: Vec<String> = now
            .iter()
            .filter(|(id, v)| self.seen.versions.get(*id) != Some(v))
            .map(|(id, _)| id.clone())
            .collect();
        let agents: Vec<String> = self
            .state
            .agents
            .keys()
            .filter(|id| replaced.iter().any(|r| r == source_of(id)))
            .cloned()
            .collect();
        for agent_id in &agents {
            self.running.modules.remove(agent_id);
            // A step on another node stays awaited until that node reports it stopped, so
            // the new version never starts beside the old one.
            let placed: Vec<(String, u32)> = self
                .state
                .agents
                .get(agent_id)
                .map(|a| a.inflight.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|f| self.running.is_dispatched(agent_id, &f.message.message_id))
                .map(|f| (f.message.message_id.clone(), f.attempt))
                .collect();
            for (message_id, attempt) in placed {
                self.superseded
                    .insert((agent_id.clone(), message_id), attempt);
            }
            if self.running.stop_local(agent_id) {
                tracing::info!(job_id = %self.job_id, agent_id, "agent replaced by a deployment: its steps in flight run again under the new version");
            }
        }
        self.seen = Seen {
            generation: self.state.deployment.generation,
            versions: now,
        };
    }

    /// Takes a placed step's report in when a deployment superseded it: whatever it says (it
    /// stopped, or finished just before), the agent is free to start its message again under
    /// the new version. Returns whether the report was that one.
    pub(super) fn superseded_step_ended(
        &mut self,
        agent_id: &str,
        message_id: &str,
        attempt: u32,
    ) -> bool {
        let key = (agent_id.to_string(), message_id.to_string());
        if self.superseded.get(&key) != Some(&attempt) {
            return false;
        }
        self.superseded.remove(&key);
        self.running.finished(agent_id, message_id);
        tracing::info!(job_id = %self.job_id, agent_id, "agent replaced by a deployment: its step stopped and runs again under the new version");
        true
    }

    /// Where an agent's payloads are: the bundle of the version that replaced it, else the
    /// job's own (`path`, `digest`).
    pub(super) fn bundle_of(&self, agent_id: &str) -> (Option<String>, Option<String>) {
        match self.state.deployment.bundles.get(source_of(agent_id)) {
            Some(b) => (b.path.clone(), b.digest.clone()),
            None => (
                self.state.bundle_path.clone(),
                self.state.bundle_digest.clone(),
            ),
        }
    }

    /// The context a local step of `agent_id` runs in: the job's, with the payloads of the
    /// version that replaced the agent when one did.
    pub(super) async fn step_context(&self, agent_id: &str) -> WorkContext {
        if !self
            .state
            .deployment
            .bundles
            .contains_key(source_of(agent_id))
        {
            return self.ctx.clone();
        }
        let (path, digest) = self.bundle_of(agent_id);
        let cache = crate::runtime::bundle_archive::cache_root();
        match crate::runtime::bundle_archive::payloads_dir(
            &self.store,
            path.as_deref(),
            digest.as_deref(),
            &cache,
        )
        .await
        {
            Ok(payloads_dir) => WorkContext {
                payloads_dir,
                ..self.ctx.clone()
            },
            Err(e) => {
                tracing::warn!(job_id = %self.job_id, agent_id, error = %e, "the new version's payloads are unavailable here; running the job's");
                self.ctx.clone()
            }
        }
    }
}
