//! Redis Sentinel: a shared connection that follows the master through a failover by itself,
//! and dedicated connections to the current master for blocking reads.
//!
//! The redis crate's `SentinelClient` answers "who is the master now" (it asks the sentinels
//! and checks that the named server calls itself master) but keeps no connection that moves
//! when the master does. [`SentinelConn`] adds that: when a command fails in a way that says
//! the master may have changed (the link broke or timed out, or the server answers `READONLY`
//! because it was demoted), it asks the sentinels again, reconnects if needed, and returns the
//! command's error, which [`super::StoreError::is_retryable`] counts as retryable. It never
//! replays the command itself: a write whose reply was lost may have happened, and only the
//! caller knows whether repeating it is safe (appends are: a retried batch is a DUPLICATE).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisError};
use redis::{RedisFuture, RedisResult, Value};

use crate::config::{ConfigError, var};

/// Response timeout of the shared connection (a big script batch is one command).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds one "who is the master" round (sentinels plus the role check of the master).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// At most one sentinel round per this interval: when the master dies, every caller fails at
/// once; one of them asks, the others fail fast and retry on their own backoff.
const RESOLVE_EVERY: Duration = Duration::from_millis(200);
/// How often an idle connection asks the sentinels anyway: a master cut off from the
/// sentinels but not from this node keeps answering after they promoted another one.
const CHECK_EVERY: Duration = Duration::from_secs(5);
const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// Where the sentinels are and how to authenticate (`MN_REDIS_SENTINELS` and friends).
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    /// `host:port` of each sentinel.
    pub sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the master under.
    pub master: String,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    /// Credentials of the data nodes (master and replicas).
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Passwords are never printed.
impl std::fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |p: &Option<String>| p.as_ref().map(|_| "***");
        f.debug_struct("SentinelConfig")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &hide(&self.sentinel_password))
            .field("username", &self.username)
            .field("password", &hide(&self.password))
            .finish()
    }
}

impl SentinelConfig {
    /// Reads the environment: `None` when `MN_REDIS_SENTINELS` is unset.
    pub fn from_env() -> Result<Option<SentinelConfig>, ConfigError> {
        Self::from_lookup(var)
    }

    /// [`Self::from_env`] over any lookup (empty values count as unset).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<SentinelConfig>, ConfigError> {
        let Some(list) = get("MN_REDIS_SENTINELS") else {
            return Ok(None);
        };
        let invalid = |reason: String| ConfigError::Invalid {
            name: "MN_REDIS_SENTINELS",
            reason,
        };
        let mut sentinels = Vec::new();
        for item in list.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(invalid(format!("empty address in {list:?}")));
            }
            sentinels.push(parse_addr(item).map_err(invalid)?);
        }
        let master = get("MN_REDIS_SENTINEL_MASTER").unwrap_or_else(|| "mymaster".into());
        if master.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                name: "MN_REDIS_SENTINEL_MASTER",
                reason: format!("{master:?} contains whitespace"),
            });
        }
        Ok(Some(SentinelConfig {
            sentinels,
            master,
            sentinel_username: get("MN_REDIS_SENTINEL_USERNAME"),
            sentinel_password: get("MN_REDIS_SENTINEL_PASSWORD"),
            username: get("MN_REDIS_USERNAME"),
            password: get("MN_REDIS_PASSWORD"),
        }))
    }

    /// For messages: the master name and the sentinels (no credentials).
    pub fn describe(&self) -> String {
        let list: Vec<String> = self
            .sentinels
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        format!(
            "Redis master {:?} via sentinels {}",
            self.master,
            list.join(",")
        )
    }

    fn client(&self) -> RedisResult<SentinelClient> {
        let addrs = self
            .sentinels
            .iter()
            .map(|(h, p)| ConnectionAddr::Tcp(h.clone(), *p));
        let mut b = SentinelClientBuilder::new(addrs, &self.master, SentinelServerType::Master)?;
        if let Some(u) = &self.sentinel_username {
            b = b.set_client_to_sentinel_username(u);
        }
        if let Some(p) = &self.sentinel_password {
            b = b.set_client_to_sentinel_password(p);
        }
        if let Some(u) = &self.username {
            b = b.set_client_to_redis_username(u);
        }
        if let Some(p) = &self.password {
            b = b.set_client_to_redis_password(p);
        }
        b.build()
    }
}

/// `host:port`, `[v6]:port`, or a bare host (port 26379).
fn parse_addr(item: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = item.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{item:?}: missing ']'"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("{item:?}: expected ':port' after ']'")),
        }
    } else {
        match item.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (item, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{item:?}: missing host"));
    }
    let port = match port {
        None => DEFAULT_SENTINEL_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{item:?}: port must be 1-65535")),
        },
    };
    Ok((host.to_string(), port))
}

/// True for errors after which the master may be elsewhere: the link broke or timed out, or
/// the server is no longer (or not yet) a writable master.
pub fn is_failover_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || is_not_master(e)
}

/// `READONLY` (a demoted master or a replica), `MASTERDOWN` (a replica cut off from its
/// master), `NOREPLICAS` (`min-replicas-to-write` not met): the write went nowhere, and the
/// master may be about to change. Worth retrying.
pub fn is_not_master(e: &RedisError) -> bool {
    matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "NOREPLICAS"))
}

/// The link to the current master, swapped as a whole when the master moves.
struct Link {
    /// `None` while no master is reachable (between its death and the promotion).
    conn: Option<MultiplexedConnection>,
    /// The client for the master `conn` talks to, for opening blocking connections.
    master: Option<redis::Client>,
    addr: String,
    /// Bumped on every swap, so a caller that saw a failure on an older link knows that
    /// someone already replaced it.
    generation: u64,
}

struct Shared {
    config: SentinelConfig,
    link: Mutex<Link>,
    /// The sentinel client and when it was last asked; a tokio mutex, so one round at a time.
    resolver: tokio::sync::Mutex<(SentinelClient, Option<Instant>)>,
}

/// The shared connection to the master named by the sentinels. Cheap to clone; clones share
/// one multiplexed link, replaced when a failure suggests the master moved.
#[derive(Clone)]
pub struct SentinelConn {
    shared: Arc<Shared>,
}

impl SentinelConn {
    /// Asks the sentinels for the master and connects to it.
    pub async fn connect(config: &SentinelConfig) -> RedisResult<SentinelConn> {
        let client = config.client()?;
        let conn = SentinelConn {
            shared: Arc::new(Shared {
                config: config.clone(),
                link: Mutex::new(Link {
                    conn: None,
                    master: None,
                    addr: String::new(),
                    generation: 0,
                }),
                resolver: tokio::sync::Mutex::new((client, None)),
            }),
        };
        conn.resolve(0, true).await?;
        tokio::spawn(watch(Arc::downgrade(&conn.shared)));
        Ok(conn)
    }

    fn link(&self) -> std::sync::MutexGuard<'_, Link> {
        // A panic while holding this lock leaves a consistent Link (every write is one
        // assignment), so a poisoned lock is still usable.
        self.shared.link.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current link and its generation.
    fn current(&self) -> (Option<MultiplexedConnection>, u64) {
        let l = self.link();
        (l.conn.clone(), l.generation)
    }

    /// A connection of its own to the current master, for `XREADGROUP ... BLOCK` and
    /// `BLPOP` (response timeout `block` + 5 s). Readers drop it on any error and open a new
    /// one, which lands on the new master once the sentinels name it.
    pub async fn open_blocking(&self, block: Duration) -> RedisResult<MultiplexedConnection> {
        let (master, generation) = {
            let l = self.link();
            (l.master.clone(), l.generation)
        };
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(block + Duration::from_secs(5)))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        let opened = match master {
            Some(m) => {
                m.get_multiplexed_async_connection_with_config(&config)
                    .await
            }
            None => Err(no_master()),
        };
        match opened {
            Ok(c) => Ok(c),
            Err(e) => {
                // The master we knew is gone: ask again (rate-limited) for the next try.
                let _ = self.resolve(generation, true).await;
                Err(e)
            }
        }
    }

    /// Sends one request on the current link; on a failover-looking error, re-resolves
    /// before handing the error back.
    async fn send(&self, request: Request<'_>) -> RedisResult<Vec<Value>> {
        let (conn, generation) = self.current();
        let Some(mut conn) = conn else {
            let _ = self.resolve(generation, true).await;
            return Err(no_master());
        };
        let result = match request {
            Request::One(cmd) => conn.req_packed_command(cmd).await.map(|v| vec![v]),
            Request::Many(p, offset, count) => conn.req_packed_commands(p, offset, count).await,
        };
        match result {
            Err(e) if is_failover_error(&e) => {
                // A server error (READONLY) leaves the link usable if the master did not
                // move; a broken or hung link must be replaced either way.
                let link_broken = !is_not_master(&e);
                if let Err(re) = self.resolve(generation, link_broken).await {
                    tracing::debug!(error = %re, "sentinel: master not resolved yet");
                }
                Err(e)
            }
            other => other,
        }
    }

    /// Asks the sentinels who the master is and reconnects if it moved (or if `reconnect`:
    /// the link is broken). Skipped when the link changed since `seen` (someone else did it),
    /// when another round is under way (callers fail fast instead of queueing behind a slow
    /// one), or when the last round was less than [`RESOLVE_EVERY`] ago.
    async fn resolve(&self, seen: u64, reconnect: bool) -> RedisResult<()> {
        let Ok(mut resolver) = self.shared.resolver.try_lock() else {
            return Ok(());
        };
        if self.link().generation != seen {
            return Ok(());
        }
        if resolver.1.is_some_and(|t| t.elapsed() < RESOLVE_EVERY) {
            return Ok(());
        }
        resolver.1 = Some(Instant::now());
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, resolver.0.async_get_client()).await;
        let client = match found {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.master_unreachable(reconnect, e)),
            Err(_) => {
                let e = RedisError::from((ErrorKind::Io, "sentinel lookup timed out"));
                return Err(self.master_unreachable(reconnect, e));
            }
        };
        let addr = client.get_connection_info().addr().to_string();
        let old = self.link().addr.clone();
        if addr == old && !reconnect {
            return Ok(());
        }
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        let conn = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(c) => c,
            Err(e) => return Err(self.master_unreachable(reconnect, e)),
        };
        if addr != old {
            tracing::warn!(from = %old, to = %addr, master = %self.shared.config.master, "sentinel: following the master");
        }
        let mut l = self.link();
        l.conn = Some(conn);
        l.master = Some(client);
        l.addr = addr;
        l.generation += 1;
        Ok(())
    }

    /// Notes that no master could be reached; a broken link is dropped so the next command
    /// fails fast (and asks again) instead of writing into a dead socket.
    fn master_unreachable(&self, broken: bool, e: RedisError) -> RedisError {
        if broken {
            let mut l = self.link();
            if l.conn.take().is_some() {
                l.generation += 1;
            }
        }
        e
    }
}

/// What [`SentinelConn::send`] sends: one command, or part of a pipeline.
enum Request<'a> {
    One(&'a Cmd),
    Many(&'a Pipeline, usize, usize),
}

/// Re-asks the sentinels every [`CHECK_EVERY`] while any clone of the connection lives.
async fn watch(shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let conn = SentinelConn { shared };
        let (link, generation) = conn.current();
        if let Err(e) = conn.resolve(generation, link.is_none()).await {
            tracing::debug!(error = %e, "sentinel: periodic check failed");
        }
    }
}

fn no_master() -> RedisError {
    RedisError::from((
        ErrorKind::Io,
        "no Redis master reachable through the sentinels yet",
    ))
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut replies = self.send(Request::One(cmd)).await?;
            replies
                .pop()
                .ok_or_else(|| RedisError::from((ErrorKind::Client, "no reply")))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.send(Request::Many(pipeline, offset, count)))
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn unset_means_no_sentinel() {
        assert_eq!(SentinelConfig::from_lookup(lookup(&[])), Ok(None));
    }

    #[test]
    fn parses_addresses_and_defaults() {
        let c =
            SentinelConfig::from_lookup(lookup(&[("MN_REDIS_SENTINELS", "a:1, [::1]:2,b,[::2]")]))
                .expect("valid")
                .expect("set");
        assert_eq!(
            c.sentinels,
            vec![
                ("a".to_string(), 1),
                ("::1".to_string(), 2),
                ("b".to_string(), 26379),
                ("::2".to_string(), 26379)
            ]
        );
        assert_eq!(c.master, "mymaster");
        assert_eq!(
            c.describe(),
            "Redis master \"mymaster\" via sentinels a:1,::1:2,b:26379,::2:26379"
        );
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for bad in ["a:0", "a:x", ":1", "a:1,,b:2", "[::1", "[::1]x"] {
            let e =
                SentinelConfig::from_lookup(lookup(&[("MN_REDIS_SENTINELS", bad)])).expect_err(bad);
            assert!(e.to_string().contains("MN_REDIS_SENTINELS"), "{e}");
        }
        let e = SentinelConfig::from_lookup(lookup(&[
            ("MN_REDIS_SENTINELS", "a:1"),
            ("MN_REDIS_SENTINEL_MASTER", "my master"),
        ]))
        .expect_err("space");
        assert!(e.to_string().contains("MN_REDIS_SENTINEL_MASTER"), "{e}");
    }

    #[test]
    fn passwords_are_not_printed() {
        let c = SentinelConfig::from_lookup(lookup(&[
            ("MN_REDIS_SENTINELS", "a:1"),
            ("MN_REDIS_SENTINEL_PASSWORD", "s3cret-s"),
            ("MN_REDIS_PASSWORD", "s3cret-d"),
        ]))
        .expect("valid")
        .expect("set");
        let shown = format!("{c:?} {}", c.describe());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(c.password.as_deref(), Some("s3cret-d"));
    }

    #[test]
    fn not_master_errors_are_recognised() {
        let e = RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "READONLY",
        ));
        assert!(is_failover_error(&e), "{e:?} {:?}", e.code());
    }
}
