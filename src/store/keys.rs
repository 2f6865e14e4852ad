//! Every Redis key the runtime uses, in one place. Keys of one job carry a `{job_id}` hash
//! tag so that, under Redis Cluster, a job's history, lease and views live in one slot.

use crate::domain::job::JobStatus;

/// The key names under one namespace (`MN_REDIS_NAMESPACE`, default `mirror_neuron`).
#[derive(Debug, Clone)]
pub struct Keyspace {
    ns: String,
    /// The shard hash tags under Redis Cluster; empty on a single Redis.
    tags: Vec<String>,
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

/// One of the hash tags cross-entity keys are spread over under Redis Cluster. On a single
/// Redis there is exactly one, and keys carry no shard tag at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard(pub u16);

/// Most shards a keyspace may have.
pub const MAX_SHARDS: u16 = 1024;

/// Redis Cluster's key hash: CRC16 (XMODEM) of the key's hash tag, modulo 16384 slots.
pub fn cluster_slot(tag: &str) -> u16 {
    let mut crc: u16 = 0;
    for &b in tag.as_bytes() {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// The hash tag of shard `k` of `n`: the first `s<k>.<t>` whose slot falls in the k-th of `n`
/// equal slot ranges. `redis-cli --cluster create` gives each master one contiguous range, so
/// the shards (and the jobs in them) spread evenly over the masters instead of at random.
fn shard_tag(k: u16, n: u16) -> String {
    let (lo, hi) = (
        (k as u32 * 16384 / n as u32) as u16,
        ((k as u32 + 1) * 16384 / n as u32) as u16,
    );
    (0u32..)
        .map(|t| format!("s{k}.{t}"))
        .find(|tag| (lo..hi).contains(&cluster_slot(tag)))
        .expect("every slot range is hit by some tag")
}

/// FNV-1a: a stable hash (the same on every node and every build) to pick an id's shard.
fn stable_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Keyspace {
    /// The single-Redis layout: a job's keys share its `{job_id}` tag; registries, feeds and
    /// indexes are one key each.
    pub fn new(namespace: impl Into<String>) -> Self {
        Keyspace {
            ns: namespace.into(),
            tags: Vec::new(),
        }
    }

    /// The Redis Cluster layout: every entity (job, node, schedule, deployment, definition)
    /// belongs to one of `shards` hash tags, and its registry, feed and index entries live in
    /// that shard's own keys, so each script touches one slot.
    pub fn sharded(namespace: impl Into<String>, shards: u16) -> Self {
        let n = shards.clamp(1, MAX_SHARDS);
        Keyspace {
            ns: namespace.into(),
            tags: (0..n).map(|k| shard_tag(k, n)).collect(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// True for the Redis Cluster layout.
    pub fn is_sharded(&self) -> bool {
        !self.tags.is_empty()
    }

    /// Every shard, in order (one on a single Redis).
    pub fn shards(&self) -> impl Iterator<Item = Shard> + use<> {
        (0..self.tags.len().max(1) as u16).map(Shard)
    }

    /// The shard an entity id belongs to (always shard 0 on a single Redis).
    pub fn shard_of(&self, id: &str) -> Shard {
        if self.tags.is_empty() {
            return Shard(0);
        }
        Shard((stable_hash(id) % self.tags.len() as u64) as u16)
    }

    /// A key that exists once per shard: `ns:name` on a single Redis, `ns:{tag}:name` on a
    /// cluster.
    fn per_shard(&self, shard: Shard, name: &str) -> String {
        format!("{}:{name}", self.shard_prefix(shard))
    }

    /// What every per-shard key starts with: `ns`, or `ns:{tag}` on a cluster.
    fn shard_prefix(&self, shard: Shard) -> String {
        match self.tags.get(shard.0 as usize) {
            Some(tag) => format!("{}:{{{tag}}}", self.ns),
            None => self.ns.clone(),
        }
    }

    /// A key of one entity: `ns:kind:{id}:part` on a single Redis (the id is the tag), and
    /// `ns:{shard tag}:kind:id:part` on a cluster.
    fn entity(&self, kind: &str, id: &str, part: &str) -> String {
        match self.tags.get(self.shard_of(id).0 as usize) {
            Some(tag) => format!("{}:{{{tag}}}:{kind}:{id}:{part}", self.ns),
            None => format!("{}:{kind}:{{{id}}}:{part}", self.ns),
        }
    }

    fn job(&self, job_id: &str, part: &str) -> String {
        self.entity("job", job_id, part)
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
    /// Results of a job's work items, written by the node that ran them.
    pub fn job_results(&self, job_id: &str) -> String {
        self.job(job_id, "results")
    }
    /// Bytes of step output a job has stored (counted against its output budget).
    pub fn job_output_bytes(&self, job_id: &str) -> String {
        self.job(job_id, "output_bytes")
    }
    /// Set of job ids whose history is archived (the retention sweep skips them).
    pub fn jobs_archived(&self, shard: Shard) -> String {
        self.per_shard(shard, "jobs:archived")
    }
    /// Every event of every job of the shard, for consumer groups (projections, reconciler).
    pub fn feed(&self, shard: Shard) -> String {
        self.per_shard(shard, "feed")
    }
    /// Feed entries and history events that could not be decoded, by `<job>/<stream id>`.
    pub fn event_dead_letters(&self) -> String {
        format!("{}:events:dead_letters", self.ns)
    }
    /// Set of every job id of the shard that has a history (written by the append script).
    pub fn jobs_registry(&self, shard: Shard) -> String {
        self.per_shard(shard, "jobs:registry")
    }
    /// View index: job ids by submission time.
    pub fn jobs_by_time(&self, shard: Shard) -> String {
        self.per_shard(shard, "jobs:by_time")
    }
    /// View index: job ids in one status, by submission time.
    pub fn jobs_by_status(&self, shard: Shard, status: JobStatus) -> String {
        self.per_shard(shard, &format!("jobs:status:{}", status.as_str()))
    }
    /// A schedule's history stream (JSON events; entry id `<seq>-0`).
    pub fn schedule_events(&self, schedule_id: &str) -> String {
        self.entity("schedule", schedule_id, "events")
    }
    /// View: every schedule's JSON row of the shard, by id.
    pub fn schedules_view(&self, shard: Shard) -> String {
        self.per_shard(shard, "schedules")
    }
    /// Index: schedule ids scored by the Unix ms at which a sweep owes them something.
    pub fn schedules_due(&self, shard: Shard) -> String {
        self.per_shard(shard, "schedules:due")
    }
    /// A deployment key's history stream (JSON events; entry id `<seq>-0`).
    pub fn deployment_events(&self, key: &str) -> String {
        self.entity("deployment", key, "events")
    }
    /// View: every deployment key's JSON record of the shard, by key.
    pub fn deployments_view(&self, shard: Shard) -> String {
        self.per_shard(shard, "deployments")
    }
    /// Index: deployment keys the controller still has to act on, scored by last append ms.
    pub fn deployments_active(&self, shard: Shard) -> String {
        self.per_shard(shard, "deployments:active")
    }
    /// Index: deployment id -> deployment key (in the key's shard).
    pub fn deployment_ids(&self, shard: Shard) -> String {
        self.per_shard(shard, "deployments:ids")
    }
    /// A definition's history stream.
    pub fn definition_events(&self, id: &str) -> String {
        self.entity("definition", id, "events")
    }
    /// A definition's runs, by start time.
    pub fn definition_runs(&self, id: &str) -> String {
        self.entity("definition", id, "runs")
    }
    /// View: every definition's JSON of the shard, by id.
    pub fn definitions_view(&self, shard: Shard) -> String {
        self.per_shard(shard, "definitions")
    }
    /// Emitted trigger events, newest last (capped). Shard 0, with its idempotency keys.
    pub fn emitted_events(&self) -> String {
        self.per_shard(Shard(0), "events:emitted")
    }
    /// The first event emitted with an idempotency key (expiring).
    pub fn emit_idempotency(&self, key: &str) -> String {
        self.per_shard(Shard(0), &format!("events:idempotency:{key}"))
    }

    fn node(&self, node: &str, part: &str) -> String {
        self.entity("node", node, part)
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
        self.per_shard(self.shard_of(sha256), &format!("blob:{sha256}:holders"))
    }

    /// A short-lived list one blob answer is pushed to (`reply_id` is a 32-hex-digit id).
    pub fn blob_reply(&self, reply_id: &str) -> String {
        format!("{}:blob_reply:{reply_id}", self.ns)
    }

    /// Every node name of the shard that ever joined.
    pub fn nodes_registry(&self, shard: Shard) -> String {
        self.per_shard(shard, "nodes")
    }

    /// One entry per node append of the shard; node-view workers catch the named node up.
    pub fn nodes_feed(&self, shard: Shard) -> String {
        self.per_shard(shard, "nodes:feed")
    }

    /// The leader's lease and its fencing epoch (one slot: the lease script touches both).
    pub fn leader_lease(&self) -> String {
        self.per_shard(Shard(0), "leader:lease")
    }

    pub fn leader_epoch(&self) -> String {
        self.per_shard(Shard(0), "leader:epoch")
    }

    /// Where the meta keys live (`<prefix>:meta:...`): shard 0, with the migration script's
    /// other keys.
    pub fn meta_prefix(&self) -> String {
        self.shard_prefix(Shard(0))
    }

    /// Keyspace schema version (an integer).
    pub fn schema_version(&self) -> String {
        self.per_shard(Shard(0), "meta:schema_version")
    }
    /// Hash of applied migrations: number -> applied-at ms.
    pub fn migrations_applied(&self) -> String {
        self.per_shard(Shard(0), "meta:migrations")
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
        let c = Keyspace::sharded("mn", 4);
        let events = c.job_events("j-1");
        assert!(events.starts_with("mn:{s") && events.ends_with("}:job:j-1:events"));
    }

    #[test]
    fn job_ids_that_would_break_keys_are_refused() {
        assert_eq!(validate_job_id(""), Err(JobIdError::Empty));
        assert_eq!(validate_job_id("a}b"), Err(JobIdError::BadChar('}')));
        assert_eq!(validate_job_id("a:b"), Err(JobIdError::BadChar(':')));
        assert_eq!(validate_job_id(&"x".repeat(201)), Err(JobIdError::TooLong));
        assert!(validate_job_id("research_flow_v1-1700000000000-0123456789ab").is_ok());
    }

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(cluster_slot("123456789"), 0x31C3);
        assert_eq!(cluster_slot("foo"), 12182);
        assert_eq!(cluster_slot("bar"), 5061);
    }

    #[test]
    fn the_single_layout_has_no_shard_tags() {
        let k = Keyspace::new("mn");
        assert!(!k.is_sharded());
        assert_eq!(k.shards().count(), 1);
        assert_eq!(k.feed(k.shard_of("j-1")), "mn:feed");
        assert_eq!(k.jobs_registry(Shard(0)), "mn:jobs:registry");
        assert_eq!(k.node_events("n1"), "mn:node:{n1}:events");
        assert_eq!(k.schema_version(), "mn:meta:schema_version");
        assert_eq!(k.meta_prefix(), "mn");
    }

    #[test]
    fn a_sharded_entity_shares_one_slot_with_its_shard_keys() {
        let k = Keyspace::sharded("mn", 8);
        assert_eq!(k.shards().count(), 8);
        let tag_slot = |key: &str| {
            let open = key.find('{').expect("a tag");
            let close = key[open..].find('}').expect("closed") + open;
            cluster_slot(&key[open + 1..close])
        };
        for job in ["j-1", "research_flow-17", "x"] {
            let s = k.shard_of(job);
            let slot = tag_slot(&k.job_events(job));
            for key in [
                k.job_lease_epoch(job),
                k.job_archive(job),
                k.feed(s),
                k.jobs_registry(s),
                k.jobs_by_time(s),
                k.jobs_by_status(s, JobStatus::Running),
            ] {
                assert_eq!(tag_slot(&key), slot, "{key}");
            }
        }
        assert_eq!(tag_slot(&k.schema_version()), tag_slot(&k.feed(Shard(0))));
        assert_eq!(tag_slot(&k.leader_lease()), tag_slot(&k.leader_epoch()));
        assert!(k.meta_prefix().ends_with('}'));
    }

    #[test]
    fn shards_spread_evenly_over_the_slot_ranges() {
        let k = Keyspace::sharded("mn", 6);
        let slots: Vec<u16> = k
            .shards()
            .map(|s| {
                let key = k.feed(s);
                let open = key.find('{').unwrap_or(0);
                let close = key.find('}').unwrap_or(0);
                cluster_slot(&key[open + 1..close])
            })
            .collect();
        for (i, slot) in slots.iter().enumerate() {
            let lo = i as u32 * 16384 / 6;
            let hi = (i as u32 + 1) * 16384 / 6;
            assert!(
                (lo..hi).contains(&(*slot as u32)),
                "shard {i} at slot {slot}"
            );
        }
        let ids = (0..600).map(|i| format!("job-{i}"));
        let mut per = [0u32; 6];
        for id in ids {
            per[k.shard_of(&id).0 as usize] += 1;
        }
        assert!(per.iter().all(|&n| n > 60), "{per:?}");
    }
}
