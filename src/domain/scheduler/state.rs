//! Per-node usage while a plan is built: what existing allocations hold plus what this plan has
//! handed out so far. Every placement goes through [`NodeState::commit`], which is what makes
//! over-commit and double-allocated devices impossible within a plan.

use std::collections::{HashMap, HashSet};

use super::node::{Capacity, NodeCandidate};
use super::plan::{Allocation, PlannedPort};

/// One node with its running totals.
#[derive(Debug, Clone)]
pub(crate) struct NodeState<'a> {
    pub node: &'a NodeCandidate,
    pub usable: Capacity,
    pub gpu_limit: u64,
    /// Admission limits allow fewer GPUs than the node has, so the count is checked too.
    pub gpu_capped: bool,
    pub used: Capacity,
    pub used_gpus: u64,
    /// Parallel to `node.devices`.
    pub taken: Vec<bool>,
    /// `(protocol, port)` pairs bound on the node.
    pub ports: HashSet<(String, u16)>,
    /// Allocations of the job being planned / of any job.
    pub job_allocs: u32,
    pub any_allocs: u32,
}

impl<'a> NodeState<'a> {
    fn new(node: &'a NodeCandidate) -> Self {
        NodeState {
            node,
            usable: node.usable(),
            gpu_limit: node.usable_gpus(),
            gpu_capped: node.usable_gpus() < node.gpu_count(),
            used: Capacity::default(),
            used_gpus: 0,
            taken: vec![false; node.devices.len()],
            ports: HashSet::new(),
            job_allocs: 0,
            any_allocs: 0,
        }
    }

    /// Charges an allocation (existing or new) to this node.
    pub fn commit(&mut self, alloc: &Allocation, same_job: bool) {
        self.used.cpu_millis = self.used.cpu_millis.saturating_add(alloc.cpu_millis);
        self.used.memory_mb = self.used.memory_mb.saturating_add(alloc.memory_mb);
        self.used.disk_mb = self.used.disk_mb.saturating_add(alloc.disk_mb);
        self.used_gpus = self.used_gpus.saturating_add(u64::from(alloc.gpus));
        for id in &alloc.device_ids {
            if let Some(i) = self.node.devices.iter().position(|d| d.id == *id) {
                self.taken[i] = true;
            }
        }
        for PlannedPort { port, protocol, .. } in &alloc.ports {
            self.ports.insert((protocol.clone(), *port));
        }
        self.any_allocs += 1;
        if same_job {
            self.job_allocs += 1;
        }
    }

    /// Free amounts (never negative, even if existing allocations already over-commit).
    pub fn free(&self) -> Capacity {
        Capacity {
            cpu_millis: self.usable.cpu_millis.saturating_sub(self.used.cpu_millis),
            memory_mb: self.usable.memory_mb.saturating_sub(self.used.memory_mb),
            disk_mb: self.usable.disk_mb.saturating_sub(self.used.disk_mb),
        }
    }

    pub fn free_gpus(&self) -> u64 {
        self.gpu_limit.saturating_sub(self.used_gpus)
    }

    /// Whether anything (from any job) already runs here.
    pub fn in_use(&self) -> bool {
        self.any_allocs > 0
    }

    /// Mean fraction used over the resources this node has, if `extra` were added.
    pub fn utilisation_with(&self, cpu: u64, memory: u64, disk: u64, gpus: u64) -> f64 {
        let dims = [
            (self.used.cpu_millis + cpu, self.usable.cpu_millis),
            (self.used.memory_mb + memory, self.usable.memory_mb),
            (self.used.disk_mb + disk, self.usable.disk_mb),
            (self.used_gpus + gpus, self.gpu_limit),
        ];
        let (sum, n) = dims
            .iter()
            .filter(|(_, cap)| *cap > 0)
            .fold((0.0, 0u32), |(s, n), (u, cap)| {
                (s + *u as f64 / *cap as f64, n + 1)
            });
        if n == 0 { 0.0 } else { sum / f64::from(n) }
    }
}

/// All nodes, sorted by name so iteration order is the deterministic tie-break.
pub(crate) struct Cluster<'a> {
    pub nodes: Vec<NodeState<'a>>,
}

impl<'a> Cluster<'a> {
    /// Builds the state and charges `existing` allocations; ones on unknown nodes are ignored
    /// (the node left the cluster; its work is the reconciler's business, not placement's).
    pub fn new(nodes: &'a [NodeCandidate], existing: &[Allocation], job_id: &str) -> Self {
        let mut states: Vec<NodeState<'a>> = nodes.iter().map(NodeState::new).collect();
        states.sort_by(|a, b| a.node.name.cmp(&b.node.name));
        let index: HashMap<&str, usize> = states
            .iter()
            .enumerate()
            .map(|(i, s)| (s.node.name.as_str(), i))
            .collect();
        let mut positions = Vec::with_capacity(existing.len());
        for alloc in existing {
            if let Some(&i) = index.get(alloc.node.as_str()) {
                positions.push((i, alloc));
            }
        }
        for (i, alloc) in positions {
            states[i].commit(alloc, alloc.job_id == job_id);
        }
        Cluster { nodes: states }
    }
}
