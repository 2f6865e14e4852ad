//! The deployment aggregate (core-spec 9.2, 9.3): new versions of a long-running job rolled
//! out in health-gated batches, canaries and promotion, blue-green switches, rollbacks and
//! automatic reverts. One aggregate per deployment key, on its own stream. Pure: time, ids,
//! job liveness and health are inputs; the runtime acts on the events.
//!
//! # Layout
//! - `key`: the deployment key of a manifest and the id of a rollout.
//! - `version`: version numbers and version records.
//! - `status`: status, mode, role and phase vocabularies.
//! - `topology`, `plan`: comparing manifests and planning an update into batches.
//! - `command`, `event`, `error`: the aggregate's language.
//! - `decide`, `progress` (health, deadlines, promotion, revert), `state`, `evolve`.
//! - `view`: the record the API returns and a started job's deployment context.
//!
//! # Flow
//! `deploy` records a version and a plan. The runtime starts each batch the state's
//! [`Rollout::next`] names and reports `BatchStarted`, then health. A batch completes once it
//! stayed healthy for `min_healthy_ms` (seen on `BatchHealthy` or a `Tick`); missing
//! `healthy_deadline_ms` or `progress_deadline_ms` fails the rollout, and `auto_revert`
//! then rolls the last stable version out again as a new version.

mod command;
mod decide;
mod error;
mod event;
mod evolve;
mod health;
mod key;
mod next;
mod plan;
mod progress;
mod state;
mod status;
mod topology;
mod version;
mod view;

pub use command::{DeploymentCommand, RollbackTarget, Target};
pub use decide::decide;
pub use error::DeploymentError;
pub use event::DeploymentEvent;
pub use evolve::{evolve, fold};
pub use health::batch_health;
pub use key::{deployment_id, resolve_key};
pub use next::{Action, BatchStart, HealthProbe, next_actions};
pub use plan::{Batch, Plan, PlanKind, Source, canary_count, plan_update, wants_canary};
pub use state::{ActiveBatch, DeploymentState, Rollout};
pub use status::{DeploymentStatus, Mode, Phase, Role};
pub use topology::{changed_nodes, same_topology};
pub use version::{BundleRef, Version, VersionRecord};
pub use view::view;

#[cfg(test)]
mod tests;
