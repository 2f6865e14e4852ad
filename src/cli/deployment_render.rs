//! How `mirror-neuron deployment` shows deployment records to people. One renderer for the
//! local and the remote path: both hand it the same record JSON (`runtime::deployments`
//! builds it, the server only forwards it), so the two print the same.

use serde_json::Value;

use super::output::table;

/// A field as text: strings as they are, null or missing as `-`.
fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// How far the rollout is, in agents: (replaced, to replace). The record names the changed
/// agents and those still to go; the batches in between are the controller's business.
pub fn progress(record: &Value) -> (u64, u64) {
    let total = ids(record, "changed_agent_ids").len() as u64;
    let left = ids(record, "remaining_agent_ids").len() as u64;
    (total.saturating_sub(left), total)
}

/// One line for progress output: key, status, version and what is happening.
pub fn progress_line(record: &Value) -> String {
    let (done, total) = progress(record);
    format!(
        "{} {} version {}: {} ({done}/{total} agents)",
        text(record, "deployment_key"),
        text(record, "status"),
        text(record, "version"),
        text(record, "description"),
    )
}

/// The record in a few lines: what an action's answer shows.
pub fn record(r: &Value) -> String {
    let mut out = format!(
        "deployment {}  {}  version {}  job {}\n",
        text(r, "deployment_key"),
        text(r, "status"),
        text(r, "version"),
        text(r, "job_id"),
    );
    out.push_str(&format!(
        "  id {}  strategy {}  mode {}  phase {}\n",
        text(r, "deployment_id"),
        text(r, "strategy"),
        text(r, "mode"),
        text(r, "phase"),
    ));
    out.push_str(&format!("  {}\n", text(r, "description")));
    let (done, total) = progress(r);
    if total > 0 {
        out.push_str(&format!("  agents replaced: {done}/{total}"));
        let canaries = ids(r, "canary_agent_ids");
        if !canaries.is_empty() {
            out.push_str(&format!("  canaries: {}", canaries.join(",")));
        }
        out.push('\n');
    }
    if let Some(failure) = r.get("failure").filter(|f| !f.is_null()) {
        let why = failure
            .as_str()
            .map_or_else(|| failure.to_string(), str::to_string);
        out.push_str(&format!("  failure: {why}\n"));
    }
    out
}

const LIST_HEADER: [&str; 5] = ["KEY", "STATUS", "VERSION", "JOB", "DESCRIPTION"];

/// The `list` table.
pub fn list(rows: &[Value]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            [
                "deployment_key",
                "status",
                "version",
                "job_id",
                "description",
            ]
            .iter()
            .map(|k| text(r, k))
            .collect()
        })
        .collect();
    table(&LIST_HEADER, &rows)
}

/// Events `status` shows, newest last.
const RECENT_EVENTS: usize = 10;

/// The `status` page: the record, its versions, its latest events.
pub fn status(r: &Value) -> String {
    let mut out = record(r);
    let versions: Vec<Vec<String>> = r["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let stable = if v["stable"] == true { "yes" } else { "no" };
            vec![
                text(v, "version"),
                text(v, "job_id"),
                text(v, "tag"),
                stable.into(),
                text(v, "submitted_at"),
            ]
        })
        .collect();
    if !versions.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &["VERSION", "JOB", "TAG", "STABLE", "SUBMITTED"],
            &versions,
        ));
    }
    let events: Vec<&Value> = r["events"].as_array().into_iter().flatten().collect();
    let recent: Vec<Vec<String>> = events
        .iter()
        .skip(events.len().saturating_sub(RECENT_EVENTS))
        .map(|e| {
            let data = &e["data"];
            let at = data["at_ms"]
                .as_i64()
                .or_else(|| data["since_ms"].as_i64())
                .and_then(crate::domain::view::iso_ms)
                .unwrap_or_else(|| "-".into());
            vec![text(e, "type"), at, detail(data)]
        })
        .collect();
    if !recent.is_empty() {
        out.push('\n');
        out.push_str(&table(&["EVENT", "AT", "DETAIL"], &recent));
    }
    out
}

/// The telling part of an event's data, short (the full data is in `--json`).
fn detail(data: &Value) -> String {
    for key in ["description", "reason"] {
        if let Some(s) = data[key].as_str() {
            return s.to_string();
        }
    }
    let agents = ids(data, "agents");
    match (data["index"].as_u64(), agents.is_empty()) {
        (Some(i), false) => format!("batch {i}: {}", agents.join(",")),
        (Some(i), true) => format!("batch {i}"),
        (None, false) => agents.join(","),
        (None, true) => match data["version"].as_str() {
            Some(v) => format!("version {v}"),
            None => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Value {
        json!({
            "deployment_id": "dep_k_1", "deployment_key": "k", "status": "awaiting_promotion",
            "version": "2", "job_id": "j2", "description": "canaries healthy",
            "strategy": "canary", "mode": "agent_level", "phase": "canary",
            "changed_agent_ids": ["a", "b"], "canary_agent_ids": ["a"],
            "remaining_agent_ids": ["b"], "failure": null,
            "versions": [
                {"version": "1", "job_id": "j1", "tag": null, "stable": true, "submitted_at": "t1"},
                {"version": "2", "job_id": "j2", "tag": "v2", "stable": false, "submitted_at": "t2"},
            ],
            "events": [
                {"type": "deployment_batch_started", "data": {"index": 0, "agents": ["a"], "at_ms": 0}},
                {"type": "deployment_canary_ready", "data": {"agents": ["a"], "at_ms": 1000}},
            ],
        })
    }

    #[test]
    fn progress_counts_replaced_agents() {
        assert_eq!(progress(&sample()), (1, 2));
        assert_eq!(progress(&json!({})), (0, 0));
        assert_eq!(
            progress_line(&sample()),
            "k awaiting_promotion version 2: canaries healthy (1/2 agents)"
        );
    }

    #[test]
    fn status_shows_record_versions_and_events() {
        let page = status(&sample());
        assert!(page.starts_with("deployment k  awaiting_promotion  version 2  job j2\n"));
        assert!(page.contains("agents replaced: 1/2  canaries: a"), "{page}");
        assert!(page.contains("2        j2   v2   no      t2"), "{page}");
        assert!(page.contains("batch 0: a"), "{page}");
        assert!(page.contains("1970-01-01T00:00:01.000Z"), "{page}");
    }

    #[test]
    fn list_is_one_row_per_key() {
        let out = list(&[sample()]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "KEY  STATUS              VERSION  JOB  DESCRIPTION"
        );
        assert_eq!(
            lines[1],
            "k    awaiting_promotion  2        j2   canaries healthy"
        );
    }
}
