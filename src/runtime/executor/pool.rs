//! Node-local execution slots. Each pool is a fair (FIFO) semaphore, so a run asking for three
//! slots is not starved by a stream of one-slot runs behind it. A [`PoolLease`] returns its slots
//! when dropped, which covers success, failure, panics and cancelled futures alike.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Capacity of pool `default` when `MN_EXECUTOR_MAX_CONCURRENCY` is unset.
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// Why slots could not be acquired. The messages match the original runtime's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The node config names a pool this node does not define: fix the manifest or the node env.
    #[error("unknown executor pool {pool:?}")]
    UnknownPool { pool: String },
    /// The run can never fit: lower `pool_slots` or raise the pool's capacity.
    #[error("requested {slots} executor slots but pool capacity is {capacity}")]
    TooManySlots { slots: u32, capacity: u32 },
    #[error("executor slots must be a positive integer")]
    NotPositive,
}

/// Why the pool settings in the environment are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is invalid: {reason}")]
pub struct PoolConfigError {
    pub name: &'static str,
    pub reason: String,
}

struct Pool {
    capacity: u32,
    slots: Arc<Semaphore>,
}

/// All pools of this node, shared by every executor agent on it.
pub struct ExecutorPools {
    pools: BTreeMap<String, Pool>,
}

impl std::fmt::Debug for ExecutorPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.pools
                    .iter()
                    .map(|(name, p)| (name, (p.capacity, p.slots.available_permits()))),
            )
            .finish()
    }
}

/// What a held lease looks like in events (`executor_lease_acquired` and the output payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub lease_id: String,
    pub pool: String,
    pub slots: u32,
    pub queue_wait_ms: u64,
}

/// Slots held for one run; dropping it gives them back.
#[derive(Debug)]
pub struct PoolLease {
    pub info: LeaseInfo,
    _permit: OwnedSemaphorePermit,
}

impl ExecutorPools {
    /// Pool `default` with `default_capacity` slots plus the named extra pools.
    pub fn new(
        default_capacity: u32,
        extra: impl IntoIterator<Item = (String, u32)>,
    ) -> ExecutorPools {
        let mut pools = BTreeMap::new();
        for (name, capacity) in
            std::iter::once(("default".to_string(), default_capacity)).chain(extra)
        {
            let slots = Arc::new(Semaphore::new(capacity as usize));
            pools.insert(name, Pool { capacity, slots });
        }
        ExecutorPools { pools }
    }

    /// Reads `MN_EXECUTOR_MAX_CONCURRENCY` (default 4) and `MN_EXECUTOR_POOL_CAPACITIES`.
    pub fn from_env() -> Result<ExecutorPools, PoolConfigError> {
        let default = match crate::config::var("MN_EXECUTOR_MAX_CONCURRENCY") {
            None => DEFAULT_CONCURRENCY,
            Some(v) => parse_capacity(&v).map_err(|reason| PoolConfigError {
                name: "MN_EXECUTOR_MAX_CONCURRENCY",
                reason,
            })?,
        };
        let extra = match crate::config::var("MN_EXECUTOR_POOL_CAPACITIES") {
            None => Vec::new(),
            Some(v) => parse_pool_capacities(&v).map_err(|reason| PoolConfigError {
                name: "MN_EXECUTOR_POOL_CAPACITIES",
                reason,
            })?,
        };
        Ok(ExecutorPools::new(default, extra))
    }

    /// The names of the pools, `default` included.
    pub fn names(&self) -> Vec<String> {
        self.pools.keys().cloned().collect()
    }

    /// The capacity of `pool`, if defined.
    pub fn capacity(&self, pool: &str) -> Option<u32> {
        self.pools.get(pool).map(|p| p.capacity)
    }

    /// Waits (FIFO) for `slots` slots of `pool`. Impossible requests fail at once instead of
    /// queueing forever.
    pub async fn acquire(&self, pool: &str, slots: u32) -> Result<PoolLease, PoolError> {
        let entry = self.pools.get(pool).ok_or_else(|| PoolError::UnknownPool {
            pool: pool.to_string(),
        })?;
        if slots == 0 {
            return Err(PoolError::NotPositive);
        }
        if slots > entry.capacity {
            return Err(PoolError::TooManySlots {
                slots,
                capacity: entry.capacity,
            });
        }
        let started = Instant::now();
        // The semaphores are never closed, so acquisition only fails if that invariant breaks.
        let permit = entry
            .slots
            .clone()
            .acquire_many_owned(slots)
            .await
            .map_err(|_| PoolError::UnknownPool {
                pool: pool.to_string(),
            })?;
        let info = LeaseInfo {
            lease_id: uuid::Uuid::now_v7().to_string(),
            pool: pool.to_string(),
            slots,
            queue_wait_ms: started.elapsed().as_millis() as u64,
        };
        Ok(PoolLease {
            info,
            _permit: permit,
        })
    }
}

/// Parses `name=N,name2=M`. Empty items are skipped; a bad item, a duplicate name or a
/// redefinition of `default` (use `MN_EXECUTOR_MAX_CONCURRENCY`) is an error.
pub fn parse_pool_capacities(text: &str) -> Result<Vec<(String, u32)>, String> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("expected name=N, got {item:?}"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("empty pool name in {item:?}"));
        }
        if name == "default" {
            return Err("pool default is set by MN_EXECUTOR_MAX_CONCURRENCY".to_string());
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("pool {name:?} is defined twice"));
        }
        out.push((name.to_string(), parse_capacity(value)?));
    }
    Ok(out)
}

fn parse_capacity(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "capacity must be a positive integer, got {:?}",
            value.trim()
        )),
    }
}
