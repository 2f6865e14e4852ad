//! The registry's read side. Instances live in their job's history and the job projection
//! keeps them in the job view (`JobView.services`), so the registry is the union of the views
//! of active jobs: rebuildable like every view, and gone with the job.

use crate::domain::scheduler::ServiceInstance;
use crate::domain::service::ServiceRecord;
use crate::domain::service::query::{ServiceQuery, passing_by_node};
use crate::store::{Store, StoreError};

/// Every registered instance of every active job.
pub async fn all(store: &Store) -> Result<Vec<ServiceRecord>, StoreError> {
    Ok(store
        .active_job_views()
        .await?
        .into_iter()
        .flat_map(|v| v.services.into_values())
        .collect())
}

/// The instances matching `query`, ordered by name then id.
pub async fn list(store: &Store, query: &ServiceQuery) -> Result<Vec<ServiceRecord>, StoreError> {
    let all = all(store).await?;
    Ok(query.select(&all).into_iter().cloned().collect())
}

/// What placement reads: the passing instances on each node.
pub async fn passing_on_nodes(
    store: &Store,
) -> Result<std::collections::BTreeMap<String, Vec<ServiceInstance>>, StoreError> {
    Ok(passing_by_node(&all(store).await?))
}
