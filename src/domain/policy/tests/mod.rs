//! Policy tests: delay sequences, window arithmetic, defaults and override resolution.

mod decide;
mod resolve;
