//! The pure core: types and rules with no I/O, no async and no clock (time is an input).

pub mod agents;
pub mod artifact;
pub mod cluster;
pub mod deployment;
pub mod event;
pub mod job;
pub mod manifest;
pub mod message;
pub mod node;
pub mod output;
pub mod policy;
pub mod replay;
pub mod routing;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod service;
pub mod view;
