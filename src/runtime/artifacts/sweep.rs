//! Artifact folders a step never removed (its node was killed mid-step) are swept by
//! `admin gc`: a folder goes once its job is finished or gone and it is older than the grace
//! period. A running job's folders stay however old they are (a step may run for hours).

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::runtime::gc::Removed;
use crate::store::{Store, StoreError};

/// Removes (or, with `dry_run`, lists) the step folders under `root` whose job is over.
pub async fn sweep(
    store: &Store,
    root: &Path,
    grace: Duration,
    dry_run: bool,
) -> Result<Vec<Removed>, StoreError> {
    let mut removed = Vec::new();
    let Ok(jobs) = std::fs::read_dir(root) else {
        return Ok(removed);
    };
    let now = SystemTime::now();
    for job in jobs.filter_map(Result::ok) {
        if !job.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = job.file_name().to_string_lossy().into_owned();
        if !job_is_over(store, &name).await? {
            continue;
        }
        for step in std::fs::read_dir(job.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = step.path();
            if old_enough(&path, now, grace) {
                let bytes = size(&path);
                if !dry_run && !remove(&path) {
                    continue;
                }
                removed.push(Removed {
                    name: format!("{name}/{}", step.file_name().to_string_lossy()),
                    bytes,
                });
            }
        }
        if !dry_run {
            // Gone once empty; a folder still holding a young step stays.
            let _ = std::fs::remove_dir(job.path());
        }
    }
    Ok(removed)
}

/// Finished (its view says so) or unknown (no view and no history). A job with a history
/// but no view yet (projection lag) counts as running: keeping a folder is the safe mistake.
async fn job_is_over(store: &Store, job_id: &str) -> Result<bool, StoreError> {
    if let Some(view) = store.job_view(job_id).await? {
        return Ok(view.status.is_some_and(|s| s.is_terminal()));
    }
    Ok(store.history_len(job_id).await? == 0)
}

fn old_enough(path: &Path, now: SystemTime, grace: Duration) -> bool {
    let modified = std::fs::metadata(path).and_then(|m| m.modified());
    modified.is_ok_and(|m| now.duration_since(m).unwrap_or_default() >= grace)
}

/// Removes a step folder, whose input folder is read-only.
fn remove(path: &Path) -> bool {
    let _ = super::staging::make_writable(&path.join("in"));
    match std::fs::remove_dir_all(path) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove artifact folder");
            false
        }
    }
}

fn size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
