//! The runner's own settings check on every executor, run when a bundle loads. The manifest
//! parse already typed each executor's config; this adds what depends on the host: the
//! limits read from its environment (the same `ExecutorConfig` a step builds) and whether the
//! named pool exists here with enough slots. Pools are node settings
//! (`MN_EXECUTOR_MAX_CONCURRENCY`, `MN_EXECUTOR_POOL_CAPACITIES`); the loading node's are
//! taken as the cluster's, since a step that asks for more than its pool holds fails at
//! once rather than queueing.

use crate::domain::manifest::{AgentType, Manifest, ValidationError};
use crate::runtime::executor::{ExecutorConfig, ExecutorPools, PoolError};

/// Every executor problem the runner would hit, with the config field's path. `pools` is
/// `None` when this host's pool settings are themselves invalid: the command that runs the
/// job reports that, so it is not blamed on the bundle.
pub(super) fn check(manifest: &Manifest, pools: Option<&ExecutorPools>) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    for (i, node) in manifest.nodes.iter().enumerate() {
        if node.agent_type != AgentType::Executor {
            continue;
        }
        let path = format!("{}.config", manifest.node_path(i));
        let config = match ExecutorConfig::from_node(node) {
            Ok(c) => c,
            Err(e) => {
                errors.push(ValidationError::new(&path, e));
                continue;
            }
        };
        if let Some(e) = pools.and_then(|p| pool_fit(p, &config)) {
            let field = match e {
                PoolError::UnknownPool { .. } => "pool",
                PoolError::TooManySlots { .. } | PoolError::NotPositive => "pool_slots",
            };
            let message = format!(
                "{e} on this host (node {}); {}",
                node.node_id,
                pools_hint(pools)
            );
            errors.push(ValidationError::new(format!("{path}.{field}"), message));
        }
    }
    errors
}

/// Why `config` could never get its slots, as the pool itself would say.
fn pool_fit(pools: &ExecutorPools, config: &ExecutorConfig) -> Option<PoolError> {
    match pools.capacity(&config.spec.pool) {
        None => Some(PoolError::UnknownPool {
            pool: config.spec.pool.clone(),
        }),
        Some(capacity) if config.spec.pool_slots > capacity => Some(PoolError::TooManySlots {
            slots: config.spec.pool_slots,
            capacity,
        }),
        Some(_) => None,
    }
}

fn pools_hint(pools: Option<&ExecutorPools>) -> String {
    let defined: Vec<String> = pools
        .map(|p| {
            p.names()
                .into_iter()
                .map(|n| format!("{n}={}", p.capacity(&n).unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "pools here: {} (set by MN_EXECUTOR_MAX_CONCURRENCY and MN_EXECUTOR_POOL_CAPACITIES)",
        defined.join(", ")
    )
}
