//! Artifacts: files a step hands to later steps, on any node, by reference.
//!
//! # Layout
//! - [`roots`]: `MN_BLOB_STORE_ROOT` (a blob store nodes may share) and
//!   `MN_JOB_ARTIFACT_ROOT` (where steps' artifact folders are made), validated at `serve` start.
//! - [`staging`]: a step's `in` and `out` folders; inbound artifacts are fetched and put in `in`.
//! - [`publish`]: the files a step left in `out` become blobs and references.
//! - [`sweep`]: `admin gc` removes folders left by steps whose node died mid-step.
//! - [`error`]: what can go wrong, naming the artifact and digest.
//!
//! Flow (see `runtime::owner::work::execute_step`): stage (fetch inbound: the local or shared
//! store, else a holder node through Redis) → run the step with `MN_ARTIFACTS_IN` and
//! `MN_ARTIFACT_DIR` → publish `out` → charge the job's output budget → announce the new blobs
//! → the step's emits carry the references (`domain::artifact::attach`).

pub mod error;
pub mod publish;
pub mod roots;
pub mod staging;
pub mod sweep;

pub use error::ArtifactError;
pub use publish::publish;
pub use staging::{StepArtifacts, stage};
