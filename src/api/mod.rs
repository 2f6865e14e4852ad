//! The gRPC API, wire-compatible with the published MirrorNeuron clients. Handlers decode a
//! request, read a projection or issue a command, and encode the answer; no business logic.
//!
//! # Layout
//! - [`pb`]: generated code; [`server`]: wiring, limits, health, reflection; [`auth`]: tokens;
//! - [`message_limit`]: the message size limit, explained; [`upload`]: uploaded bundles;
//! - one file per service: `job_v1`, `job_v2`, `cluster`, `observability`, `operations`,
//!   `scheduler` (our own: the `PlanJob` dry run), `blobs` (our own: paged `GetBlob`);
//! - `schedules`, `deployments`: the v1 schedule and deployment RPCs `job_v1` delegates to;
//! - [`status`]: the one mapping from errors to gRPC codes; [`context`]: shared handles.

pub mod auth;
pub mod backup;
pub mod blobs;
pub mod bounded;
pub mod bulk;
pub mod client;
pub mod cluster;
pub mod consistency;
pub mod context;
pub mod deployments;
pub mod event_json;
pub mod follow;
pub mod grpc_metrics;
pub mod history;
pub mod job_json;
pub mod job_v1;
pub mod job_v2;
pub mod message_limit;
pub mod observability;
pub mod operation_run;
pub mod operations;
pub mod pb;
pub mod scheduler;
pub mod schedules;
pub mod server;
pub mod services;
pub mod status;
pub mod upload;
