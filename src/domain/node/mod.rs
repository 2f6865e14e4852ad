//! A runtime node as an event-sourced aggregate. Joins, departures, losses, leadership, drains
//! and maintenance are events on the node's own stream and its state is their fold. Operator
//! state (drain, maintenance, eligibility) lives in the same fold, so a node that drops out and
//! rejoins keeps it; the original overwrote the whole record on every status change and a
//! cordoned node could come back schedulable (core-spec 13.3).

mod decide;
mod event;
mod evolve;
mod inventory;
mod state;
#[cfg(test)]
mod tests;

pub use decide::{NodeCommand, NodeError, decide};
pub use event::{NodeEnvelope, NodeEvent, decode_node_event, encode_node_event};
pub use evolve::evolve;
pub use inventory::{DeclaredGpu, Gpu, Inventory};
pub use state::{Drain, DrainStatus, Maintenance, NodeState, NodeStatus};
