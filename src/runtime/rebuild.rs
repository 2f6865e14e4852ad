//! Rebuilding the read views from history (`mirror-neuron admin rebuild-projections`).
//! Uses the same pure fold as the live workers, so the two agree by construction; `check`
//! proves it against the live views without writing anything.

use crate::domain::view::{AgentView, DeadLetterView, JobProjection, JobView};
use crate::runtime::blobs::BlobStore;
use crate::runtime::history::{HistoryError, HistoryPages, decode_item};
use crate::store::{Store, StoreError};

/// The complete views of one job, as rebuilt or as read live.
#[derive(Debug, Clone, PartialEq)]
pub struct FullViews {
    pub job: JobView,
    pub agents: Vec<AgentView>,
    pub dead_letters: Vec<DeadLetterView>,
}

/// Folds a job's whole history (hot or archived) into fresh views.
pub async fn rebuild_job(
    store: &Store,
    blobs: &BlobStore,
    job_id: &str,
) -> Result<JobProjection, HistoryError> {
    let mut projection = JobProjection::default();
    let Some(mut pages) = HistoryPages::open(store, blobs, job_id, 1, None, 1000).await? else {
        return Ok(projection);
    };
    while let Some(page) = pages.next_page().await? {
        for raw in &page {
            let item = decode_item(job_id, raw);
            match item.event {
                Ok(env) => {
                    projection.apply(&env);
                }
                Err(e) => {
                    tracing::warn!(job_id, seq = item.seq, error = %e, "skipping undecodable event");
                    projection.skip_undecodable(item.seq);
                }
            }
        }
    }
    Ok(projection)
}

fn full(projection: JobProjection) -> FullViews {
    FullViews {
        job: projection.job,
        agents: projection.agents.into_values().collect(),
        dead_letters: projection.new_dead_letters,
    }
}

/// Reads a job's live views.
pub async fn live_views(store: &Store, job_id: &str) -> Result<Option<FullViews>, StoreError> {
    let Some(job) = store.job_view(job_id).await? else {
        return Ok(None);
    };
    Ok(Some(FullViews {
        job,
        agents: store.agent_views(job_id).await?,
        dead_letters: store.dead_letter_views(job_id).await?,
    }))
}

/// What a rebuild found or did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RebuildReport {
    pub jobs: usize,
    pub written: usize,
    /// Jobs whose live views differ from the rebuilt ones (with a short reason).
    pub differences: Vec<(String, String)>,
}

/// Rebuilds every job's views. With `write`, replaces the live views; otherwise only compares.
pub async fn rebuild_all(
    store: &Store,
    write: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<RebuildReport, HistoryError> {
    let blobs = BlobStore::from_env();
    let ids = store.job_ids().await?;
    let mut report = RebuildReport {
        jobs: ids.len(),
        ..Default::default()
    };
    for (i, job_id) in ids.iter().enumerate() {
        let rebuilt = rebuild_job(store, &blobs, job_id).await?;
        if write {
            if store.replace_projection(rebuilt.clone()).await? {
                report.written += 1;
            }
        } else {
            let live = live_views(store, job_id).await?;
            let rebuilt = full(rebuilt);
            match live {
                None => report
                    .differences
                    .push((job_id.clone(), "no live view".into())),
                Some(live) if live.job != rebuilt.job => report.differences.push((
                    job_id.clone(),
                    format!(
                        "job row differs (live seq {}, history seq {})",
                        live.job.last_seq, rebuilt.job.last_seq
                    ),
                )),
                Some(live) if live.agents != rebuilt.agents => report
                    .differences
                    .push((job_id.clone(), "agent rows differ".into())),
                Some(live) if live.dead_letters != rebuilt.dead_letters => report
                    .differences
                    .push((job_id.clone(), "dead letters differ".into())),
                Some(_) => {}
            }
        }
        progress(i + 1, ids.len());
    }
    Ok(report)
}
