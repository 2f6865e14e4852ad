//! Read views in Redis: loading and writing job projections, and the reads the CLI and gRPC use.

use std::collections::BTreeMap;

use redis::AsyncCommands;

use super::{Store, StoreError};
use crate::domain::job::JobStatus;
use crate::domain::view::{AgentView, DeadLetterView, JobProjection, JobView};

/// A job's projection as a worker loaded it, with the seq the CAS write must expect.
#[derive(Debug, Clone)]
pub struct LoadedProjection {
    pub loaded_seq: u64,
    pub loaded_status: Option<JobStatus>,
    pub projection: JobProjection,
}

/// Which jobs `list_jobs` returns.
#[derive(Debug, Clone, Default)]
pub struct JobListFilter {
    pub status: Option<JobStatus>,
    /// Newest first, at most this many.
    pub limit: usize,
}

fn parse<T: serde::de::DeserializeOwned>(key: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::CorruptView {
        key: key.to_string(),
        detail: e.to_string(),
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Views are plain data with string keys: serialisation cannot fail.
    serde_json::to_string(v).expect("views always serialise")
}

impl Store {
    /// Loads the views of one job: the job row and the named agent rows.
    pub async fn load_projection(
        &self,
        job_id: &str,
        agent_ids: &[String],
    ) -> Result<LoadedProjection, StoreError> {
        let k = self.keys();
        let view_key = k.job_view(job_id);
        let mut conn = self.conn();
        let (seq, json): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(&view_key)
            .arg("seq")
            .arg("json")
            .query_async(&mut conn)
            .await?;
        let job: JobView = match json {
            Some(j) => parse(&view_key, &j)?,
            None => JobView::default(),
        };
        let agents = self.load_agent_rows(job_id, agent_ids).await?;
        Ok(LoadedProjection {
            loaded_seq: seq.unwrap_or(0),
            loaded_status: job.status,
            projection: JobProjection {
                job,
                agents,
                new_dead_letters: Vec::new(),
            },
        })
    }

    /// Loads the named agent rows of a job (missing rows are left out).
    pub async fn load_agent_rows(
        &self,
        job_id: &str,
        agent_ids: &[String],
    ) -> Result<BTreeMap<String, AgentView>, StoreError> {
        let mut agents = BTreeMap::new();
        if agent_ids.is_empty() {
            return Ok(agents);
        }
        let agents_key = self.keys().job_agents(job_id);
        let rows: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&agents_key)
            .arg(agent_ids)
            .query_async(&mut self.conn())
            .await?;
        for (id, row) in agent_ids.iter().zip(rows) {
            if let Some(json) = row {
                agents.insert(id.clone(), parse::<AgentView>(&agents_key, &json)?);
            }
        }
        Ok(agents)
    }

    /// Builds the CAS script call that writes a projection (see projections/apply_job.lua).
    fn projection_cmd(&self, loaded: &LoadedProjection, replace: bool) -> redis::Cmd {
        let k = self.keys();
        let p = &loaded.projection;
        let job_id = &p.job.job_id;
        let shard = k.shard_of(job_id);
        let new_status = p.job.status.unwrap_or(JobStatus::Pending);
        let old_status = loaded.loaded_status.unwrap_or(new_status);
        let (view, agents, dead, by_time) = (
            k.job_view(job_id),
            k.job_agents(job_id),
            k.job_dead_letters(job_id),
            k.jobs_by_time(shard),
        );
        let (old_key, new_key) = (
            k.jobs_by_status(shard, old_status),
            k.jobs_by_status(shard, new_status),
        );
        let all_status: Vec<String> = JobStatus::ALL
            .iter()
            .map(|s| k.jobs_by_status(shard, *s))
            .collect();
        let mut cmd = if replace {
            let mut keys: Vec<&str> = vec![&view, &agents, &dead, &by_time, &new_key];
            keys.extend(all_status.iter().map(String::as_str));
            self.scripts().replace_job.evalsha(&keys)
        } else {
            self.scripts()
                .apply_job
                .evalsha(&[&view, &agents, &dead, &by_time, &old_key, &new_key])
        };
        cmd.arg(job_id)
            .arg(loaded.loaded_seq)
            .arg(p.job.last_seq)
            .arg(to_json(&p.job))
            .arg(p.job.submitted_at_ms)
            .arg(p.agents.len());
        for (id, row) in &p.agents {
            cmd.arg(id).arg(to_json(row));
        }
        for dl in &p.new_dead_letters {
            cmd.arg(to_json(dl));
        }
        cmd
    }

    /// Writes several projections in one pipeline. Returns, per projection, `None` when it was
    /// written or `Some(current_seq)` when the view had moved on (reload and reapply).
    pub async fn write_projections(
        &self,
        loaded: &[LoadedProjection],
    ) -> Result<Vec<Option<u64>>, StoreError> {
        if loaded.is_empty() {
            return Ok(Vec::new());
        }
        let replies: Vec<(i64, u64)> = self
            .pipelined(
                loaded,
                |l| self.keys().shard_of(&l.projection.job.job_id),
                |pipe, l| {
                    pipe.add_command(self.projection_cmd(l, false));
                },
            )
            .await?;
        Ok(replies
            .into_iter()
            .map(|(ok, seq)| if ok == 1 { None } else { Some(seq) })
            .collect())
    }

    /// Replaces a job's views wholesale with a rebuilt projection (agents and dead letters
    /// complete). Returns false if the live view is already newer than the rebuilt one.
    pub async fn replace_projection(&self, projection: JobProjection) -> Result<bool, StoreError> {
        let loaded = LoadedProjection {
            loaded_seq: 0,
            loaded_status: None,
            projection,
        };
        let (ok, _): (i64, u64) = self.eval(&self.projection_cmd(&loaded, true)).await?;
        Ok(ok == 1)
    }

    /// The job row, if the job exists in the views.
    pub async fn job_view(&self, job_id: &str) -> Result<Option<JobView>, StoreError> {
        let key = self.keys().job_view(job_id);
        let json: Option<String> = self.conn().hget(&key, "json").await?;
        json.map(|j| parse(&key, &j)).transpose()
    }

    /// Several job rows in one round trip (missing ones are skipped).
    pub async fn job_views(&self, job_ids: &[String]) -> Result<Vec<JobView>, StoreError> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Option<String>> = self
            .pipelined(
                job_ids,
                |id| self.keys().shard_of(id),
                |pipe, id| {
                    pipe.hget(self.keys().job_view(id), "json");
                },
            )
            .await?;
        rows.into_iter()
            .zip(job_ids)
            .filter_map(|(row, id)| row.map(|j| parse(&self.keys().job_view(id), &j)))
            .collect()
    }

    /// Job rows, newest first, from the by-time or by-status index.
    pub async fn list_jobs(&self, filter: &JobListFilter) -> Result<Vec<JobView>, StoreError> {
        let stop = if filter.limit == 0 {
            -1
        } else {
            filter.limit as isize - 1
        };
        // Each shard's newest, then the newest of those (one shard on a single Redis).
        let mut rows: Vec<(String, f64)> = Vec::new();
        for shard in self.keys().shards() {
            let index = match filter.status {
                Some(s) => self.keys().jobs_by_status(shard, s),
                None => self.keys().jobs_by_time(shard),
            };
            let some: Vec<(String, f64)> = self.conn().zrevrange_withscores(index, 0, stop).await?;
            rows.extend(some);
        }
        if self.keys().is_sharded() {
            rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
            if filter.limit > 0 {
                rows.truncate(filter.limit);
            }
        }
        let ids: Vec<String> = rows.into_iter().map(|(id, _)| id).collect();
        self.job_views(&ids).await
    }

    /// Views of every active job (pending, running, paused), each once: the status indexes
    /// are read one after the other, so a job that moved between them meanwhile is seen twice
    /// in the raw lists.
    pub async fn active_job_views(&self) -> Result<Vec<JobView>, StoreError> {
        let mut ids: Vec<String> = vec![];
        let mut seen = std::collections::HashSet::new();
        for shard in self.keys().shards() {
            for s in JobStatus::ALL.into_iter().filter(|s| !s.is_terminal()) {
                let page: Vec<String> = self
                    .conn()
                    .zrevrange(self.keys().jobs_by_status(shard, s), 0, -1)
                    .await?;
                ids.extend(page.into_iter().filter(|id| seen.insert(id.clone())));
            }
        }
        Ok(self
            .job_views(&ids)
            .await?
            .into_iter()
            .filter(|v| v.status.is_some_and(|s| !s.is_terminal()))
            .collect())
    }

    /// Counts of jobs per status, from the indexes.
    pub async fn job_counts(&self) -> Result<BTreeMap<JobStatus, u64>, StoreError> {
        let mut totals: BTreeMap<JobStatus, u64> = BTreeMap::new();
        for shard in self.keys().shards() {
            let mut pipe = redis::pipe();
            for s in JobStatus::ALL {
                pipe.zcard(self.keys().jobs_by_status(shard, s));
            }
            let counts: Vec<u64> = pipe.query_async(&mut self.conn()).await?;
            for (s, n) in JobStatus::ALL.into_iter().zip(counts) {
                *totals.entry(s).or_default() += n;
            }
        }
        Ok(totals)
    }

    /// The agent rows of a job, by agent id.
    pub async fn agent_views(&self, job_id: &str) -> Result<Vec<AgentView>, StoreError> {
        let key = self.keys().job_agents(job_id);
        let rows: BTreeMap<String, String> = self.conn().hgetall(&key).await?;
        rows.values().map(|j| parse(&key, j)).collect()
    }

    /// The dead letters of a job, oldest first.
    pub async fn dead_letter_views(&self, job_id: &str) -> Result<Vec<DeadLetterView>, StoreError> {
        let key = self.keys().job_dead_letters(job_id);
        let rows: Vec<String> = self.conn().lrange(&key, 0, -1).await?;
        rows.iter().map(|j| parse(&key, j)).collect()
    }
}
