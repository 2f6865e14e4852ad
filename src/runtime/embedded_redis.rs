//! The embedded default: when `MN_REDIS_URL` is unset, run a private `redis-server` child on a
//! free loopback port, with AOF on and `noeviction`, data under `$MN_HOME/redis`.
//!
//! A second mirror-neuron process on the same `MN_HOME` reuses a running embedded server
//! (found through `redis.port` and a PING) instead of starting another one on the same files.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A `redis-server` this process started (stopped on drop) or found running (left alone).
pub struct EmbeddedRedis {
    child: Option<Child>,
    url: String,
    data_dir: PathBuf,
}

/// Why the embedded Redis could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedRedisError {
    #[error(
        "redis-server was not found on PATH ({0}); install it (Debian/Ubuntu: apt-get install redis-server) \
         or point MN_REDIS_URL at a running Redis"
    )]
    NotInstalled(String),
    #[error("could not prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("redis-server did not become ready within {0:?}; see {1}")]
    NotReady(Duration, PathBuf),
}

const READY_TIMEOUT: Duration = Duration::from_secs(15);

impl EmbeddedRedis {
    /// Reuses the embedded server of `home` if it is running, else starts one.
    pub async fn start_or_reuse(home: &Path) -> Result<EmbeddedRedis, EmbeddedRedisError> {
        let data_dir = home.join("redis");
        std::fs::create_dir_all(&data_dir).map_err(|source| EmbeddedRedisError::Io {
            path: data_dir.clone(),
            source,
        })?;
        let port_file = data_dir.join("redis.port");
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
        {
            let url = format!("redis://127.0.0.1:{port}/0");
            if ping(&url).await {
                tracing::debug!(%url, "reusing the embedded redis-server of this MN_HOME");
                return Ok(EmbeddedRedis {
                    child: None,
                    url,
                    data_dir,
                });
            }
        }
        let bin =
            crate::config::var("MN_REDIS_SERVER_BIN").unwrap_or_else(|| "redis-server".into());
        let port = free_port().map_err(|source| EmbeddedRedisError::Io {
            path: data_dir.clone(),
            source,
        })?;
        let log = data_dir.join("redis.log");
        let child = Command::new(&bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(&data_dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args([
                "--maxmemory-policy",
                "noeviction",
                "--save",
                "",
                "--daemonize",
                "no",
            ])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| EmbeddedRedisError::NotInstalled(format!("{bin}: {e}")))?;
        let url = format!("redis://127.0.0.1:{port}/0");
        let mut me = EmbeddedRedis {
            child: Some(child),
            url,
            data_dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ping(&me.url).await {
            if Instant::now() > deadline {
                me.stop().await;
                return Err(EmbeddedRedisError::NotReady(READY_TIMEOUT, log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::write(&port_file, port.to_string()).map_err(|source| EmbeddedRedisError::Io {
            path: port_file,
            source,
        })?;
        tracing::info!(url = %me.url, dir = %me.data_dir.display(), "started embedded redis-server");
        Ok(me)
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when this process started the server (and will stop it).
    pub fn owned(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server if this process started it: SIGTERM lets Redis flush its AOF.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) with a pid we spawned and still own; no memory is touched.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        let _ = std::fs::remove_file(self.data_dir.join("redis.port"));
    }
}

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Some(pid) = child.id()
        {
            // Best effort when `stop` was not awaited (e.g. an early return): ask Redis to shut down.
            // SAFETY: as in `stop`.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let fut = async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), fut).await,
        Ok(Some(_))
    )
}
