//! Keyspace schema version and numbered migrations (the Lua files in `migrations/`).

use redis::AsyncCommands;

use super::{Shard, Store, StoreError};

/// A migration compiled into this build.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub number: u32,
    pub name: &'static str,
    body: &'static str,
}

/// Every migration this build knows, in order. Numbers are gapless from 1.
pub const MIGRATIONS: &[Migration] = &[Migration {
    number: 1,
    name: "init",
    body: include_str!("../../migrations/0001_init.lua"),
}];

/// The schema version this build writes and understands.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.number)
}

const PRELUDE: &str = r#"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local target = tonumber(ARGV[3])
if current >= target then return {0, current} end
if current ~= target - 1 then
  return redis.error_reply('migration ' .. target .. ' needs schema version ' .. (target - 1) .. ', keyspace is at ' .. current)
end
"#;

const EPILOGUE: &str = r#"
redis.call('SET', KEYS[1], target)
redis.call('HSET', KEYS[2], target, ARGV[2])
return {1, target}
"#;

/// Why the runtime cannot use a keyspace.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the Redis keyspace '{namespace}' has schema version {found}, newer than the newest this \
         mirror-neuron understands ({supported}); upgrade mirror-neuron or point MN_REDIS_NAMESPACE elsewhere"
    )]
    TooNew {
        namespace: String,
        found: u32,
        supported: u32,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One migration's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub number: u32,
    pub name: &'static str,
    /// False when it had already been applied (nothing ran).
    pub ran: bool,
}

impl Store {
    /// The keyspace's schema version (0 for an empty keyspace).
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        let v: Option<u32> = self.conn().get(self.keys().schema_version()).await?;
        Ok(v.unwrap_or(0))
    }

    /// Applies every pending migration in order. Safe to run concurrently from several
    /// processes: each migration's guard lets exactly one of them run it.
    pub async fn migrate(&self, now_ms: i64) -> Result<Vec<Applied>, SchemaError> {
        self.check_not_newer().await?;
        let k = self.keys();
        let (version, applied, feed) =
            (k.schema_version(), k.migrations_applied(), k.feed(Shard(0)));
        let mut out = Vec::new();
        for m in MIGRATIONS {
            let source = format!("{PRELUDE}\n{}\n{EPILOGUE}", m.body);
            let (ran, _): (i64, u32) = redis::Script::new(&source)
                .key(&version)
                .key(&applied)
                .key(&feed)
                .arg(k.meta_prefix())
                .arg(now_ms)
                .arg(m.number)
                .invoke_async(&mut self.conn())
                .await
                .map_err(StoreError::from)?;
            out.push(Applied {
                number: m.number,
                name: m.name,
                ran: ran == 1,
            });
        }
        // Migration 0001 made the projection group on shard 0's feed; under Redis Cluster the
        // other shards get theirs here (from their first entry), so that a backlog is known
        // for every shard before any projection worker starts.
        for shard in k.shards().skip(1) {
            self.ensure_feed_group(shard, super::PROJECTION_GROUP)
                .await?;
        }
        Ok(out)
    }

    /// Refuses a keyspace written by a newer build.
    pub async fn check_not_newer(&self) -> Result<u32, SchemaError> {
        let found = self.schema_version().await?;
        if found > latest_version() {
            return Err(SchemaError::TooNew {
                namespace: self.keys().namespace().to_string(),
                found,
                supported: latest_version(),
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                m.number as usize,
                i + 1,
                "migration {} is out of order",
                m.name
            );
        }
    }

    #[test]
    fn every_migration_file_is_registered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".lua"))
            .collect();
        files.sort();
        let registered: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.lua", m.number, m.name))
            .collect();
        assert_eq!(files, registered);
    }
}
