//! The `job` and `run` commands against a server (`--target` / `MN_GRPC_TARGET`): the same
//! output as the in-process runtime, read from the server's JSON answers.

use std::time::Duration;

use serde_json::Value;
use tonic::Code;

use super::history_pages::PageSource;
use super::job::JobCmd;
use super::output::{print_agents, print_dead_letters, print_json, print_table, short_json};
use super::run::RunArgs;
use crate::api::client::{Client, read_bundle, token_from_env};
use crate::api::pb::job_v1 as v1;
use crate::api::pb::observability::StreamEventsRequest;

pub(super) async fn connect(target: &str) -> anyhow::Result<Client> {
    Client::connect(target, token_from_env()?.as_deref()).await
}

/// A gRPC failure as a CLI error (exit 1), keeping the server's message. `main` prints it
/// after `error: `, so a code without a better word adds nothing in front (a transport
/// failure is `Unknown`: its message says what happened).
pub(super) fn failed(status: tonic::Status) -> anyhow::Error {
    let status = crate::api::message_limit::explain(status);
    match code_name(status.code()) {
        Some(name) => anyhow::anyhow!("{name}: {}", status.message()),
        None => anyhow::anyhow!("{}", status.message()),
    }
}

fn code_name(code: Code) -> Option<&'static str> {
    Some(match code {
        Code::Ok | Code::Unknown => return None,
        Code::Cancelled => "cancelled",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "too large",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    })
}

pub(super) fn parse(json: &str) -> anyhow::Result<Value> {
    serde_json::from_str(json).map_err(|e| anyhow::anyhow!("server sent invalid JSON: {e}"))
}

/// A job record, unwrapping a `{job: ...}` envelope if the server sends one.
pub(super) fn job_of(v: Value) -> Value {
    match v.get("job") {
        Some(j) if j.is_object() => j.clone(),
        _ => v,
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn row(job: &Value) -> Vec<String> {
    ["job_id", "graph_id", "status", "submitted_at", "updated_at"]
        .iter()
        .map(|k| text(job, k))
        .collect()
}

async fn get_job(client: &mut Client, job_id: &str) -> anyhow::Result<Value> {
    let reply = client
        .jobs
        .get_job(v1::GetJobRequest {
            job_id: job_id.into(),
            version: 1,
        })
        .await
        .map_err(failed)?;
    Ok(job_of(parse(&reply.into_inner().job_json)?))
}

/// Streams a job's events (`follow` until the terminal one) into `each`.
async fn stream_events(
    client: &mut Client,
    job_id: &str,
    follow: bool,
    mut each: impl FnMut(&Value),
) -> anyhow::Result<()> {
    let request = StreamEventsRequest {
        job_id: job_id.into(),
        follow,
        heartbeat_interval_ms: 5000,
        limit: 0,
        version: 1,
    };
    let mut stream = client
        .events
        .stream_events(request)
        .await
        .map_err(failed)?
        .into_inner();
    while let Some(msg) = stream.message().await.map_err(failed)? {
        let event = parse(&msg.event_json)?;
        if event.get("type").and_then(Value::as_str) != Some("stream_heartbeat") {
            each(&event);
        }
    }
    Ok(())
}

/// Runs a `job` subcommand against the server at `target`.
pub async fn job(target: &str, cmd: JobCmd) -> anyhow::Result<i32> {
    let mut client = connect(target).await?;
    match cmd {
        JobCmd::List {
            status,
            limit,
            json,
        } => {
            let reply = client
                .jobs
                .list_jobs(v1::ListJobsRequest {
                    limit: limit.min(i32::MAX as usize) as i32,
                    include_terminal: true,
                    version: 1,
                })
                .await
                .map_err(failed)?;
            let all = parse(&reply.into_inner().jobs_json)?;
            let jobs: Vec<Value> = all
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|j| {
                    status
                        .as_deref()
                        .is_none_or(|s| j.get("status").and_then(Value::as_str) == Some(s))
                })
                .collect();
            if json {
                print_json(&jobs)?;
            } else {
                print_table(
                    &["JOB ID", "GRAPH", "STATUS", "SUBMITTED", "UPDATED"],
                    &jobs.iter().map(row).collect::<Vec<_>>(),
                );
            }
        }
        JobCmd::Inspect { job_id, json } => {
            let job = get_job(&mut client, &job_id).await?;
            if json {
                print_json(&job)?;
            } else {
                print_table(
                    &["JOB ID", "GRAPH", "STATUS", "SUBMITTED", "UPDATED"],
                    &[row(&job)],
                );
                let c = &job["counters"];
                println!(
                    "events: {}  messages: {}  steps: {} ok / {} failed  dead letters: {}",
                    job["last_seq"],
                    c["messages_sent"],
                    c["steps_finished"],
                    c["steps_failed"],
                    c["dead_letters"]
                );
                if let Some(result) = job.get("result").filter(|r| !r.is_null()) {
                    println!("result: {}", short_json(result, 400));
                }
            }
        }
        JobCmd::Agents { job_id, json } => {
            let job = get_job(&mut client, &job_id).await?;
            let agents = job
                .get("agents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if json {
                print_json(&agents)?
            } else {
                print_agents(&agents)
            }
        }
        JobCmd::Events {
            job_id,
            json,
            follow,
        } => {
            let mut all = Vec::new();
            stream_events(&mut client, &job_id, follow, |e| {
                if json && !follow {
                    all.push(e.clone());
                } else if json {
                    println!("{e}");
                } else {
                    println!(
                        "{:>5}  {}  {:<22} {}",
                        e.get("seq").map_or(String::new(), |s| s.to_string()),
                        text(e, "timestamp"),
                        text(e, "type"),
                        short_json(e, 120)
                    );
                }
            })
            .await?;
            if json && !follow {
                print_json(&all)?;
            }
        }
        JobCmd::DeadLetters { job_id, json } => {
            let mut dead = Vec::new();
            stream_events(&mut client, &job_id, false, |e| {
                if e.get("type").and_then(Value::as_str) == Some("dead_letter") {
                    dead.push(e.clone());
                }
            })
            .await?;
            if json {
                print_json(&dead)?
            } else {
                print_dead_letters(&dead)
            }
        }
        JobCmd::Pause { job_id } => {
            let r = client
                .jobs
                .pause_job(v1::PauseJobRequest { job_id, version: 1 })
                .await
                .map_err(failed)?;
            println!("{}", r.into_inner().status);
        }
        JobCmd::Resume { job_id } => {
            let r = client
                .jobs
                .resume_job(v1::ResumeJobRequest { job_id, version: 1 })
                .await
                .map_err(failed)?;
            println!("{}", r.into_inner().status);
        }
        JobCmd::Cancel { job_id, .. } => {
            let r = client
                .jobs
                .cancel_job(v1::CancelJobRequest { job_id, version: 1 })
                .await
                .map_err(failed)?;
            println!("{}", r.into_inner().status);
        }
        JobCmd::History { job_id, json } => {
            let mut source = PageSource::remote(&mut client, &job_id).await?;
            return super::replay::history(&mut source, json).await;
        }
        JobCmd::Replay(args) => {
            let job_id = super::replay::replay_job_id(&args)?;
            let mut source = PageSource::remote(&mut client, job_id).await?;
            return super::replay::replay_stored(&mut source, &args).await;
        }
        JobCmd::Export { job_id, output } => {
            let mut source = PageSource::remote(&mut client, &job_id).await?;
            return super::replay::export(&mut source, &output).await;
        }
        JobCmd::Recover { .. } => anyhow::bail!(
            "job recover runs a job in this process; run it without --target (a server adopts orphaned jobs by itself)"
        ),
    }
    Ok(0)
}

/// `run <bundle>` against a server: upload, then (with `--wait`) follow until the end.
pub async fn run(target: &str, args: RunArgs) -> anyhow::Result<i32> {
    let (manifest_json, payloads) = read_bundle(&args.bundle)?;
    let mut client = connect(target).await?;
    let request = v1::SubmitJobRequest {
        manifest_json,
        payloads,
        version: 1,
    };
    client
        .check_size("the bundle upload", &request)
        .map_err(failed)?;
    let submitted = client.jobs.submit_job(request).await;
    let job_id = match submitted {
        Ok(r) => r.into_inner().job_id,
        Err(s) if s.code() == Code::InvalidArgument => {
            eprintln!("{}", s.message());
            return Ok(super::validate::EXIT_INVALID);
        }
        Err(s) => return Err(failed(s)),
    };
    eprintln!("submitted job {job_id}");
    if !args.wait && !args.json {
        println!("{job_id}");
        return Ok(0);
    }
    let follow = super::remote_follow::follow(&mut client, &job_id, |e| {
        if args.wait && !args.json {
            eprintln!("  {} {}", text(e, "type"), text(e, "agent_id"));
        }
    });
    let timed_out = match args.timeout {
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs), follow)
            .await
            .is_err(),
        None => {
            follow.await?;
            false
        }
    };
    let job = super::remote_follow::get_job(&mut client, &job_id).await?;
    if args.json {
        print_json(&job)?;
    } else {
        println!("job {}  {}", text(&job, "job_id"), text(&job, "status"));
        if let Some(result) = job.get("result").filter(|r| !r.is_null()) {
            println!("result: {}", short_json(result, 2000));
        }
    }
    if timed_out {
        eprintln!("timed out; job {job_id} is still {}", text(&job, "status"));
        return Ok(1);
    }
    Ok(if text(&job, "status") == "completed" {
        0
    } else {
        1
    })
}
