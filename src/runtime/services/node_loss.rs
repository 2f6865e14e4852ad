//! A lost node's instances leave the registry (core-spec 9.1): the leader records
//! `service_deregistered` on each affected job, so placement stops counting on them at once
//! (a job that still runs registers them again wherever its agents land next).

use std::collections::BTreeMap;

use super::registry;
use crate::domain::job::JobCommand;
use crate::store::Store;

/// Why the instances went.
pub const NODE_LOST: &str = "node_lost";

/// Deregisters every instance hosted on `node`; returns how many were recorded.
pub async fn deregister_node(store: &Store, node: &str) -> usize {
    let all = match registry::all(store).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(node, error = %e, "cannot read the registry to deregister a lost node's services");
            return 0;
        }
    };
    let mut by_job: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in all.into_iter().filter(|r| r.node.as_deref() == Some(node)) {
        by_job.entry(r.job_id).or_default().push(r.id);
    }
    let mut recorded = 0;
    for (job_id, ids) in by_job {
        let command = JobCommand::DeregisterServices {
            ids,
            reason: NODE_LOST.into(),
        };
        match crate::runtime::commands::execute(store, &job_id, &command, None).await {
            Ok(done) => recorded += done.events.len(),
            Err(e) => {
                tracing::warn!(node, job_id, error = %e, "could not deregister a lost node's services")
            }
        }
    }
    recorded
}
