//! The owner's part in services (core-spec 9.1): preflight of `required_services` before the
//! job starts (a failure fails the job with `service_requirements_not_met` and the report),
//! then registration of the instances the job provides, again whenever the plan moves an
//! agent (the decider records only what changed). Deregistration on the job's end is the
//! decider's; on node loss, the leader's.

use std::path::Path;

use serde_json::json;

use super::Owner;
use crate::domain::job::{JobCommand, JobStatus};
use crate::domain::service::report::NOT_MET;
use crate::runtime::clock::now_ms;
use crate::runtime::services::{preflight, register};

/// What this owner has done about services so far.
#[derive(Debug, Default)]
pub(super) struct Progress {
    preflight_passed: bool,
    /// The placement the registrations were last computed for.
    registered_for: Option<String>,
}

impl Owner {
    pub(super) async fn services(&mut self) {
        match self.state.status {
            Some(JobStatus::Pending) if !self.services.preflight_passed => self.preflight().await,
            Some(JobStatus::Running | JobStatus::Paused) => self.register(),
            _ => {}
        }
    }

    async fn preflight(&mut self) {
        let Some(required) = self.manifest().map(|m| m.required_services.clone()) else {
            return;
        };
        match preflight::run(Some(&self.store), &required).await {
            Ok(()) => self.services.preflight_passed = true,
            Err(report) => {
                tracing::warn!(job_id = %self.job_id, %report, "required services are not available");
                self.decide_now(JobCommand::Fail {
                    result: json!({
                        "error": format!("{NOT_MET}: {report}"),
                        "kind": NOT_MET,
                        "report": report,
                    }),
                });
            }
        }
    }

    fn register(&mut self) {
        // Registrations change with the placement and with each deployment replacement or
        // promotion (instances carry the version and role).
        let placement = format!(
            "{:?} {}",
            self.state.plan.as_ref().map(|p| p
                .allocations
                .iter()
                .map(|a| (&a.agent_id, &a.node))
                .collect::<Vec<_>>()),
            self.state.deployment.generation
        );
        if self.services.registered_for.as_ref() == Some(&placement) {
            return;
        }
        let Some(manifest) = self.manifest() else {
            return;
        };
        if manifest.services.is_empty() && manifest.nodes.iter().all(|n| n.services.is_empty()) {
            self.services.registered_for = Some(placement);
            return;
        }
        let bundle_root = self
            .state
            .bundle_path
            .as_deref()
            .map(Path::new)
            .filter(|p| p.is_dir());
        let site = register::Site {
            owner_node: &self.cfg.node,
            bundle_root,
            now_ms: now_ms(),
        };
        let command = JobCommand::RegisterServices {
            instances: register::desired(&self.state, manifest, &site),
        };
        // Done once the history holds them all: a batch lost to a conflict (the state is
        // reloaded) is decided again on the next pass.
        if crate::domain::job::decide(&self.state, &command).is_ok_and(|e| e.is_empty()) {
            self.services.registered_for = Some(placement);
        } else {
            self.decide_now(command);
        }
    }
}
