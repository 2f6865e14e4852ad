//! Job manifests: parsing every accepted layout and alias into one typed [`Manifest`], and
//! validating it completely (every error, each with its JSON path).
//!
//! Pure: no I/O. The filesystem half (does `payloads/x` exist, does a symlink escape) lives
//! in `runtime::bundle`, which reuses [`payload_refs`].
//!
//! # Layout
//! - [`model`]: the normalised types (stored in the job's first event).
//! - `parse`: the entry point [`parse_manifest`]; `layout`: where the graph sits.
//! - `node`, `edge`, `module_node`, `policies`, `resources`, `payload_paths`, `pass_env`: one
//!   concern each.
//! - [`executor`]: an executor's `config` as a typed spec (the runner builds on it);
//!   [`run_paths`]: paths inside an executor's run directory.
//! - `schedules` (`schedule`, `triggers`) and `services`: checked with the schedule parser
//!   and the service shape; `policies.update` is typed by `domain::policy::update`.
//! - `lint`: warnings (never errors) for unknown keys, with `suggest`'s "did you mean".

mod edge;
mod error;
pub mod executor;
mod fields;
mod layout;
mod lint;
pub mod model;
mod module_node;
mod node;
mod parse;
mod pass_env;
mod payload_paths;
mod policies;
mod resources;
pub mod run_paths;
mod schedules;
mod services;
mod suggest;

#[cfg(test)]
mod tests;

pub use error::ValidationError;
pub use lint::manifest_warnings;
pub use model::{
    AgentType, ENTRYPOINTS_KEY, EdgeSpec, GraphLayout, JobType, Manifest, NodeSpec, Template,
};
pub use module_node::PROCESS_MODULE_HOWTO;
pub use parse::parse_manifest;
pub use payload_paths::{PayloadRef, is_confined, payload_refs};
