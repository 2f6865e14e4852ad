//! `admin gc`: removes blobs no job references any more and uploaded bundles no active job
//! or schedule uses.
//!
//! Live blobs are the archives that archive pointers name plus every `{"$blob": {"sha256":
//! ...}}` reference and every artifact reference (`{name, sha256, size}`) found in a job's
//! views (job row, agents, dead letters) or history (hot or archived). Live bundles are the folders under `$MN_HOME/bundles` that an active job's
//! submission or any schedule names. Anything younger than the grace period is kept: a writer
//! may have stored it a moment ago and not yet recorded the reference.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::domain::event::JobEvent;
use crate::runtime::blobs::{BlobStore, is_digest};
use crate::runtime::history::{HistoryError, HistoryPages, decode_item};
use crate::store::Store;

/// What a collection found and removed (or, in a dry run, would remove).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub blobs_live: usize,
    pub blobs_kept_young: usize,
    pub blobs_removed: Vec<Removed>,
    pub bundles_live: usize,
    pub bundles_kept_young: usize,
    pub bundles_removed: Vec<Removed>,
    /// Step artifact folders of finished or deleted jobs (see `runtime::artifacts::sweep`).
    pub artifact_folders_removed: Vec<Removed>,
    pub bytes_freed: u64,
}

/// One blob or bundle folder that was (or would be) removed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Removed {
    pub name: String,
    pub bytes: u64,
}

/// References found so far.
#[derive(Default)]
struct Live {
    blobs: BTreeSet<String>,
    bundles: BTreeSet<PathBuf>,
}

impl Live {
    /// Records every `$blob` digest, every artifact reference's digest and every path under
    /// `bundles` in `value`.
    fn scan(&mut self, value: &Value, bundles: &Path) {
        match value {
            Value::Object(map) => {
                if let Some(sha) = map
                    .get("$blob")
                    .and_then(|b| b.get("sha256"))
                    .and_then(Value::as_str)
                {
                    self.blobs.insert(sha.to_string());
                }
                if let Some(artifact) = artifact_digest(map) {
                    self.blobs.insert(artifact.to_string());
                }
                map.values().for_each(|v| self.scan(v, bundles));
            }
            Value::Array(items) => items.iter().for_each(|v| self.scan(v, bundles)),
            Value::String(s) => {
                if let Some(folder) = bundle_folder(Path::new(s), bundles) {
                    self.bundles.insert(folder);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// The digest of an artifact reference (`{name, sha256, size}`, as messages carry them).
fn artifact_digest(map: &serde_json::Map<String, Value>) -> Option<&str> {
    let sha = map.get("sha256").and_then(Value::as_str)?;
    (map.contains_key("name")
        && map.contains_key("size")
        && crate::domain::artifact::is_sha256(sha))
    .then_some(sha)
}

/// The folder directly under `bundles` that `path` lies in, if any.
fn bundle_folder(path: &Path, bundles: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(bundles).ok()?;
    let first = rest.components().next()?;
    Some(bundles.join(first))
}

/// Finds every live reference. `progress(done, total)` counts jobs.
async fn live_references(
    store: &Store,
    blobs: &BlobStore,
    bundles: &Path,
    mut progress: impl FnMut(usize, usize),
) -> Result<Live, HistoryError> {
    let mut live = Live::default();
    for job_id in store.archived_jobs().await? {
        if let Some(r) = store.archive_record(&job_id).await? {
            live.blobs.insert(r.sha256);
        }
    }
    let active: BTreeSet<String> = store
        .active_job_views()
        .await?
        .into_iter()
        .map(|v| v.job_id)
        .collect();
    let ids = store.job_ids().await?;
    for (i, job_id) in ids.iter().enumerate() {
        if let Some(view) = store.job_view(job_id).await? {
            live.scan(&serde_json::to_value(&view).unwrap_or_default(), bundles);
        }
        for agent in store.agent_views(job_id).await? {
            live.scan(&serde_json::to_value(&agent).unwrap_or_default(), bundles);
        }
        for dead in store.dead_letter_views(job_id).await? {
            live.scan(&serde_json::to_value(&dead).unwrap_or_default(), bundles);
        }
        scan_history(
            store,
            blobs,
            job_id,
            active.contains(job_id),
            bundles,
            &mut live,
        )
        .await?;
        progress(i + 1, ids.len());
    }
    for schedule in store.schedule_views().await?.values() {
        live.scan(schedule, bundles);
    }
    Ok(live)
}

/// Blob references in a job's history; for an active job, also the bundle it runs from.
async fn scan_history(
    store: &Store,
    blobs: &BlobStore,
    job_id: &str,
    active: bool,
    bundles: &Path,
    live: &mut Live,
) -> Result<(), HistoryError> {
    let Some(mut pages) = HistoryPages::open(store, blobs, job_id, 1, None, 1000).await? else {
        return Ok(());
    };
    while let Some(page) = pages.next_page().await? {
        for raw in &page {
            // Only entries that mention a blob or an artifact (both carry a `sha256`), or the
            // submission, are worth decoding.
            let mentions_blob = raw.bytes.windows(6).any(|w| w == b"sha256");
            if !mentions_blob && raw.seq != 1 {
                continue;
            }
            let Ok(env) = decode_item(job_id, raw).event else {
                continue;
            };
            let payload = serde_json::to_value(&env.payload).unwrap_or_default();
            let submitted = matches!(env.payload, JobEvent::JobSubmitted(_));
            if mentions_blob {
                // Bundle paths only count for active jobs; scan with an unrelated root.
                live.scan(&payload, Path::new("\0"));
            }
            if submitted && active {
                live.scan(&payload, bundles);
            }
        }
    }
    Ok(())
}

/// How long ago `modified` was; zero when unknown (so an unreadable time never looks old).
fn age(modified: Option<SystemTime>, now: SystemTime) -> Duration {
    modified
        .and_then(|m| now.duration_since(m).ok())
        .unwrap_or(Duration::ZERO)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Removes unreferenced blobs and bundle folders older than `grace` (nothing with `dry_run`).
pub async fn collect(
    store: &Store,
    blobs: &BlobStore,
    bundles: &Path,
    grace: Duration,
    dry_run: bool,
    progress: impl FnMut(usize, usize),
) -> Result<GcReport, HistoryError> {
    let live = live_references(store, blobs, bundles, progress).await?;
    let now = SystemTime::now();
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    for digest in blobs.list()? {
        if live.blobs.contains(&digest) {
            report.blobs_live += 1;
            continue;
        }
        let path = blobs.path(&digest)?;
        if age(modified(&path), now) < grace {
            report.blobs_kept_young += 1;
            continue;
        }
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        if !dry_run {
            blobs.remove(&digest)?;
        }
        report.bytes_freed += bytes;
        report.blobs_removed.push(Removed {
            name: digest,
            bytes,
        });
    }
    collect_partial_blobs(blobs.root(), grace, now, dry_run, &mut report);
    collect_bundles(bundles, &live, grace, now, dry_run, &mut report);
    Ok(report)
}

/// `*.tmp` files a crashed blob write left behind (older than the grace: a write may be
/// in progress).
fn collect_partial_blobs(
    root: &Path,
    grace: Duration,
    now: SystemTime,
    dry_run: bool,
    report: &mut GcReport,
) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !name.ends_with(".tmp") || age(modified(&path), now) < grace {
            continue;
        }
        let bytes = entry.metadata().map_or(0, |m| m.len());
        if !dry_run && std::fs::remove_file(&path).is_err() {
            continue;
        }
        report.bytes_freed += bytes;
        report.blobs_removed.push(Removed { name, bytes });
    }
}

/// The bundle half of [`collect`]: only folders named like an upload (a sha256) are touched.
fn collect_bundles(
    bundles: &Path,
    live: &Live,
    grace: Duration,
    now: SystemTime,
    dry_run: bool,
    report: &mut GcReport,
) {
    let Ok(entries) = std::fs::read_dir(bundles) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || !is_digest(&name) {
            continue;
        }
        if live.bundles.contains(&path) {
            report.bundles_live += 1;
            continue;
        }
        if age(modified(&path), now) < grace {
            report.bundles_kept_young += 1;
            continue;
        }
        let bytes = dir_bytes(&path);
        if !dry_run && let Err(e) = std::fs::remove_dir_all(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove bundle");
            continue;
        }
        report.bytes_freed += bytes;
        report.bundles_removed.push(Removed { name, bytes });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_blob_references_and_bundle_folders_anywhere() {
        let bundles = Path::new("/home/u/.mn/bundles");
        let mut live = Live::default();
        let value = serde_json::json!({
            "result": {"out": {"$blob": {"sha256": "ab".repeat(32), "size": 3}, "preview": "x"}},
            "list": [{"$blob": {"sha256": "cd".repeat(32)}}],
            "a": [{"name": "report.csv", "sha256": "12".repeat(32), "size": 9}],
            "bundle_path": "/home/u/.mn/bundles/ef/payloads/x.py",
            "other": "/tmp/elsewhere",
        });
        live.scan(&value, bundles);
        assert!(live.blobs.contains(&"ab".repeat(32)));
        assert!(live.blobs.contains(&"cd".repeat(32)));
        // Artifact references keep their blobs too.
        assert!(live.blobs.contains(&"12".repeat(32)));
        assert_eq!(
            live.bundles.iter().collect::<Vec<_>>(),
            vec![&bundles.join("ef")]
        );
    }
}
