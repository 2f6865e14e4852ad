//! Job backups (`mn job backup` / `mn job restore`): a paused job's record, agents and full
//! history plus its bundle files; restoring replays that history into a new job (paused, as it
//! was), so agents keep their progress instead of starting over.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use tonic::Status;

use super::context::ApiContext;
use super::{event_json, job_json, status, upload};
use crate::domain::event::{EventEnvelope, JobEvent};
use crate::domain::job::JobStatus;
use crate::runtime::clock::now_ms;
use crate::runtime::local;
use crate::store::{seal, validate_job_id};

/// The schema tag the published client checks.
pub const SCHEMA: &str = "mn.backup.v2";

/// Reads every file of a bundle folder, keyed `manifest.json` and `payloads/<path>`.
fn bundle_files(root: &Path) -> Result<HashMap<String, Vec<u8>>, Status> {
    let (manifest, payloads) = super::client::read_bundle(root).map_err(|e| {
        Status::failed_precondition(format!("the job's bundle cannot be read: {e}"))
    })?;
    let mut files: HashMap<String, Vec<u8>> = payloads
        .into_iter()
        .map(|(k, v)| (format!("payloads/{k}"), v))
        .collect();
    files.insert("manifest.json".into(), manifest.into_bytes());
    Ok(files)
}

/// Builds the backup of a paused job.
pub async fn export(
    ctx: &ApiContext,
    job_id: &str,
) -> Result<(Value, HashMap<String, Vec<u8>>), Status> {
    validate_job_id(job_id).map_err(|e| status::job_id(&e))?;
    let store = &ctx.store;
    let view = store
        .job_view(job_id)
        .await
        .map_err(|e| status::store(&e))?;
    let view = view.ok_or_else(|| Status::not_found(format!("job {job_id} was not found")))?;
    if view.status != Some(JobStatus::Paused) {
        return Err(Status::failed_precondition(format!(
            "only a paused job can be backed up; job {job_id} is {}",
            view.status.map_or("unknown", JobStatus::as_str)
        )));
    }
    let agents = store
        .agent_views(job_id)
        .await
        .map_err(|e| status::store(&e))?;
    let blobs = crate::runtime::blobs::BlobStore::from_env();
    let history: Vec<EventEnvelope> = crate::runtime::history::read_all(store, &blobs, job_id, 1)
        .await
        .map_err(|e| status::history(&e))?
        .into_iter()
        .filter_map(|h| h.event.ok())
        .collect();
    let bundle_path = history.iter().find_map(|e| match &e.payload {
        JobEvent::JobSubmitted(s) => s.bundle_path.clone(),
        _ => None,
    });
    let files = match bundle_path {
        Some(p) => bundle_files(Path::new(&p))?,
        None => {
            return Err(Status::failed_precondition(format!(
                "job {job_id} has no bundle on this node"
            )));
        }
    };
    let backup = json!({
        "schema_version": SCHEMA,
        "source_job_id": job_id,
        "created_at": crate::domain::view::iso_ms(now_ms()),
        "runtime": {
            "job": job_json::record(&view, &agents),
            "agents": agents,
            "events": history.iter().flat_map(event_json::to_json_events).collect::<Vec<_>>(),
            // The exact history, for a faithful restore.
            "history": history.iter().map(EventEnvelope::to_json).collect::<Vec<_>>(),
        },
    });
    Ok((backup, files))
}

/// Restores a backup as a new paused job; returns `{job_id, run_id, source_job_id}`.
pub async fn restore(
    ctx: &ApiContext,
    backup_json: &str,
    files: &HashMap<String, Vec<u8>>,
    run_id: &str,
) -> Result<Value, Status> {
    let backup: Value = serde_json::from_str(backup_json)
        .map_err(|e| Status::invalid_argument(format!("backup_json is not valid JSON: {e}")))?;
    if backup["schema_version"] != SCHEMA {
        return Err(Status::invalid_argument(format!(
            "backup_json.schema_version must be {SCHEMA:?}"
        )));
    }
    let history: Vec<EventEnvelope> = serde_json::from_value(backup["runtime"]["history"].clone())
        .map_err(|e| {
            Status::invalid_argument(format!(
                "backup_json.runtime.history is not a mirror-neuron history: {e}"
            ))
        })?;
    let manifest = files
        .get("manifest.json")
        .ok_or_else(|| Status::invalid_argument("bundle_files must contain manifest.json"))?;
    let manifest = String::from_utf8(manifest.clone())
        .map_err(|_| Status::invalid_argument("bundle_files manifest.json is not UTF-8"))?;
    let payloads: HashMap<String, Vec<u8>> = files
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("payloads/")
                .map(|rel| (rel.to_string(), v.clone()))
        })
        .collect();
    let bundle = upload::materialise(&ctx.bundles_dir, &manifest, &payloads).await?;
    let job_id = if run_id.is_empty() {
        local::new_job_id(&bundle.manifest.graph_id, now_ms())
    } else {
        run_id.to_string()
    };
    validate_job_id(&job_id).map_err(|e| status::job_id(&e))?;
    // The same facts under the new id, pointing at the restored bundle; leases are not
    // carried over (the restoring node takes a fresh one).
    let payloads: Vec<JobEvent> = history
        .into_iter()
        .filter(|e| {
            !matches!(
                e.payload,
                JobEvent::LeaseAcquired { .. } | JobEvent::LeaseReleased { .. }
            )
        })
        .map(|e| match e.payload {
            JobEvent::JobSubmitted(mut s) => {
                s.bundle_path = Some(bundle.root.display().to_string());
                JobEvent::JobSubmitted(s)
            }
            other => other,
        })
        .collect();
    if !matches!(payloads.first(), Some(JobEvent::JobSubmitted(_))) {
        return Err(Status::invalid_argument(
            "backup_json.runtime.history must start with job_submitted",
        ));
    }
    let source = backup["source_job_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let sealed = seal(&job_id, 0, 0, now_ms(), None, Some(&source), payloads);
    ctx.store
        .append(&job_id, 0, 0, &sealed)
        .await
        .map_err(|e| match e {
            crate::store::AppendError::Conflict { .. } => {
                Status::already_exists(format!("job {job_id} already exists"))
            }
            other => Status::internal(other.to_string()),
        })?;
    ctx.node.own(&job_id);
    Ok(json!({ "job_id": job_id, "run_id": job_id, "source_job_id": source, "status": "restored" }))
}
