//! A dry run of the scheduler, like `nomad job plan`: where a job's executors would run on the
//! cluster as it is now, or why they cannot. Nothing is written. `mirror-neuron plan` runs it
//! in process (on `MN_REDIS_URL` or the embedded Redis) and the gRPC `PlanJob` on a server;
//! both read the same inputs an owner reads when it starts the job.

use serde::{Deserialize, Serialize};

use super::candidates::{read_allocations, read_candidates};
use crate::domain::manifest::{AgentType, Manifest};
use crate::domain::scheduler::{self, JobRequest, JobRequestError, Plan};
use crate::store::{Store, StoreError};

/// The answer, as `plan --json` prints it and `PlanJob` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    pub placeable: bool,
    /// The manifest's graph id (a dry run has no job id).
    pub job_id: String,
    pub job_type: String,
    pub strategy: String,
    /// Nodes known to the cluster, and how many of them take work now.
    pub nodes: usize,
    pub schedulable_nodes: usize,
    /// Whether the stored resource limits capped the nodes (`MN_RESOURCE_ADMISSION_ENABLED`).
    pub admission: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Why nothing fits: the requirement, the closest node, what filtered the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a dry run gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The manifest's placement fields cannot be read: fix the bundle.
    #[error("{0}")]
    Request(#[from] JobRequestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the scheduler is asked for a job: its executors. Process modules run inside the
/// job's owner, wherever that is, so reserving node capacity for them would be wrong.
pub fn executor_request(manifest: &Manifest, job_id: &str) -> Result<JobRequest, JobRequestError> {
    let mut request = JobRequest::from_manifest(manifest)?;
    if let Some(profiles) = execution_profiles_from_env().map_err(JobRequestError::ProfileConfig)? {
        request = request.with_profiles(&profiles)?;
    }
    job_id.clone_into(&mut request.job_id);
    request.tasks.retain(|t| {
        manifest
            .node(&t.agent_id)
            .is_some_and(|n| n.agent_type == AgentType::Executor)
    });
    Ok(request)
}

/// Plans `manifest` against the live cluster and the plans of every active job.
pub async fn dry_run(
    store: &Store,
    manifest: &Manifest,
    admission: bool,
) -> Result<PlanReport, DryRunError> {
    let request = executor_request(manifest, &manifest.graph_id)?;
    let nodes = read_candidates(store, admission).await?;
    let existing: Vec<_> = read_allocations(store, None)
        .await?
        .into_values()
        .flatten()
        .collect();
    let result = scheduler::plan(&nodes, &existing, &request);
    Ok(PlanReport {
        placeable: result.is_ok(),
        job_id: manifest.graph_id.clone(),
        job_type: manifest.job_type.as_str().to_string(),
        strategy: serde_json::to_value(request.strategy)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        nodes: nodes.len(),
        schedulable_nodes: nodes.iter().filter(|n| n.schedulable()).count(),
        admission,
        error: result.as_ref().err().map(ToString::to_string),
        plan: result.ok(),
    })
}

/// The report for people: a summary line, then one row per agent, or the explanation.
pub fn render(report: &PlanReport) -> String {
    let mut out = format!(
        "job {} ({}, {}): {} ({} node{}, {} schedulable{})\n",
        report.job_id,
        report.job_type,
        report.strategy,
        if report.placeable {
            "placeable"
        } else {
            "NOT placeable"
        },
        report.nodes,
        if report.nodes == 1 { "" } else { "s" },
        report.schedulable_nodes,
        if report.admission {
            ", resource limits applied"
        } else {
            ""
        },
    );
    if let Some(e) = &report.error {
        out.push_str(e);
        out.push('\n');
        return out;
    }
    let Some(plan) = &report.plan else {
        return out;
    };
    if plan.allocations.is_empty() {
        out.push_str("no executors to place: every agent runs inside the job's owner\n");
        return out;
    }
    let header = [
        "AGENT",
        "NODE",
        "CPU",
        "MEMORY MB",
        "DISK MB",
        "GPUS",
        "DEVICES",
    ];
    let rows: Vec<[String; 7]> = plan
        .allocations
        .iter()
        .map(|a| {
            [
                a.agent_id.clone(),
                a.node.clone(),
                cores(a.cpu_millis),
                a.memory_mb.to_string(),
                a.disk_mb.to_string(),
                a.gpus.to_string(),
                if a.device_ids.is_empty() {
                    "-".into()
                } else {
                    a.device_ids.join(",")
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    out.push_str(&line(header.to_vec()));
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    let t = &plan.requirements;
    out.push_str(&format!(
        "total: {} cpu, {} MB memory, {} MB disk, {} gpu\n",
        cores(t.cpu_millis),
        t.memory_mb,
        t.disk_mb,
        t.gpu_count
    ));
    out
}

/// Cores from millicores without trailing zeros (`0.5`, `4`).
fn cores(millis: u64) -> String {
    let s = format!("{:.3}", millis as f64 / 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::manifest::JobType;
    use crate::domain::scheduler::{Allocation, Requirements, Strategy};

    fn report(plan: Option<Plan>, error: Option<&str>) -> PlanReport {
        PlanReport {
            placeable: plan.is_some(),
            job_id: "g".into(),
            job_type: "batch".into(),
            strategy: "binpack".into(),
            nodes: 2,
            schedulable_nodes: 1,
            admission: false,
            plan,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn a_plan_prints_one_row_per_agent_with_its_devices() {
        let plan = Plan {
            status: "planned".into(),
            job_id: "g".into(),
            job_type: JobType::Batch,
            strategy: Strategy::Binpack,
            placement_count: 1,
            requirements: Requirements {
                cpu_millis: 1500,
                memory_mb: 512,
                disk_mb: 0,
                gpu_count: 1,
            },
            allocations: vec![Allocation {
                agent_id: "train".into(),
                node: "gpu-box".into(),
                cpu_millis: 1500,
                memory_mb: 512,
                gpus: 1,
                device_ids: vec!["GPU-1".into()],
                ..Allocation::default()
            }],
            system_targets: vec![],
            skipped_nodes: vec![],
        };
        let text = render(&report(Some(plan), None));
        assert!(
            text.starts_with("job g (batch, binpack): placeable (2 nodes, 1 schedulable)\n"),
            "{text}"
        );
        assert!(text.contains("train  gpu-box  1.5"), "{text}");
        assert!(text.contains("GPU-1"), "{text}");
        assert!(
            text.ends_with("total: 1.5 cpu, 512 MB memory, 0 MB disk, 1 gpu\n"),
            "{text}"
        );
    }

    #[test]
    fn a_failure_prints_the_explanation() {
        let text = render(&report(None, Some("agent w needs 1 GPU")));
        assert_eq!(
            text,
            "job g (batch, binpack): NOT placeable (2 nodes, 1 schedulable)\nagent w needs 1 GPU\n"
        );
    }
}

/// The cluster's execution profiles (`MN_EXECUTION_PROFILES_JSON`: name -> profile, core-spec
/// 7.4), as far as placement is concerned: `gpu` and `required_capabilities`. Unset: profiles
/// are matched by name only. Other profile keys configure the runner and are ignored here.
pub fn execution_profiles_from_env() -> Result<
    Option<std::collections::BTreeMap<String, crate::domain::scheduler::ProfileRequirement>>,
    String,
> {
    let Some(text) = crate::config::var("MN_EXECUTION_PROFILES_JSON") else {
        return Ok(None);
    };
    parse_profiles(&text).map(Some)
}

fn parse_profiles(
    text: &str,
) -> Result<std::collections::BTreeMap<String, crate::domain::scheduler::ProfileRequirement>, String>
{
    let setting = "MN_EXECUTION_PROFILES_JSON";
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{setting} is not valid JSON: {e}"))?;
    let map = value
        .as_object()
        .ok_or_else(|| format!("{setting} must be an object of profile name -> profile"))?;
    let mut out = std::collections::BTreeMap::new();
    for (name, profile) in map {
        let field = |k: &str| profile.get(k);
        let gpu = match field("gpu") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(format!("{setting}.{name}.gpu must be true or false")),
        };
        let required_capabilities = match field("required_capabilities") {
            None | Some(serde_json::Value::Null) => vec![],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|c| {
                    c.as_str().map(String::from).ok_or_else(|| {
                        format!("{setting}.{name}.required_capabilities must hold strings")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(format!(
                    "{setting}.{name}.required_capabilities must be a list of strings"
                ));
            }
        };
        out.insert(
            name.clone(),
            crate::domain::scheduler::ProfileRequirement {
                gpu,
                required_capabilities,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod profile_tests {
    use super::parse_profiles;

    #[test]
    fn profiles_parse_and_bad_ones_name_the_field() {
        let p = parse_profiles(r#"{"cuda": {"gpu": true, "required_capabilities": ["cuda"], "pool": "gpu"}, "cpu": {}}"#)
            .expect("valid");
        assert!(p["cuda"].gpu);
        assert_eq!(p["cuda"].required_capabilities, vec!["cuda".to_string()]);
        assert!(!p["cpu"].gpu);
        assert_eq!(
            parse_profiles(r#"{"x": {"gpu": "yes"}}"#).err().as_deref(),
            Some("MN_EXECUTION_PROFILES_JSON.x.gpu must be true or false")
        );
        assert!(parse_profiles("[1]").is_err());
    }
}
