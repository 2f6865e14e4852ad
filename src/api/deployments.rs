//! The v1 deployment RPCs (`DeployJob` ... `FailDeployment`): check and store the uploaded
//! bundle the way `SubmitJob` does, decode the policy overrides, call `runtime::deployments`,
//! and answer with the key's record (`deployment_id`, `deployment_key`, `job_id`, `version`,
//! `status`: what the published client reads). The rollout itself is moved along by the
//! leader's controller; these calls only record decisions.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tonic::Status;

use super::context::ApiContext;
use super::pb::job_v1::{DeployJobRequest, RollbackDeploymentRequest, UpdateDeploymentRequest};
use super::schedules::object;
use super::{status, upload};
use crate::runtime::deployments::{
    self, ActionKind, DeployRequest, DeploymentRunError, RollbackRequest,
};

/// Longest a `wait: true` deploy waits for the rollout to settle: under the published
/// client's 10 s deadline, so it gets the record instead of DEADLINE_EXCEEDED.
pub const MAX_WAIT: Duration = Duration::from_secs(8);

/// A bundle upload to deploy (or update to) under a key.
pub struct Upload<'a> {
    pub manifest_json: &'a str,
    pub payloads: &'a HashMap<String, Vec<u8>>,
    /// Empty: the key the manifest names (else its job name).
    pub deployment_key: &'a str,
    /// A JSON object of policy fields over the manifest's `policies.update`; empty for none.
    pub update_policy_json: &'a str,
    pub wait: bool,
}

/// One reading of both requests: they carry the same fields.
macro_rules! upload_from {
    ($request:ty) => {
        impl<'a> From<&'a $request> for Upload<'a> {
            fn from(r: &'a $request) -> Upload<'a> {
                Upload {
                    manifest_json: &r.manifest_json,
                    payloads: &r.payloads,
                    deployment_key: &r.deployment_key,
                    update_policy_json: &r.update_policy_json,
                    wait: r.wait,
                }
            }
        }
    };
}
upload_from!(DeployJobRequest);
upload_from!(UpdateDeploymentRequest);

/// `DeployJob` and `UpdateDeployment` (the same call: the key's history decides).
pub async fn deploy(ctx: &ApiContext, req: Upload<'_>) -> Result<Value, Status> {
    // Decoded before the upload is written, so malformed JSON leaves nothing on disk.
    let (policy, tag) = overrides(req.update_policy_json)?;
    let bundle = upload::materialise(&ctx.bundles_dir, req.manifest_json, req.payloads).await?;
    let key = Some(req.deployment_key.trim())
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let record = deployments::deploy(
        &ctx.store,
        DeployRequest {
            bundle: &bundle,
            key,
            policy,
            tag,
        },
    )
    .await
    .map_err(|e| error(&e))?;
    if !req.wait {
        return Ok(shown(ctx, record));
    }
    let key = record["deployment_key"].as_str().unwrap_or_default();
    let settled = deployments::wait_settled(&ctx.store, key, MAX_WAIT, |_| {})
        .await
        .map_err(|e| error(&e))?;
    Ok(shown(ctx, settled))
}

/// `GetDeployment`: the record with its versions and latest events.
pub async fn get(ctx: &ApiContext, id_or_key: &str) -> Result<Value, Status> {
    let record = deployments::get(&ctx.store, id_or_key)
        .await
        .map_err(|e| error(&e))?;
    Ok(shown(ctx, record))
}

/// `ListDeployments`: `query_json` may filter by `status` and `deployment_key` (absent or
/// null = any); the published client sends `{}`.
pub async fn list(ctx: &ApiContext, query_json: &str) -> Result<Value, Status> {
    let q = object("query_json", query_json)?;
    let rows: Vec<Value> = deployments::list(&ctx.store)
        .await
        .map_err(|e| error(&e))?
        .into_iter()
        .filter(|r| {
            ["status", "deployment_key"].iter().all(|k| {
                q.get(*k)
                    .is_none_or(|want| want.is_null() || &r[*k] == want)
            })
        })
        .map(|r| shown(ctx, r))
        .collect();
    Ok(json!({ "data": rows, "count": rows.len() }))
}

pub async fn promote(ctx: &ApiContext, id_or_key: &str) -> Result<Value, Status> {
    let record = deployments::promote(&ctx.store, id_or_key)
        .await
        .map_err(|e| error(&e))?;
    Ok(shown(ctx, record))
}

/// `RollbackDeployment`: `version` is the target version ("" = the last stable one).
pub async fn rollback(ctx: &ApiContext, req: RollbackDeploymentRequest) -> Result<Value, Status> {
    let some = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    let to = RollbackRequest {
        version: some(req.version),
        tag: some(req.tag),
        reason: some(req.reason),
    };
    let record = deployments::rollback(&ctx.store, &req.id_or_key, &to)
        .await
        .map_err(|e| error(&e))?;
    Ok(shown(ctx, record))
}

/// `PauseDeployment`, `ResumeDeployment`, `FailDeployment`.
pub async fn action(
    ctx: &ApiContext,
    id_or_key: &str,
    kind: ActionKind,
    reason: &str,
) -> Result<Value, Status> {
    let record = deployments::action(&ctx.store, id_or_key, kind, Some(reason))
        .await
        .map_err(|e| error(&e))?;
    Ok(shown(ctx, record))
}

fn error(e: &DeploymentRunError) -> Status {
    status::deployment(e)
}

/// Splits `update_policy_json` into the policy overrides and the version's `tag` (this
/// server's extension: the request has no field for it, and it is not a policy field).
fn overrides(text: &str) -> Result<(Option<Value>, Option<String>), Status> {
    let mut fields: Map<String, Value> = match object("update_policy_json", text)? {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    let tag = match fields.remove("tag") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
        Some(other) => {
            return Err(Status::invalid_argument(format!(
                "update_policy_json.tag must be a string, got {other}"
            )));
        }
    };
    let policy = (!fields.is_empty()).then_some(Value::Object(fields));
    Ok((policy, tag))
}

/// The record as answered: the server's folder of uploaded bundles (in the versions'
/// `manifest_ref`, in events) is replaced by `<uploads>`, as no answer shows a server path.
fn shown(ctx: &ApiContext, mut record: Value) -> Value {
    let dir = ctx.bundles_dir.display().to_string();
    if !dir.is_empty() {
        scrub(&mut record, &dir);
    }
    record
}

fn scrub(value: &mut Value, dir: &str) {
    match value {
        Value::String(s) if s.contains(dir) => *s = s.replace(dir, "<uploads>"),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub(v, dir)),
        Value::Object(map) => map.values_mut().for_each(|v| scrub(v, dir)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_taken_out_of_the_overrides() {
        let (policy, tag) =
            overrides(r#"{"strategy": "canary", "canary": 1, "tag": " v2 ", "version": 1}"#)
                .expect("valid");
        assert_eq!(tag.as_deref(), Some("v2"));
        assert_eq!(
            policy,
            Some(json!({"strategy": "canary", "canary": 1, "version": 1}))
        );
        assert_eq!(overrides("").expect("empty"), (None, None));
        assert_eq!(overrides("{}").expect("empty object"), (None, None));
    }

    #[test]
    fn malformed_overrides_name_the_field() {
        for bad in ["[1]", "{", r#"{"tag": 3}"#] {
            let err = overrides(bad).expect_err(bad);
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(
                err.message().contains("update_policy_json"),
                "{}",
                err.message()
            );
        }
    }

    #[test]
    fn server_paths_are_hidden() {
        let mut v = json!({"versions": [{"manifest_ref": "/srv/mn/bundles/abc"}], "n": 1});
        scrub(&mut v, "/srv/mn/bundles");
        assert_eq!(v["versions"][0]["manifest_ref"], "<uploads>/abc");
    }
}
