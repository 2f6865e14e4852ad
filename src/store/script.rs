//! Server-side Lua scripts, loaded once and called by SHA (EVALSHA) so they can be pipelined.
//! A Redis restart forgets loaded scripts; callers reload on NOSCRIPT and retry once.

use redis::aio::ConnectionLike;

/// A Lua script whose source lives in `streams/` or `projections/`.
#[derive(Debug, Clone)]
pub struct LuaScript {
    name: &'static str,
    source: &'static str,
    sha: String,
}

impl LuaScript {
    pub fn new(name: &'static str, source: &'static str) -> Self {
        let sha = redis::Script::new(source).get_hash().to_string();
        LuaScript { name, source, sha }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `EVALSHA sha numkeys` with the keys appended; add args with `.arg(..)`.
    pub fn evalsha(&self, keys: &[&str]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(keys.len());
        for k in keys {
            cmd.arg(*k);
        }
        cmd
    }

    /// Makes the server know the script (idempotent).
    pub async fn load<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<()> {
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(self.source)
            .query_async(conn)
            .await?;
        Ok(())
    }
}

/// True when the server does not know a script (it restarted or flushed scripts).
pub fn is_noscript(err: &redis::RedisError) -> bool {
    err.code() == Some("NOSCRIPT")
}

/// The scripts of the event store and projections.
#[derive(Debug, Clone)]
pub struct Scripts {
    pub append: LuaScript,
    pub lease_acquire: LuaScript,
    pub lease_renew: LuaScript,
    pub lease_release: LuaScript,
    pub trim_feed: LuaScript,
    pub apply_job: LuaScript,
    pub replace_job: LuaScript,
    pub delete_job: LuaScript,
    pub definition_append: LuaScript,
    pub schedule_append: LuaScript,
    pub deployment_append: LuaScript,
    pub deployment_settle: LuaScript,
    pub emit_event: LuaScript,
    pub node_append: LuaScript,
    pub apply_node: LuaScript,
}

impl Scripts {
    pub fn new() -> Self {
        Scripts {
            append: LuaScript::new("append", include_str!("../../streams/append.lua")),
            lease_acquire: LuaScript::new(
                "lease_acquire",
                include_str!("../../streams/lease_acquire.lua"),
            ),
            lease_renew: LuaScript::new(
                "lease_renew",
                include_str!("../../streams/lease_renew.lua"),
            ),
            lease_release: LuaScript::new(
                "lease_release",
                include_str!("../../streams/lease_release.lua"),
            ),
            trim_feed: LuaScript::new("trim_feed", include_str!("../../streams/trim_feed.lua")),
            apply_job: LuaScript::new("apply_job", include_str!("../../projections/apply_job.lua")),
            replace_job: LuaScript::new(
                "replace_job",
                include_str!("../../projections/replace_job.lua"),
            ),
            delete_job: LuaScript::new("delete_job", include_str!("../../streams/delete_job.lua")),
            definition_append: LuaScript::new(
                "definition_append",
                include_str!("../../streams/definition_append.lua"),
            ),
            schedule_append: LuaScript::new(
                "schedule_append",
                include_str!("../../streams/schedule_append.lua"),
            ),
            deployment_append: LuaScript::new(
                "deployment_append",
                include_str!("../../streams/deployment_append.lua"),
            ),
            deployment_settle: LuaScript::new(
                "deployment_settle",
                include_str!("../../streams/deployment_settle.lua"),
            ),
            emit_event: LuaScript::new("emit_event", include_str!("../../streams/emit_event.lua")),
            node_append: LuaScript::new(
                "node_append",
                include_str!("../../streams/node_append.lua"),
            ),
            apply_node: LuaScript::new(
                "apply_node",
                include_str!("../../projections/apply_node.lua"),
            ),
        }
    }

    /// Loads every script (at connect time and after NOSCRIPT).
    pub async fn load_all<C: ConnectionLike>(&self, conn: &mut C) -> redis::RedisResult<()> {
        for s in [
            &self.append,
            &self.lease_acquire,
            &self.lease_renew,
            &self.lease_release,
            &self.trim_feed,
            &self.apply_job,
            &self.replace_job,
            &self.delete_job,
            &self.definition_append,
            &self.schedule_append,
            &self.deployment_append,
            &self.deployment_settle,
            &self.emit_event,
            &self.node_append,
            &self.apply_node,
        ] {
            s.load(conn).await?;
        }
        Ok(())
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}
