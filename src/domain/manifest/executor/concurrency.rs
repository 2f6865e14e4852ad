//! `config.concurrency`: how many messages one executor agent works on at once.
//!
//! By default an agent takes one message at a time, so three 8 s messages to one agent take
//! 24 s. An executor whose steps are independent (each reads only its message) can set
//! `concurrency: N` to have up to N steps running; each still holds its pool slots, so the
//! node's pool (`MN_EXECUTOR_MAX_CONCURRENCY`) bounds what really runs at once.
//!
//! Results are recorded in the order the messages were taken (`ordered`, default true): a
//! downstream agent sees the same order as with concurrency 1, only sooner. `ordered: false`
//! records each result as it lands, so one slow message does not hold back the ones after it.
//! Each step sees the agent state as it was when the step began; an executor that carries
//! state from one message to the next (`next_state`) should keep concurrency 1.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::error::{Errors, join};
use super::numbers;

/// The most steps one agent may have in flight: beyond this a fan-out wants more agents.
pub const MAX_CONCURRENCY: u32 = 1024;

/// How many messages an agent works on at once, and in what order their results land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    pub limit: u32,
    pub ordered: bool,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            limit: 1,
            ordered: true,
        }
    }
}

impl Concurrency {
    /// True for the default (one at a time), which manifests store without the key.
    pub fn is_default(&self) -> bool {
        *self == Concurrency::default()
    }
}

/// Reads `concurrency` (alias `max_concurrency`, the original runtime's profile key) and
/// `ordered` from an executor's config at `path`.
pub(super) fn parse(config: &Map<String, Value>, path: &str, errs: &mut Errors) -> Concurrency {
    let key = if config.contains_key("concurrency") {
        "concurrency"
    } else {
        "max_concurrency"
    };
    let limit = numbers::positive_u32(config, key, path, errs).unwrap_or(1);
    if limit > MAX_CONCURRENCY {
        errs.push(
            join(path, key),
            format!("{key} must be at most {MAX_CONCURRENCY}, got {limit}: use more agents"),
        );
    }
    Concurrency {
        limit: limit.min(MAX_CONCURRENCY),
        ordered: numbers::opt_bool(config, "ordered", path, errs).unwrap_or(true),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(config: Value) -> (Concurrency, Vec<String>) {
        let mut errs = Errors::default();
        let c = parse(
            config.as_object().expect("object"),
            "nodes[0].config",
            &mut errs,
        );
        let paths = errs.into_vec().into_iter().map(|e| e.path).collect();
        (c, paths)
    }

    #[test]
    fn one_in_order_unless_asked() {
        assert_eq!(parsed(json!({})).0, Concurrency::default());
        let (c, errs) = parsed(json!({"concurrency": 4, "ordered": false}));
        assert_eq!((c.limit, c.ordered, errs.len()), (4, false, 0));
        assert_eq!(parsed(json!({"max_concurrency": 3})).0.limit, 3);
    }

    #[test]
    fn bad_values_name_the_field() {
        assert_eq!(
            parsed(json!({"concurrency": 0})).1,
            vec!["nodes[0].config.concurrency"]
        );
        assert_eq!(
            parsed(json!({"concurrency": 5000})).1,
            vec!["nodes[0].config.concurrency"]
        );
        assert_eq!(
            parsed(json!({"ordered": "yes"})).1,
            vec!["nodes[0].config.ordered"]
        );
    }
}
