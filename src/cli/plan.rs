//! `mirror-neuron plan <bundle> [--json]`: where the job's executors would run on the cluster
//! now, per agent the node, resources and device ids, like `nomad job plan`; nothing is
//! submitted. In process on `MN_REDIS_URL` (or the embedded Redis), or with `--target` through
//! the server's `SchedulerService.PlanJob`.
//! Exit 0 placeable; 2 not placeable or an invalid bundle (the reason is printed); 1 when the
//! command itself failed.

use std::path::PathBuf;

use tonic::Code;

use super::validate::EXIT_INVALID;
use crate::api::client::{Client, token_from_env};
use crate::api::pb::scheduler::PlanJobRequest;
use crate::runtime::Backend;
use crate::runtime::bundle::{BundleError, load_bundle};
use crate::runtime::cluster::dry_run::{DryRunError, PlanReport, dry_run, render};

pub async fn run(target: Option<&str>, bundle: PathBuf, json: bool) -> anyhow::Result<i32> {
    let report = match target {
        Some(t) => remote(t, &bundle).await?,
        None => local(bundle).await?,
    };
    let Some(report) = report else {
        return Ok(EXIT_INVALID);
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.placeable { 0 } else { EXIT_INVALID })
}

/// `None` when the bundle is invalid (already reported on stderr).
async fn local(bundle: PathBuf) -> anyhow::Result<Option<PlanReport>> {
    let loaded = tokio::task::spawn_blocking(move || load_bundle(&bundle)).await?;
    let bundle = match loaded {
        Ok(b) => b,
        Err(BundleError::Invalid(errors)) => {
            for e in errors {
                eprintln!("{e}");
            }
            return Ok(None);
        }
        Err(e @ BundleError::Io { .. }) => return Err(e.into()),
        Err(e) => {
            eprintln!("bundle: {e}");
            return Ok(None);
        }
    };
    let admission = crate::config::bool_var("MN_RESOURCE_ADMISSION_ENABLED", false)?;
    let backend = Backend::open().await?;
    let result = dry_run(&backend.store, &bundle.manifest, admission).await;
    backend.close().await;
    match result {
        Ok(r) => Ok(Some(r)),
        Err(DryRunError::Request(e)) => {
            eprintln!("{e}");
            Ok(None)
        }
        Err(DryRunError::Store(e)) => Err(e.into()),
    }
}

async fn remote(target: &str, bundle: &std::path::Path) -> anyhow::Result<Option<PlanReport>> {
    let path = bundle.join("manifest.json");
    let manifest_json =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut client = Client::connect(target, token_from_env()?.as_deref()).await?;
    let reply = client
        .scheduler
        .plan_job(PlanJobRequest {
            manifest_json,
            version: 1,
        })
        .await;
    let reply = match reply {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == Code::InvalidArgument => {
            eprintln!("{}", s.message());
            return Ok(None);
        }
        Err(s) => anyhow::bail!("{:?}: {}", s.code(), s.message()),
    };
    let report: PlanReport = serde_json::from_str(&reply.plan_json)
        .map_err(|e| anyhow::anyhow!("server sent an unreadable plan: {e}"))?;
    Ok(Some(report))
}
