//! mirror-neuron: a durable, message-driven workflow runtime, event-sourced on Redis Streams.
//!
//! # Layout
//! Lower floors never import higher ones:
//! - [`domain`]: pure rules: events, the job decider (`decide`/`evolve`), views as folds.
//! - [`store`]: Redis: fenced append, history, leases, feed consumer groups, views, migrations.
//! - [`runtime`]: I/O over time: projection workers, command execution, embedded Redis.
//! - [`cli`]: the `mirror-neuron` command line.
//! - [`config`]: environment settings.
//! - [`metrics`]: Prometheus metrics: the catalog, the exporter, recording functions.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod runtime;
pub mod store;
