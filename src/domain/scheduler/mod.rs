//! Placement: which node runs each agent of a job (core-spec 7), as a pure function.
//!
//! The runtime takes a snapshot (node views, allocations of active jobs), calls [`plan()`], and
//! persists the returned [`Plan`] on the job. Nothing here reads Redis, a clock or the host, so
//! every decision can be replayed and table-tested.
//!
//! Unlike the original (core-spec 13 item 16) the strategy really decides: binpack fills used
//! nodes before opening empty ones, spread puts the job's tasks on distinct nodes first; tasks
//! are placed largest first, and capacity taken earlier in the same plan is never handed out
//! twice.
//!
//! ```text
//!   JobRequest::from_manifest ──► JobRequest ─┐
//!   node views ──► [NodeCandidate] ───────────┼─► plan() ─► Ok(Plan)  ─► job.scheduler
//!   active jobs ─► [Allocation] (existing) ───┘        └──► Err(PlacementError): who, what, closest
//!
//!   plan(): tasks largest first ─► static fit (cached per kind of task) ─► dynamic fit
//!           (usage incl. this plan) ─► score by strategy ─► commit to NodeState
//! ```
//!
//! # Layout
//! - [`resources`]: a node's `resources` JSON into a [`Demand`] (units, aliases).
//! - [`devices`]: device requests, node devices, matching and id allocation.
//! - [`constraints`]: `{attribute, operator, value}` constraints against a node.
//! - [`node`]: [`NodeCandidate`], the node view the runtime fills in.
//! - [`services`]: node-local service requirements (`requires_services`).
//! - [`request`]: [`JobRequest`] and [`JobRequest::from_manifest`].
//! - `state`: per-node usage while planning; `fit`: one task against one node; `fields`:
//!   tolerant JSON readers.
//! - [`plan`](mod@plan): the algorithm and the [`Plan`] value; [`explain`]: why nothing fits.
//!
//! # Vocabulary
//! - *demand*: what one agent asks for; *task*: an agent to place, with its demand.
//! - *allocation*: a task bound to a node with concrete amounts and device ids.
//! - *feasible*: a node that could take the task now; *score*: how much the strategy likes it.

pub mod constraints;
pub mod devices;
pub mod explain;
pub mod node;
pub mod plan;
pub mod request;
pub mod resources;
pub mod services;

mod fields;
mod fit;
mod state;

#[cfg(test)]
mod tests;

pub use constraints::{Constraint, Operator};
pub use devices::{Device, DeviceRequest, MemoryOperator};
pub use explain::PlacementError;
pub use node::{AdmissionLimits, Capacity, NodeCandidate, NodeStatus};
pub use plan::{Allocation, Plan, PlannedPort, Requirements, SkippedNode, plan};
pub use request::{JobRequest, JobRequestError, ProfileRequirement, Strategy, TaskRequest};
pub use resources::{Demand, DemandError, PortRequest, VolumeRequest};
pub use services::{ServiceInstance, ServiceRequirement};
