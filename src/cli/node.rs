//! `mirror-neuron node list|status|drain|undrain|maintenance`: the cluster's nodes, in this
//! process (on `MN_REDIS_URL` or the embedded Redis) or through `--target` (gRPC).

use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::Value;

use super::output::{print_json, print_table};
use super::remote::{failed, parse};
use crate::api::client::{Client, token_from_env};
use crate::api::pb::cluster as pb;
use crate::runtime::Backend;
use crate::runtime::cluster::{ops, overview};

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Every node: status, eligibility, resources, jobs owned, work queued.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One node's state, drain and maintenance.
    Status {
        /// The node's name (as `node list` shows it).
        node: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop placing work on a node; after the deadline its jobs and work move elsewhere.
    Drain {
        /// The node's name (as `node list` shows it).
        node: String,
        /// Why, recorded with the change.
        #[arg(long)]
        reason: Option<String>,
        /// How long running work may finish in place (e.g. 30s, 10m, 1h).
        #[arg(long, default_value = "30m", value_parser = parse_duration)]
        deadline: Duration,
        /// Say what would happen without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Wait until the drain completes.
        #[arg(long)]
        wait: bool,
        /// Move system jobs too (they are left in place by default).
        #[arg(long)]
        include_system_jobs: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a drain; with --mark-eligible the node takes work again, else it stays in
    /// maintenance.
    Undrain {
        /// The node's name (as `node list` shows it).
        node: String,
        /// Why, recorded with the change.
        #[arg(long)]
        reason: Option<String>,
        /// Also make the node eligible for new work again (undrain alone only ends the drain).
        #[arg(long)]
        mark_eligible: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Switch maintenance mode (out of scheduling, work stays where it is).
    Maintenance {
        /// The node's name (as `node list` shows it).
        node: String,
        /// Put the node in maintenance: no new work is placed on it.
        #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
        enable: bool,
        /// Take the node out of maintenance.
        #[arg(long)]
        disable: bool,
        /// Why, recorded with the change.
        #[arg(long)]
        reason: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `30s`, `10m`, `1h`, `500ms` or plain milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m or 1h"))?;
    let ms = match unit {
        "" | "ms" => n,
        "s" => n * 1_000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h, d)")),
    };
    Ok(Duration::from_millis(ms))
}

/// Where node commands go.
// One per CLI process, never moved around: boxing a variant would only add noise.
#[allow(clippy::large_enum_variant)]
enum Conn {
    Local(Backend),
    Remote(Client),
}

impl Conn {
    async fn list(&mut self) -> anyhow::Result<Vec<Value>> {
        match self {
            Conn::Local(b) => Ok(overview::nodes(&b.store, None).await?),
            Conn::Remote(c) => {
                let reply = c
                    .cluster
                    .get_system_summary(pb::GetSystemSummaryRequest { version: 1 })
                    .await
                    .map_err(failed)?;
                let v = parse(&reply.into_inner().summary_json)?;
                Ok(v["nodes"].as_array().cloned().unwrap_or_default())
            }
        }
    }

    async fn status(&mut self, node: &str) -> anyhow::Result<Value> {
        match self {
            Conn::Local(b) => {
                let s =
                    b.store.node_view(node).await?.ok_or_else(|| {
                        anyhow::anyhow!("node {node} is not known to the cluster")
                    })?;
                Ok(ops::status_json(&s))
            }
            Conn::Remote(c) => {
                let reply = c
                    .cluster
                    .get_node_drain_status(pb::GetNodeDrainStatusRequest {
                        node_name: node.into(),
                        version: 1,
                    })
                    .await
                    .map_err(failed)?;
                parse(&reply.into_inner().result_json)
            }
        }
    }

    async fn drain(&mut self, req: ops::DrainRequest) -> anyhow::Result<Value> {
        match self {
            Conn::Local(b) => Ok(ops::drain(&b.store, &req).await?),
            Conn::Remote(c) => {
                let reply = c
                    .cluster
                    .drain_node(pb::DrainNodeRequest {
                        node_name: req.node,
                        reason: req.reason.unwrap_or_default(),
                        dry_run: req.dry_run,
                        deadline_ms: req.deadline_ms.min(i64::MAX as u64) as i64,
                        ignore_system_jobs: req.ignore_system_jobs,
                        wait: false,
                        version: 1,
                    })
                    .await
                    .map_err(failed)?;
                parse(&reply.into_inner().result_json)
            }
        }
    }

    async fn undrain(
        &mut self,
        node: String,
        reason: Option<String>,
        mark_eligible: bool,
    ) -> anyhow::Result<Value> {
        match self {
            Conn::Local(b) => Ok(ops::undrain(&b.store, &node, reason, mark_eligible).await?),
            Conn::Remote(c) => {
                let reply = c
                    .cluster
                    .cancel_node_drain(pb::CancelNodeDrainRequest {
                        node_name: node,
                        reason: reason.unwrap_or_default(),
                        mark_eligible,
                        version: 1,
                    })
                    .await
                    .map_err(failed)?;
                parse(&reply.into_inner().result_json)
            }
        }
    }

    async fn maintenance(
        &mut self,
        node: String,
        enabled: bool,
        reason: Option<String>,
    ) -> anyhow::Result<Value> {
        match self {
            Conn::Local(b) => Ok(ops::maintenance(&b.store, &node, enabled, reason).await?),
            Conn::Remote(c) => {
                let reply = c
                    .cluster
                    .set_node_maintenance(pb::SetNodeMaintenanceRequest {
                        node_name: node,
                        enabled,
                        reason: reason.unwrap_or_default(),
                        version: 1,
                    })
                    .await
                    .map_err(failed)?;
                parse(&reply.into_inner().result_json)
            }
        }
    }
}

fn show_state(v: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(v);
    }
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    println!(
        "node {}: {} (scheduling eligible: {})",
        s("node"),
        s("status"),
        v["scheduling_eligible"]
    );
    if let Some(d) = v["drain"].as_object() {
        println!(
            "drain: {} ({}), deadline {}",
            d.get("status").and_then(Value::as_str).unwrap_or("-"),
            d.get("reason").and_then(Value::as_str).unwrap_or("-"),
            d.get("deadline_at").and_then(Value::as_str).unwrap_or("-"),
        );
    }
    if let Some(actions) = v["actions"].as_array() {
        for a in actions {
            println!(
                "  {}  {}",
                a["job_id"].as_str().unwrap_or("-"),
                a["status"].as_str().unwrap_or("-")
            );
        }
    }
    Ok(())
}

pub async fn run(target: Option<&str>, cmd: NodeCmd) -> anyhow::Result<i32> {
    let mut conn = match target {
        Some(t) => Conn::Remote(Client::connect(t, token_from_env()?.as_deref()).await?),
        None => Conn::Local(Backend::open().await?),
    };
    match cmd {
        NodeCmd::List { json } => {
            let nodes = conn.list().await?;
            if json {
                print_json(&nodes)?;
            } else {
                let rows: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|n| {
                        let s = |k: &str| match &n[k] {
                            Value::String(s) => s.clone(),
                            Value::Null => "-".into(),
                            other => other.to_string(),
                        };
                        vec![
                            s("name"),
                            s("status"),
                            s("scheduling_eligible"),
                            if n["leader"] == true {
                                "yes".into()
                            } else {
                                String::new()
                            },
                            s("cpu_cores"),
                            s("memory_mb"),
                            s("gpu_count"),
                            s("owned_jobs"),
                            s("pending_work"),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "NODE",
                        "STATUS",
                        "ELIGIBLE",
                        "LEADER",
                        "CPUS",
                        "MEMORY_MB",
                        "GPUS",
                        "JOBS",
                        "WORK",
                    ],
                    &rows,
                );
            }
        }
        NodeCmd::Status { node, json } => show_state(&conn.status(&node).await?, json)?,
        NodeCmd::Drain {
            node,
            reason,
            deadline,
            dry_run,
            wait,
            include_system_jobs,
            json,
        } => {
            let req = ops::DrainRequest {
                node: node.clone(),
                reason,
                deadline_ms: deadline.as_millis() as u64,
                dry_run,
                ignore_system_jobs: !include_system_jobs,
            };
            let v = conn.drain(req).await?;
            if wait && !dry_run {
                let done =
                    wait_for_drain(&mut conn, &node, deadline + Duration::from_secs(120)).await?;
                show_state(&done, json)?;
            } else {
                show_state(&v, json)?;
            }
        }
        NodeCmd::Undrain {
            node,
            reason,
            mark_eligible,
            json,
        } => show_state(&conn.undrain(node, reason, mark_eligible).await?, json)?,
        NodeCmd::Maintenance {
            node,
            enable,
            disable: _,
            reason,
            json,
        } => show_state(&conn.maintenance(node, enable, reason).await?, json)?,
    }
    if let Conn::Local(b) = conn {
        b.close().await;
    }
    Ok(0)
}

/// Polls the node until its drain is no longer in progress, with a spinner on a terminal.
async fn wait_for_drain(conn: &mut Conn, node: &str, limit: Duration) -> anyhow::Result<Value> {
    let bar = indicatif::ProgressBar::new_spinner();
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let start = Instant::now();
    loop {
        let v = conn.status(node).await?;
        let drain = v["drain"]["status"].as_str().unwrap_or("");
        if drain != "draining" {
            bar.finish_and_clear();
            return Ok(v);
        }
        if start.elapsed() > limit {
            bar.finish_and_clear();
            anyhow::bail!("node {node} is still draining after {}s", limit.as_secs());
        }
        bar.set_message(format!("draining {node} ({}s)", start.elapsed().as_secs()));
        bar.tick();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_with_units_and_refuse_garbage() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("m").is_err());
    }
}
