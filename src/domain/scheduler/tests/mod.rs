//! Scheduler table tests.
