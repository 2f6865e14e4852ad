//! The owner's part in an in-place deployment update (`agents_replaced`): the replaced
//! agents' next step runs the new spec. A step in flight is stopped and its message redone
//! under the new spec (a long-running service step would otherwise keep the old version
//! forever); an idle module process is ended so the next message starts the new one; and the
//! payloads of the new version are fetched when they changed. Steps placed on other nodes
//! stop there by themselves (`cluster::worker` sees the agent was superseded).

use std::collections::BTreeMap;

use super::Owner;
use crate::domain::deployment::Version;
use crate::domain::job::source_of;

/// What the owner last acted on.
#[derive(Debug, Default)]
pub(super) struct Seen {
    generation: u64,
    versions: BTreeMap<String, Version>,
    digest: Option<String>,
}

impl Seen {
    /// What a freshly started owner takes as already in effect (it starts no old steps).
    pub(super) fn of(state: &crate::domain::job::JobState) -> Seen {
        Seen {
            generation: state.deployment.generation,
            versions: versions(state),
            digest: state.bundle_digest.clone(),
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
            if self.running.stop(agent_id) {
                tracing::info!(job_id = %self.job_id, agent_id, "agent replaced by a deployment: its step in flight runs again under the new version");
            }
            self.running.modules.remove(agent_id);
        }
        if self.state.bundle_digest != self.seen.digest {
            self.refresh_payloads().await;
        }
        self.seen = Seen {
            generation: self.state.deployment.generation,
            versions: now,
            digest: self.state.bundle_digest.clone(),
        };
    }

    /// Fetches the payloads the job's (new) bundle digest names.
    async fn refresh_payloads(&mut self) {
        match crate::runtime::bundle_archive::payloads_dir(
            &self.store,
            self.state.bundle_path.as_deref(),
            self.state.bundle_digest.as_deref(),
            &crate::runtime::bundle_archive::cache_root(),
        )
        .await
        {
            Ok(dir) => self.ctx.payloads_dir = dir,
            Err(e) => {
                tracing::warn!(job_id = %self.job_id, error = %e, "new payloads unavailable on this node; keeping the old ones")
            }
        }
    }
}
