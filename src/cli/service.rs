//! `mirror-neuron service list|resolve|check`: the service registry, in this process (on
//! `MN_REDIS_URL` or the embedded Redis) or through `--target` (the same RPCs the published
//! client calls). `--json` prints the server's answer as is.

use clap::Subcommand;
use serde_json::{Value, json};

use super::output::{print_json, print_table};
use super::remote::{failed, parse};
use crate::api::client::{Client, token_from_env};
use crate::api::pb::cluster as pb;
use crate::runtime::Backend;

#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// Registered instances (primary ones; --all adds candidates and non-passing ones).
    List {
        /// Only instances of the service with this name.
        #[arg(long)]
        name: Option<String>,
        /// Only instances hosted by this node.
        #[arg(long)]
        node: Option<String>,
        /// Only instances registered by this job (its full id).
        #[arg(long)]
        job_id: Option<String>,
        /// passing, warning or critical.
        #[arg(long)]
        status: Option<String>,
        /// Every tag must be on the instance (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Include candidates (non-primary deployment roles).
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Passing instances of one service.
    Resolve {
        /// The service's name.
        name: String,
        /// Every tag must be on the instance (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Only instances hosted by this node.
        #[arg(long)]
        node: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check requirements now, as preflight would: a JSON list of service entries (or a
    /// bare service name, looked up in the registry). Exit 1 when one fails.
    Check {
        /// JSON (`[{"name": "api", "port": 8080}]`) or a service name.
        services: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[allow(clippy::large_enum_variant)]
enum Conn {
    Local(Backend),
    Remote(Client),
}

impl Conn {
    async fn list(&mut self, query: &Value) -> anyhow::Result<Value> {
        match self {
            Conn::Local(b) => Ok(crate::api::services::list(&b.store, &query.to_string())
                .await
                .map_err(failed)?),
            Conn::Remote(c) => {
                let reply = c
                    .cluster
                    .list_services(pb::ListServicesRequest {
                        query_json: query.to_string(),
                        version: 1,
                    })
                    .await
                    .map_err(failed)?;
                parse(&reply.into_inner().result_json)
            }
        }
    }

    async fn resolve(&mut self, name: &str, query: &Value) -> anyhow::Result<Value> {
        match self {
            Conn::Local(b) => Ok(
                crate::api::services::resolve(&b.store, name, &query.to_string())
                    .await
                    .map_err(failed)?,
            ),
            Conn::Remote(c) => {
                let reply = c
                    .cluster
                    .resolve_service(pb::ResolveServiceRequest {
                        name: name.into(),
                        query_json: query.to_string(),
                        version: 1,
                    })
                    .await
                    .map_err(failed)?;
                parse(&reply.into_inner().result_json)
            }
        }
    }

    async fn check(&mut self, services: &str) -> anyhow::Result<Value> {
        match self {
            Conn::Local(b) => Ok(crate::api::services::check(&b.store, services)
                .await
                .map_err(failed)?),
            Conn::Remote(c) => {
                let reply = c
                    .cluster
                    .check_services(pb::CheckServicesRequest {
                        services_json: services.into(),
                        version: 1,
                    })
                    .await
                    .map_err(failed)?;
                parse(&reply.into_inner().result_json)
            }
        }
    }

    async fn close(self) {
        if let Conn::Local(b) = self {
            b.close().await;
        }
    }
}

fn print_services(answer: &Value) {
    let rows: Vec<Vec<String>> = answer["services"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|s| {
                    let text = |k: &str| match &s[k] {
                        Value::String(v) => v.clone(),
                        Value::Null => "-".into(),
                        other => other.to_string(),
                    };
                    let tags: Vec<&str> = s["tags"]
                        .as_array()
                        .map(|t| t.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    vec![
                        text("name"),
                        text("status"),
                        text("node"),
                        format!("{}:{}", text("address"), text("port")),
                        tags.join(","),
                        text("job_id"),
                        text("id"),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    print_table(
        &["NAME", "STATUS", "NODE", "ADDRESS", "TAGS", "JOB", "ID"],
        &rows,
    );
}

fn print_report(report: &Value) {
    for r in report["results"].as_array().into_iter().flatten() {
        let verdict = if r["ok"] == true { "ok" } else { "FAILED" };
        println!("{}: {verdict}", r["name"].as_str().unwrap_or("-"));
    }
    for e in report["errors"].as_array().into_iter().flatten() {
        eprintln!("{}", e.as_str().unwrap_or_default());
    }
}

pub async fn run(target: Option<&str>, cmd: ServiceCmd) -> anyhow::Result<i32> {
    let mut conn = match target {
        Some(t) => Conn::Remote(Client::connect(t, token_from_env()?.as_deref()).await?),
        None => Conn::Local(Backend::open().await?),
    };
    let (answer, json, code) = match cmd {
        ServiceCmd::List {
            name,
            node,
            job_id,
            status,
            tags,
            all,
            json,
        } => {
            let query = json!({"name": name, "node": node, "job_id": job_id, "status": status,
                               "tags": tags, "include_candidates": all});
            (conn.list(&query).await?, json, 0)
        }
        ServiceCmd::Resolve {
            name,
            tags,
            node,
            json,
        } => {
            let query = json!({"tags": tags, "node": node, "passing_only": true});
            (conn.resolve(&name, &query).await?, json, 0)
        }
        ServiceCmd::Check { services, json } => {
            let text = if services.trim_start().starts_with(['[', '{']) {
                services
            } else {
                json!([services]).to_string()
            };
            let answer = conn.check(&text).await?;
            let code = if answer["ok"] == true { 0 } else { 1 };
            conn.close().await;
            if json {
                print_json(&answer)?;
            } else {
                print_report(&answer);
            }
            return Ok(code);
        }
    };
    conn.close().await;
    if json {
        print_json(&answer)?;
    } else {
        print_services(&answer);
    }
    Ok(code)
}
