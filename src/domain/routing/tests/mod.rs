//! Routing tests: the condition grammar (parse errors, every operator) and edge selection.

mod conditions;
mod route;
