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

mod edge;
mod error;
mod fields;
mod layout;
pub mod model;
mod module_node;
mod node;
mod parse;
mod pass_env;
mod payload_paths;
mod policies;
mod resources;

#[cfg(test)]
mod tests;

pub use error::ValidationError;
pub use model::{
    AgentType, ENTRYPOINTS_KEY, EdgeSpec, GraphLayout, JobType, Manifest, NodeSpec, Template,
};
pub use module_node::PROCESS_MODULE_HOWTO;
pub use parse::parse_manifest;
pub use payload_paths::{PayloadRef, is_confined, payload_refs};
