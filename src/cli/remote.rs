//! `run` against a server (`--target` / `MN_GRPC_TARGET`), and what every remote command
//! shares: connecting, and gRPC failures as CLI errors.

use std::time::Duration;

use serde_json::Value;
use tonic::Code;

use super::output::text;
use super::run::RunArgs;
use crate::api::client::{Client, read_bundle, token_from_env};
use crate::api::pb::job_v1 as v1;

/// How often `run --wait --target` reads the job's record for its progress display.
const PROGRESS_POLL: Duration = Duration::from_millis(300);

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

/// One `GetJob` call: the job's record, or the server's status as it is.
pub(super) async fn get_job_once(
    client: &mut Client,
    job_id: &str,
) -> Result<anyhow::Result<Value>, tonic::Status> {
    let reply = client
        .jobs
        .get_job(v1::GetJobRequest {
            job_id: job_id.into(),
            version: 1,
        })
        .await?;
    Ok(parse(&reply.into_inner().job_json).map(job_of))
}

/// A job record, unwrapping a `{job: ...}` envelope if the server sends one.
pub(super) fn job_of(v: Value) -> Value {
    match v.get("job") {
        Some(j) if j.is_object() => j.clone(),
        _ => v,
    }
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
    // The history stream says when the job ends; the progress comes from its record, read
    // alongside on a second handle of the same connection.
    let mut progress = super::progress::JobProgress::new(&job_id, args.wait && !args.json);
    let mut reader = client.clone();
    let follow = super::remote_follow::follow(&mut client, &job_id, |_| {});
    let shown = async {
        loop {
            if let Ok(job) = super::remote_follow::get_job(&mut reader, &job_id).await {
                progress.update(&job);
            }
            tokio::time::sleep(PROGRESS_POLL).await;
        }
    };
    let until_end = async {
        tokio::select! {
            ended = follow => ended,
            never = shown => never,
        }
    };
    let timed_out = match args.timeout {
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs), until_end)
            .await
            .is_err(),
        None => {
            until_end.await?;
            false
        }
    };
    let job = super::remote_follow::get_job(&mut client, &job_id).await?;
    progress.finish(&job);
    super::run::print_outcome(&job, args.json)?;
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
