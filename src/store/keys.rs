//! Every Redis key the runtime uses, in one place. Keys of one job carry a `{job_id}` hash
//! tag so that, under Redis Cluster, a job's history, lease and views live in one slot.

use crate::domain::job::JobStatus;

/// The key names under one namespace (`MN_REDIS_NAMESPACE`, default `mirror_neuron`).
#[derive(Debug, Clone)]
pub struct Keyspace {
    ns: String,
}

/// Longest accepted job id: keys stay short and ids stay readable.
pub const MAX_JOB_ID_LEN: usize = 200;

/// Why a job id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobIdError {
    #[error("job_id must be a non-empty string")]
    Empty,
    #[error("job_id is longer than {MAX_JOB_ID_LEN} characters")]
    TooLong,
    #[error("job_id may contain only letters, digits, '.', '_' and '-' (got {0:?})")]
    BadChar(char),
}

/// Checks that a job id is safe to embed in key names (no `{`, `}`, `:` or spaces).
pub fn validate_job_id(job_id: &str) -> Result<(), JobIdError> {
    if job_id.is_empty() {
        return Err(JobIdError::Empty);
    }
    if job_id.len() > MAX_JOB_ID_LEN {
        return Err(JobIdError::TooLong);
    }
    match job_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(JobIdError::BadChar(c)),
        None => Ok(()),
    }
}

impl Keyspace {
    pub fn new(namespace: impl Into<String>) -> Self {
        Keyspace {
            ns: namespace.into(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    fn job(&self, job_id: &str, part: &str) -> String {
        format!("{}:job:{{{}}}:{}", self.ns, job_id, part)
    }

    /// A job's history stream: the only truth about the job.
    pub fn job_events(&self, job_id: &str) -> String {
        self.job(job_id, "events")
    }
    /// The job's lease (`owner|epoch`, expiring).
    pub fn job_lease(&self, job_id: &str) -> String {
        self.job(job_id, "lease")
    }
    /// The job's fencing epoch counter.
    pub fn job_lease_epoch(&self, job_id: &str) -> String {
        self.job(job_id, "lease_epoch")
    }
    /// Commands addressed to the job's current owner.
    pub fn job_commands(&self, job_id: &str) -> String {
        self.job(job_id, "commands")
    }
    /// View: the job row (hash: seq, json).
    pub fn job_view(&self, job_id: &str) -> String {
        self.job(job_id, "view")
    }
    /// View: one field per agent.
    pub fn job_agents(&self, job_id: &str) -> String {
        self.job(job_id, "agents")
    }
    /// View: the job's dead letters.
    pub fn job_dead_letters(&self, job_id: &str) -> String {
        self.job(job_id, "dead_letters")
    }
    /// Where a finished job's archived history lives (hash: sha256, size, entries, last_seq,
    /// archived_at_ms); present only once the hot history stream is gone.
    pub fn job_archive(&self, job_id: &str) -> String {
        self.job(job_id, "archive")
    }
    /// Set of job ids whose history is archived (the retention sweep skips them).
    pub fn jobs_archived(&self) -> String {
        format!("{}:jobs:archived", self.ns)
    }
    /// Every event of every job, for consumer groups (projections, reconciler).
    pub fn feed(&self) -> String {
        format!("{}:feed", self.ns)
    }
    /// Feed entries and history events that could not be decoded, by `<job>/<stream id>`.
    pub fn event_dead_letters(&self) -> String {
        format!("{}:events:dead_letters", self.ns)
    }
    /// Set of every job id that has a history (written by the append script).
    pub fn jobs_registry(&self) -> String {
        format!("{}:jobs:registry", self.ns)
    }
    /// View index: job ids by submission time.
    pub fn jobs_by_time(&self) -> String {
        format!("{}:jobs:by_time", self.ns)
    }
    /// View index: job ids in one status, by submission time.
    pub fn jobs_by_status(&self, status: JobStatus) -> String {
        format!("{}:jobs:status:{}", self.ns, status.as_str())
    }
    /// A schedule's history stream (JSON events; entry id `<seq>-0`).
    pub fn schedule_events(&self, schedule_id: &str) -> String {
        format!("{}:schedule:{{{}}}:events", self.ns, schedule_id)
    }
    /// View: every schedule's JSON row, by id.
    pub fn schedules_view(&self) -> String {
        format!("{}:schedules", self.ns)
    }
    /// Index: schedule ids scored by the Unix ms at which a sweep owes them something.
    pub fn schedules_due(&self) -> String {
        format!("{}:schedules:due", self.ns)
    }
    /// A deployment key's history stream (JSON events; entry id `<seq>-0`).
    pub fn deployment_events(&self, key: &str) -> String {
        format!("{}:deployment:{{{}}}:events", self.ns, key)
    }
    /// View: every deployment key's JSON record, by key.
    pub fn deployments_view(&self) -> String {
        format!("{}:deployments", self.ns)
    }
    /// Index: deployment keys the controller still has to act on, scored by last append ms.
    pub fn deployments_active(&self) -> String {
        format!("{}:deployments:active", self.ns)
    }
    /// Index: deployment id -> deployment key.
    pub fn deployment_ids(&self) -> String {
        format!("{}:deployments:ids", self.ns)
    }
    /// Emitted trigger events, newest last (capped).
    pub fn emitted_events(&self) -> String {
        format!("{}:events:emitted", self.ns)
    }
    /// The first event emitted with an idempotency key (expiring).
    pub fn emit_idempotency(&self, key: &str) -> String {
        format!("{}:events:idempotency:{}", self.ns, key)
    }
    /// Keyspace schema version (an integer).
    fn node(&self, node: &str, part: &str) -> String {
        format!("{}:node:{{{node}}}:{part}", self.ns)
    }

    /// A node's history (joins, losses, drains, maintenance).
    pub fn node_events(&self, node: &str) -> String {
        self.node(node, "events")
    }

    /// A node's view (projection of its history): hash `v` (version) + `json`.
    pub fn node_view(&self, node: &str) -> String {
        self.node(node, "view")
    }

    /// A node's liveness lease: `<incarnation>|1`, renewed by heartbeats.
    pub fn node_alive(&self, node: &str) -> String {
        self.node(node, "alive")
    }

    /// Work items placed on a node (consumer group `workers`).
    pub fn node_work(&self, node: &str) -> String {
        self.node(node, "work")
    }

    /// Commands the leader sends a node (take or hand back a job).
    pub fn node_inbox(&self, node: &str) -> String {
        self.node(node, "inbox")
    }

    /// Blob requests addressed to a node (answered by its `serve`).
    pub fn node_blob_requests(&self, node: &str) -> String {
        self.node(node, "blob_requests")
    }

    /// The nodes that announced holding blob `sha256` (a set).
    pub fn blob_holders(&self, sha256: &str) -> String {
        format!("{}:blob:{sha256}:holders", self.ns)
    }

    /// A short-lived list one blob answer is pushed to (`reply_id` is a 32-hex-digit id).
    pub fn blob_reply(&self, reply_id: &str) -> String {
        format!("{}:blob_reply:{reply_id}", self.ns)
    }

    /// Bytes of step output a job has stored (counted against its output budget).
    pub fn job_output_bytes(&self, job_id: &str) -> String {
        self.job(job_id, "output_bytes")
    }

    /// Every node name that ever joined.
    pub fn nodes_registry(&self) -> String {
        format!("{}:nodes", self.ns)
    }

    /// One entry per node append; node-view workers catch the named node up.
    pub fn nodes_feed(&self) -> String {
        format!("{}:nodes:feed", self.ns)
    }

    pub fn leader_lease(&self) -> String {
        format!("{}:leader:lease", self.ns)
    }

    pub fn leader_epoch(&self) -> String {
        format!("{}:leader:epoch", self.ns)
    }

    /// Results of a job's work items, written by the node that ran them.
    pub fn job_results(&self, job_id: &str) -> String {
        self.job(job_id, "results")
    }

    pub fn schema_version(&self) -> String {
        format!("{}:meta:schema_version", self.ns)
    }
    /// Hash of applied migrations: number -> applied-at ms.
    pub fn migrations_applied(&self) -> String {
        format!("{}:meta:migrations", self.ns)
    }
    /// Pattern matching every key of this namespace (for tests and admin tools).
    pub fn all_keys_pattern(&self) -> String {
        format!("{}:*", self.ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_keys_share_one_hash_tag() {
        let k = Keyspace::new("mn");
        assert_eq!(k.job_events("j-1"), "mn:job:{j-1}:events");
        assert_eq!(k.job_view("j-1"), "mn:job:{j-1}:view");
        assert_eq!(k.job_lease_epoch("j-1"), "mn:job:{j-1}:lease_epoch");
        assert_eq!(k.schedule_events("sched_1"), "mn:schedule:{sched_1}:events");
    }

    #[test]
    fn job_ids_that_would_break_keys_are_refused() {
        assert_eq!(validate_job_id(""), Err(JobIdError::Empty));
        assert_eq!(validate_job_id("a}b"), Err(JobIdError::BadChar('}')));
        assert_eq!(validate_job_id("a:b"), Err(JobIdError::BadChar(':')));
        assert_eq!(validate_job_id(&"x".repeat(201)), Err(JobIdError::TooLong));
        assert!(validate_job_id("research_flow_v1-1700000000000-0123456789ab").is_ok());
    }
}
