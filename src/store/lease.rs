//! Fenced leases: a lease key `owner|epoch` with a TTL and an epoch counter that only grows.
//! The epoch is the fencing token every append of the owner carries.
//!
//! Across a Sentinel failover: the new master has what the old one had replicated, maybe not
//! the latest renewals or grants. A lost renewal only shortens the lease there: the owner's
//! next renewal finds the key gone or someone else's and returns false, and the owner stops.
//! A lost *grant* would be worse: the epoch counter would go back, the next grant would hand
//! the same epoch to a second owner, and fencing could no longer tell their appends apart.
//! So with `MN_REDIS_MIN_REPLICAS_ACK` a grant is not used until replicas have it (see
//! `replica_ack.rs`); without it, an owner whose grant was lost usually finds out at its next
//! append, refused as a FUTURE_EPOCH or a STALE_EPOCH, or at its next renewal. Whatever the
//! leases say, the expected version of every append still orders the writers of one job.

use redis::Value;

use super::{Store, StoreError};

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The caller holds the lease at `epoch`.
    Granted { epoch: u64 },
    /// Someone else holds it.
    HeldBy { owner: String },
}

impl Store {
    /// Acquires (or renews, keeping the epoch) the lease of `job_id` for `owner`.
    pub async fn acquire_job_lease(
        &self,
        job_id: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<LeaseGrant, StoreError> {
        let k = self.keys();
        self.acquire_lease(
            &k.job_lease(job_id),
            &k.job_lease_epoch(job_id),
            owner,
            ttl_ms,
        )
        .await
    }

    /// Acquires (or renews) the cluster leader lease for `node`.
    pub async fn acquire_leader_lease(
        &self,
        node: &str,
        ttl_ms: u64,
    ) -> Result<LeaseGrant, StoreError> {
        let k = self.keys();
        self.acquire_lease(&k.leader_lease(), &k.leader_epoch(), node, ttl_ms)
            .await
    }

    /// Extends the leader lease if `node` still holds it at `epoch`.
    pub async fn renew_leader_lease(
        &self,
        node: &str,
        epoch: u64,
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        self.renew_lease(&self.keys().leader_lease(), node, epoch, ttl_ms)
            .await
    }

    /// Gives the leader lease up.
    pub async fn release_leader_lease(&self, node: &str, epoch: u64) -> Result<bool, StoreError> {
        self.release_lease(&self.keys().leader_lease(), node, epoch)
            .await
    }

    /// The current leader and its epoch.
    pub async fn leader(&self) -> Result<Option<(String, u64)>, StoreError> {
        self.lease_holder(&self.keys().leader_lease()).await
    }

    /// Who holds the lease of `job_id`, at which epoch.
    pub async fn job_lease_holder(
        &self,
        job_id: &str,
    ) -> Result<Option<(String, u64)>, StoreError> {
        self.lease_holder(&self.keys().job_lease(job_id)).await
    }

    /// Who holds the lease of each job, in one round trip.
    pub async fn job_lease_holders(
        &self,
        job_ids: &[String],
    ) -> Result<Vec<Option<(String, u64)>>, StoreError> {
        if job_ids.is_empty() {
            return Ok(vec![]);
        }
        let keys: Vec<String> = job_ids.iter().map(|j| self.keys().job_lease(j)).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await?;
        Ok(values
            .into_iter()
            .map(|v| v.and_then(|v| parse_holder(&v)))
            .collect())
    }

    /// Reads `<owner>|<epoch>` from a lease key.
    async fn lease_holder(&self, key: &str) -> Result<Option<(String, u64)>, StoreError> {
        use redis::AsyncCommands;
        let v: Option<String> = self.conn().get(key).await?;
        Ok(v.and_then(|v| parse_holder(&v)))
    }

    async fn acquire_lease(
        &self,
        lease: &str,
        epoch: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<LeaseGrant, StoreError> {
        let mut cmd = self.scripts().lease_acquire.evalsha(&[lease, epoch]);
        cmd.arg(owner).arg(ttl_ms);
        // A new epoch must survive a failover (see the module doc), so with
        // MN_REDIS_MIN_REPLICAS_ACK the grant waits for replicas like an append.
        let granted = |r: &Vec<Value>| matches!(r.first(), Some(Value::Int(1)));
        let reply: Vec<Value> = self.eval_replicated(&cmd, granted).await?;
        match reply.as_slice() {
            [Value::Int(1), Value::Int(epoch)] => Ok(LeaseGrant::Granted {
                epoch: *epoch as u64,
            }),
            [Value::Int(0), Value::BulkString(owner)] => Ok(LeaseGrant::HeldBy {
                owner: String::from_utf8_lossy(owner).into_owned(),
            }),
            other => Err(StoreError::Protocol {
                script: "lease_acquire",
                detail: format!("{other:?}"),
            }),
        }
    }

    /// Extends the lease if `owner` still holds it at `epoch`; false means it was lost.
    pub async fn renew_job_lease(
        &self,
        job_id: &str,
        owner: &str,
        epoch: u64,
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        self.renew_lease(&self.keys().job_lease(job_id), owner, epoch, ttl_ms)
            .await
    }

    async fn renew_lease(
        &self,
        lease: &str,
        owner: &str,
        epoch: u64,
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut cmd = self.scripts().lease_renew.evalsha(&[lease]);
        cmd.arg(owner).arg(epoch).arg(ttl_ms);
        let renewed: i64 = self.eval(&cmd).await?;
        Ok(renewed == 1)
    }

    /// Gives the lease up if `owner` still holds it at `epoch`.
    pub async fn release_job_lease(
        &self,
        job_id: &str,
        owner: &str,
        epoch: u64,
    ) -> Result<bool, StoreError> {
        self.release_lease(&self.keys().job_lease(job_id), owner, epoch)
            .await
    }

    async fn release_lease(
        &self,
        lease: &str,
        owner: &str,
        epoch: u64,
    ) -> Result<bool, StoreError> {
        let mut cmd = self.scripts().lease_release.evalsha(&[lease]);
        cmd.arg(owner).arg(epoch);
        let released: i64 = self.eval(&cmd).await?;
        Ok(released == 1)
    }
}

/// `<owner>|<epoch>` as stored in a lease key.
fn parse_holder(v: &str) -> Option<(String, u64)> {
    let (owner, epoch) = v.rsplit_once('|')?;
    Some((owner.to_string(), epoch.parse().ok()?))
}
