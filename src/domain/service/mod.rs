//! Services (core-spec 9.1): what a manifest declares (`services`, `nodes[].services`), what it
//! requires (`required_services`, `nodes[].requires_services`), how an instance's health is
//! judged, and the registry every node reads to place work and answer discovery.
//!
//! Pure: checks are run by `runtime::services`; this module only says what to check, how to
//! fold the answers, and what the registry holds after a run of events.
//!
//! # Layout
//! - [`spec`]: the typed declaration, requirement and check (stored in the manifest).
//! - `parse`: raw JSON to [`spec`] types, with every error and its path (manifest validation).
//! - [`template`]: `${a.b}` resolution against a registration context.
//! - [`health`]: check results, `failures_before_critical`, the aggregate status.
//! - [`record`]: an instance in the registry and the fold of the service events.
//! - [`query`]: discovery filters and node-scoped requirement matching.
//! - [`report`]: the `validation.report/v1` a failed preflight returns.

pub mod health;
mod parse;
pub mod query;
pub mod record;
pub mod report;
pub mod spec;
pub mod template;

pub use health::{CheckResult, Health, HealthStatus};
pub use parse::{parse_entry, parse_list};
pub use query::ServiceQuery;
pub use record::{Registration, ServiceRecord};
pub use spec::{CheckSpec, Origin, Port, Probe, ServiceSpec};
