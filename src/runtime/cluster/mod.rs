//! The cluster side of a node: membership (join, heartbeats, leave), the node-view workers,
//! the work consumer that runs executor steps placed here, the inbox for the leader's commands,
//! the leader campaign and its reconciling sweep, and the operator actions on nodes (drain,
//! undrain, maintenance). Decisions are made by the pure functions in `domain::cluster` and
//! `domain::node`; this module only gathers what they need and carries out what they say.

mod cache;
pub mod candidates;
mod config;
pub mod drivers;
pub mod dry_run;
mod inbox;
mod leader;
pub mod local_fit;
mod member;
pub mod ops;
pub mod overview;
pub mod probe;
mod views;
mod worker;

pub use cache::ClusterCache;
pub use config::ClusterConfig;
pub use inbox::run_inbox;
pub use leader::{run_leader, sweep, what_to_do};
pub use member::{Membership, join, leave, run_heartbeat};
pub use views::run_node_views;
pub use worker::{SUPERSEDED, run_worker};
