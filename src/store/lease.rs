//! Fenced leases: a lease key `owner|epoch` with a TTL and an epoch counter that only grows.
//! The epoch is the fencing token every append of the owner carries.

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
        let (lease, epoch) = (k.job_lease(job_id), k.job_lease_epoch(job_id));
        let mut cmd = self.scripts().lease_acquire.evalsha(&[&lease, &epoch]);
        cmd.arg(owner).arg(ttl_ms);
        let reply: Vec<Value> = self.eval(&cmd).await?;
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
        let lease = self.keys().job_lease(job_id);
        let mut cmd = self.scripts().lease_renew.evalsha(&[&lease]);
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
        let lease = self.keys().job_lease(job_id);
        let mut cmd = self.scripts().lease_release.evalsha(&[&lease]);
        cmd.arg(owner).arg(epoch);
        let released: i64 = self.eval(&cmd).await?;
        Ok(released == 1)
    }
}
