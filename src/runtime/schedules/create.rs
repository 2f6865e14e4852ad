//! Creating and updating schedules: validate the spec, bind it to a bundle on disk, record.

use serde_json::Value;

use super::{ScheduleRunError, execute};
use crate::domain::schedule::{ScheduleCommand, ScheduleSpec, ScheduleState};
use crate::runtime::bundle::Bundle;
use crate::runtime::clock::now_ms;
use crate::store::Store;

/// A new schedule id: `sched_` and 16 hex digits.
pub fn new_schedule_id() -> String {
    format!("sched_{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

/// Creates a schedule that runs `bundle` (which must stay where it is: every run loads it
/// from there). `spec` is the client's JSON; an empty name becomes the bundle's job name.
pub async fn create(
    store: &Store,
    bundle: &Bundle,
    spec: &Value,
    source: Value,
) -> Result<ScheduleState, ScheduleRunError> {
    let now = now_ms();
    let mut spec =
        ScheduleSpec::parse(spec, now).map_err(crate::domain::schedule::ScheduleError::from)?;
    if spec.name.is_empty() {
        spec.name = bundle.manifest.job_name.clone();
    }
    let id = new_schedule_id();
    let command = ScheduleCommand::Create {
        spec,
        bundle_path: bundle.root.display().to_string(),
        graph_id: bundle.manifest.graph_id.clone(),
        job_name: bundle.manifest.job_name.clone(),
        source,
        now_ms: now,
    };
    let (state, _) = execute(store, &id, false, |_, _| command.clone()).await?;
    Ok(state)
}

/// Merges `attrs` into a schedule's spec (top-level keys replace), re-validates, records.
pub async fn update(
    store: &Store,
    schedule_id: &str,
    attrs: &Value,
) -> Result<ScheduleState, ScheduleRunError> {
    let now = now_ms();
    let current = store.load_schedule(schedule_id).await?;
    let mut merged = current.spec_value.clone();
    if let (Some(m), Some(a)) = (merged.as_object_mut(), attrs.as_object()) {
        for (k, v) in a {
            m.insert(k.clone(), v.clone());
        }
        // A new timing replaces the old one's fields rather than mixing with them.
        if a.contains_key("delay_ms") {
            m.remove("run_at");
        }
    }
    let spec =
        ScheduleSpec::parse(&merged, now).map_err(crate::domain::schedule::ScheduleError::from)?;
    let (state, _) = execute(store, schedule_id, false, |_, _| ScheduleCommand::Update {
        spec: spec.clone(),
        now_ms: now,
    })
    .await?;
    Ok(state)
}
