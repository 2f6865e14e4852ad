//! `ListServices`, `ResolveService`, `CheckServices` (core-spec 9.1): the registry read from
//! the job projections, filtered by the published client's `query_json`, and direct checks.
//! Answers are `{"services": [...], "count": n}` (the client prints them and reads
//! `services[]`); `CheckServices` answers with the `validation.report/v1` preflight gives.

use serde_json::{Value, json};
use tonic::Status;

use super::status;
use crate::domain::service::{ServiceQuery, parse_list};
use crate::runtime::services::{preflight, registry};
use crate::store::Store;

fn query_json(text: &str) -> Result<Value, Status> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text)
        .map_err(|e| Status::invalid_argument(format!("query_json is not JSON: {e}")))
}

fn query_of(text: &str) -> Result<ServiceQuery, Status> {
    ServiceQuery::from_json(&query_json(text)?).map_err(Status::invalid_argument)
}

async fn answer(store: &Store, query: &ServiceQuery) -> Result<Value, Status> {
    let found = registry::list(store, query)
        .await
        .map_err(|e| status::store(&e))?;
    let services: Vec<Value> = found.iter().map(|r| r.to_json()).collect();
    Ok(json!({"count": services.len(), "services": services}))
}

/// `ListServices{query_json}`.
pub async fn list(store: &Store, query_json: &str) -> Result<Value, Status> {
    answer(store, &query_of(query_json)?).await
}

/// `ResolveService{name, query_json}`: passing instances of `name`, unless the query says
/// `passing_only: false` (what `mn service resolve --all` sends).
pub async fn resolve(store: &Store, name: &str, query: &str) -> Result<Value, Status> {
    if name.trim().is_empty() {
        return Err(Status::invalid_argument("name is required"));
    }
    let raw = query_json(query)?;
    let mut query = ServiceQuery::from_json(&raw).map_err(Status::invalid_argument)?;
    query.name = Some(name.trim().to_string());
    query.passing_only = raw.get("passing_only") != Some(&Value::Bool(false));
    let mut out = answer(store, &query).await?;
    out["name"] = json!(name.trim());
    Ok(out)
}

/// `CheckServices{services_json}`: a list of requirements (or `{"services": [...]}`), each
/// checked directly or looked up, as preflight would.
pub async fn check(store: &Store, services_json: &str) -> Result<Value, Status> {
    let v: Value = serde_json::from_str(services_json)
        .map_err(|e| Status::invalid_argument(format!("services_json is not JSON: {e}")))?;
    let list = match v {
        Value::Object(mut m) if m.contains_key("services") => {
            m.remove("services").unwrap_or(Value::Null)
        }
        other => other,
    };
    let mut errs = Vec::new();
    let specs = parse_list(&list, "services", &mut errs);
    if !errs.is_empty() {
        return Err(Status::invalid_argument(
            crate::domain::manifest::ValidationError::join(&errs),
        ));
    }
    Ok(preflight::check(Some(store), &specs).await)
}
