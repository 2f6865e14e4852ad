//! Routing: which outbound edges an emitted message travels along.
//!
//! # Semantics
//! The *candidates* of an emission of type `T` by agent `A` are `A`'s outbound edges whose
//! `message_type` is `T` or `*`, in manifest order. Each candidate's condition is evaluated
//! against the context built by [`route_context`]. The candidates are then split by their
//! `routing_mode`, and each group decides on its own:
//! - `broadcast` (default): every matching edge delivers.
//! - `first_match`: only the first matching `first_match` edge delivers.
//! - `all_match`: the group delivers along all its edges if every one matches, else along none.
//!
//! A mix of modes therefore never changes the meaning of the other edges (the original runtime
//! let one `first_match` edge switch the whole emission to first-match, and treated `all_match`
//! as `broadcast`). No target means the caller must dead-letter the message: see
//! [`RouteDecision::no_match_reason`].

mod condition;
mod eval;
mod expr;
mod route;

#[cfg(test)]
mod tests;

pub use condition::{Condition, Op};
pub use eval::lookup;
pub use route::{RouteDecision, RouteEvaluation, RouteTarget, RoutingMode, route, route_context};
