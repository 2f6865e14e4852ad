//! Bounding what a finished executor step hands to the job: its output counts against the
//! job's budget (refused past it), large values in its outcome become blob references, and the
//! blobs it wrote are announced so other nodes can fetch them.

use serde_json::Value;

use crate::domain::agents::StepOutcome;
use crate::domain::output::{BlobPointer, blob_refs, externalize, job_budget, judge_budget};
use crate::runtime::blobs::BlobStore;
use crate::runtime::executor::ExecutorConfig;
use crate::store::Store;

/// Where a step's outputs are accounted and announced.
pub struct OutputSink<'a> {
    pub store: &'a Store,
    /// The node that ran the step, when it serves blob requests (`None` in a local `run`).
    pub node: Option<&'a str>,
    pub blobs: &'a BlobStore,
}

/// Charges the step's stored bytes (its kept output and published artifacts) to the job's
/// budget. `Err` is the step's error when the budget would be passed: the output is refused,
/// and its bytes are not counted.
pub async fn charge_budget(
    sink: &OutputSink<'_>,
    job_id: &str,
    config: &ExecutorConfig,
    step: u64,
) -> Result<(), Value> {
    let server = crate::runtime::executor::config::job_output_budget()
        .map_err(|e| serde_json::json!({"error": e, "kind": "config"}))?;
    let budget = job_budget(server, config.spec.max_job_output_bytes);
    let used = match sink.store.add_job_output(job_id, step).await {
        Ok(u) => u,
        Err(e) => {
            // The budget is a guard against runaway output, not the job's truth: a Redis
            // hiccup here must not fail a step whose result may still be reported.
            tracing::warn!(job_id, error = %e, "output budget not charged");
            return Ok(());
        }
    };
    let verdict = judge_budget(used, step, budget);
    match verdict.error(job_id) {
        None => Ok(()),
        Some(error) => {
            let _ = sink.store.take_back_job_output(job_id, step).await;
            Err(error)
        }
    }
}

/// Replaces every value of the outcome larger than the inline limit by a blob reference and
/// announces the blobs the step produced. Runs the disk writes off the async workers.
pub async fn bound_outcome(
    sink: &OutputSink<'_>,
    inline: usize,
    outcome: StepOutcome,
) -> Result<StepOutcome, Value> {
    let blobs = sink.blobs.clone();
    let (bounded, held) = tokio::task::spawn_blocking(move || {
        let bounded = externalize_outcome(outcome, inline, &blobs)?;
        // A reference echoed from the step's input may name a blob held elsewhere: only
        // what is stored here is announced as held here.
        let held: Vec<String> = outcome_refs(&bounded)
            .into_iter()
            .map(|p| p.sha256)
            .filter(|d| blobs.contains(d))
            .collect();
        Ok::<_, crate::runtime::blobs::BlobError>((bounded, held))
    })
    .await
    .map_err(|e| serde_json::json!({"error": format!("output task failed: {e}"), "kind": "output"}))?
    .map_err(|e| serde_json::json!({"error": format!("cannot store the step's output: {e}"), "kind": "output"}))?;
    if let Some(node) = sink.node
        && let Err(e) = sink.store.announce_blobs(node, &held).await
    {
        tracing::warn!(node, error = %e, "blobs not announced; other nodes cannot fetch them");
    }
    Ok(bounded)
}

fn externalize_outcome(
    mut outcome: StepOutcome,
    inline: usize,
    blobs: &BlobStore,
) -> Result<StepOutcome, crate::runtime::blobs::BlobError> {
    let mut put = |bytes: &[u8]| {
        blobs.put(bytes).map(|r| BlobPointer {
            sha256: r.sha256,
            size: r.size,
        })
    };
    for emit in &mut outcome.emits {
        externalize(&mut emit.body, inline, &mut put)?;
    }
    for (_, payload) in &mut outcome.events {
        externalize(payload, inline, &mut put)?;
    }
    if let Some(v) = &mut outcome.complete {
        externalize(v, inline, &mut put)?;
    }
    if let Some(v) = &mut outcome.state {
        externalize(v, inline, &mut put)?;
    }
    Ok(outcome)
}

/// Every reference the outcome carries.
fn outcome_refs(outcome: &StepOutcome) -> Vec<BlobPointer> {
    let mut refs: Vec<BlobPointer> = outcome
        .emits
        .iter()
        .flat_map(|e| blob_refs(&e.body))
        .collect();
    // Artifacts the messages carry: published here, or fetched here for this step's input.
    refs.extend(
        outcome
            .emits
            .iter()
            .flat_map(|e| e.artifacts.iter().flatten())
            .map(|a| BlobPointer {
                sha256: a.sha256.clone(),
                size: a.size,
            }),
    );
    refs.extend(outcome.events.iter().flat_map(|(_, p)| blob_refs(p)));
    refs.extend(outcome.complete.iter().flat_map(blob_refs));
    refs.extend(outcome.state.iter().flat_map(blob_refs));
    refs.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    refs.dedup();
    refs
}
