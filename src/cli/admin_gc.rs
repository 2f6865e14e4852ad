//! `mirror-neuron admin gc [--dry-run] [--grace 1h] [--json]`: the blob and bundle collector
//! (`runtime::gc`) with a progress bar on a terminal and a summary or JSON report.

use super::output::{print_json, print_table};
use crate::runtime::blobs::BlobStore;
use crate::runtime::gc::{GcReport, collect};
use crate::runtime::history::retention::parse_duration;
use crate::store::Store;

pub async fn run(store: &Store, dry_run: bool, grace: &str, json: bool) -> anyhow::Result<i32> {
    let grace = parse_duration(grace).map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
    let home = crate::config::home_dir();
    let bar = super::job::progress_bar("scanning jobs");
    let mut report = collect(
        store,
        &BlobStore::from_env(),
        &home.join("bundles"),
        grace,
        dry_run,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .await?;
    bar.finish_and_clear();
    let root = crate::runtime::artifacts::roots::artifact_root();
    let folders = crate::runtime::artifacts::sweep::sweep(store, &root, grace, dry_run).await?;
    report.bytes_freed += folders.iter().map(|f| f.bytes).sum::<u64>();
    report.artifact_folders_removed = folders;
    if json {
        print_json(&report)?;
    } else {
        print_summary(&report);
    }
    Ok(0)
}

fn print_summary(r: &GcReport) {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    let rows: Vec<Vec<String>> = r
        .blobs_removed
        .iter()
        .map(|b| vec!["blob".into(), b.name.clone(), b.bytes.to_string()])
        .chain(
            r.bundles_removed
                .iter()
                .map(|b| vec!["bundle".into(), b.name.clone(), b.bytes.to_string()]),
        )
        .chain(
            r.artifact_folders_removed
                .iter()
                .map(|f| vec!["artifacts".into(), f.name.clone(), f.bytes.to_string()]),
        )
        .collect();
    if !rows.is_empty() {
        print_table(&["KIND", "NAME", "BYTES"], &rows);
    }
    println!(
        "{verb} {} blobs, {} bundles and {} artifact folders ({} bytes); kept {} referenced and {} recent blobs, {} used and {} recent bundles",
        r.blobs_removed.len(),
        r.bundles_removed.len(),
        r.artifact_folders_removed.len(),
        r.bytes_freed,
        r.blobs_live,
        r.blobs_kept_young,
        r.bundles_live,
        r.bundles_kept_young
    );
}
