//! `mirror-neuron admin ...`: migrations, projection rebuilds, feed retention, store status.

use clap::Subcommand;

use super::output::{print_json, print_table};
use crate::runtime::{Backend, clock, rebuild};

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Apply pending keyspace migrations in order.
    Migrate {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild every read view from the event history (the views are replaced).
    RebuildProjections {
        /// Only compare rebuilt views with the live ones; write nothing. Exit 1 on a difference.
        #[arg(long)]
        check: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Trim feed entries that every consumer group has acknowledged.
    TrimFeed {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs no job references (archives of deleted jobs, orphaned outputs) and
    /// uploaded bundles no active job or schedule uses; anything younger than --grace stays.
    Gc {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Keep blobs and bundles younger than this (`1h`, `30m`, `90s`, plain seconds).
        #[arg(long, default_value = "1h")]
        grace: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Schema version, feed length and backlog, dead letters.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: AdminCmd) -> anyhow::Result<i32> {
    let backend = Backend::open().await?;
    let code = run_with(&backend, cmd).await;
    backend.close().await;
    code
}

async fn run_with(backend: &Backend, cmd: AdminCmd) -> anyhow::Result<i32> {
    let store = &backend.store;
    match cmd {
        AdminCmd::Gc {
            dry_run,
            grace,
            json,
        } => super::admin_gc::run(store, dry_run, &grace, json).await,
        AdminCmd::Migrate { json } => {
            // Backend::open already migrated; running again reports what is applied.
            let applied = store.migrate(clock::now_ms()).await?;
            let version = store.schema_version().await?;
            if json {
                let rows: Vec<_> = applied
                    .iter()
                    .map(|a| serde_json::json!({"number": a.number, "name": a.name, "ran_now": a.ran}))
                    .collect();
                print_json(&serde_json::json!({"schema_version": version, "migrations": rows}))?;
            } else {
                for a in &applied {
                    let what = if a.ran { "applied" } else { "already applied" };
                    println!("{:04} {:<20} {what}", a.number, a.name);
                }
                println!("schema version {version}");
            }
            Ok(0)
        }
        AdminCmd::RebuildProjections { check, json } => {
            let bar = super::job::progress_bar("rebuilding views");
            let report = rebuild::rebuild_all(store, !check, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await?;
            bar.finish_and_clear();
            if json {
                print_json(&serde_json::json!({
                    "jobs": report.jobs,
                    "written": report.written,
                    "differences": report.differences.iter().map(|(j, r)| serde_json::json!({"job_id": j, "reason": r})).collect::<Vec<_>>(),
                }))?;
            } else if check {
                for (job, reason) in &report.differences {
                    println!("{job}: {reason}");
                }
                println!(
                    "{} job(s) checked, {} difference(s)",
                    report.jobs,
                    report.differences.len()
                );
            } else {
                println!("{} job(s) rebuilt from history", report.written);
            }
            Ok(if check && !report.differences.is_empty() {
                1
            } else {
                0
            })
        }
        AdminCmd::TrimFeed { json } => {
            // Each feed shard is trimmed on its own (one on a single Redis).
            let mut shards = Vec::new();
            for shard in store.keys().shards() {
                shards.push((shard, store.trim_feed(shard, None).await?));
            }
            let trimmed: u64 = shards.iter().map(|(_, r)| r.trimmed).sum();
            if json {
                let rows: Vec<_> = shards
                    .iter()
                    .map(|(s, r)| serde_json::json!({"shard": s.0, "trimmed": r.trimmed, "min_id": r.min_id}))
                    .collect();
                let min_id = shards.first().map(|(_, r)| r.min_id.clone());
                print_json(
                    &serde_json::json!({"trimmed": trimmed, "min_id": min_id, "shards": rows}),
                )?;
            } else {
                for (s, r) in &shards {
                    let on = if shards.len() > 1 {
                        format!(" on shard {}", s.0)
                    } else {
                        String::new()
                    };
                    println!(
                        "trimmed {} feed entries{on} (kept from {})",
                        r.trimmed, r.min_id
                    );
                }
            }
            Ok(0)
        }
        AdminCmd::Status { json } => {
            let version = store.schema_version().await?;
            let feed_len = store.feed_len().await?;
            let backlog = store
                .feed_backlog(crate::runtime::projector::PROJECTION_GROUP)
                .await?;
            let dead = store.event_dead_letters().await?;
            let jobs = store.job_ids().await?.len();
            if json {
                print_json(&serde_json::json!({
                    "namespace": store.keys().namespace(),
                    "redis": store.topology().describe(),
                    "shards": store.keys().shards().count(),
                    "schema_version": version,
                    "supported_schema_version": crate::store::migrate::latest_version(),
                    "jobs": jobs,
                    "feed_length": feed_len,
                    "projection_backlog": backlog,
                    "event_dead_letters": dead,
                }))?;
            } else {
                print_table(
                    &[
                        "namespace",
                        "schema",
                        "jobs",
                        "feed",
                        "backlog",
                        "dead letters",
                    ],
                    &[vec![
                        store.keys().namespace().to_string(),
                        version.to_string(),
                        jobs.to_string(),
                        feed_len.to_string(),
                        backlog.to_string(),
                        dead.len().to_string(),
                    ]],
                );
            }
            Ok(0)
        }
    }
}
