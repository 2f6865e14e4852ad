//! A Redis Sentinel deployment on loopback for failover tests: a master, replicas
//! (`--replicaof`), and three sentinels, each a real process with its own directory (and
//! config file, which a sentinel rewrites), all killed on drop. The data nodes and the
//! sentinels require passwords (so the credentials settings are exercised); the data nodes'
//! also lets a test cut replication on purpose (see [`SentinelSet::cut_replication`]).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mirror_neuron::store::SentinelConfig;

use crate::common::free_port;

pub const MASTER_NAME: &str = "mymaster";
/// The data nodes' password (`requirepass`, `masterauth`, sentinel `auth-pass`).
pub const PASSWORD: &str = "data-secret";
/// The sentinels' own password (`requirepass`, and `sentinel-pass` between them).
pub const SENTINEL_PASSWORD: &str = "sentinel-secret";
/// How long a sentinel waits before it calls the master down.
pub const DOWN_AFTER_MS: u64 = 1000;

/// One redis-server or sentinel process, killed on drop.
pub struct Proc {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// SIGKILL, as a machine loss would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A synchronous connection to this server (data nodes need the password).
    pub fn connect(&self, password: Option<&str>) -> redis::RedisResult<redis::Connection> {
        let auth = password.map_or(String::new(), |p| format!(":{p}@"));
        let client = redis::Client::open(format!("redis://{auth}127.0.0.1:{}/", self.port))?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(conn)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(program: &str, args: &[String], dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("log")).expect("create log");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log));
    // SAFETY: prctl in the child before exec only sets its parent-death signal, so a test
    // process killed by a timeout does not leave servers behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().unwrap_or_else(|e| {
        panic!("{program} must be installed (apt-get install redis-server redis-sentinel): {e}")
    })
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn data_node(dir: &Path, replica_of: Option<u16>) -> Proc {
    let port = free_port();
    let dir = dir.join(format!("redis-{port}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--requirepass",
        PASSWORD,
        "--masterauth",
        PASSWORD,
        // Redis 7 waits 5 s before a diskless full sync by default.
        "--repl-diskless-sync-delay",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--dir".into());
    args.push(dir.display().to_string());
    if let Some(m) = replica_of {
        args.extend(["--replicaof".into(), "127.0.0.1".into(), m.to_string()]);
    }
    let child = spawn("redis-server", &args, &dir);
    wait_listening(port);
    Proc {
        port,
        dir,
        child: Some(child),
    }
}

fn sentinel(dir: &Path, master_port: u16) -> Proc {
    let port = free_port();
    let dir = dir.join(format!("sentinel-{port}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             requirepass {SENTINEL_PASSWORD}\n\
             sentinel sentinel-pass {SENTINEL_PASSWORD}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel auth-pass {MASTER_NAME} {PASSWORD}\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} 5000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir.display()
        ),
    )
    .expect("write sentinel.conf");
    let conf = conf.display().to_string();
    // Debian ships `redis-sentinel`; `redis-server <conf> --sentinel` is the same program.
    let child = if which("redis-sentinel") {
        spawn("redis-sentinel", &[conf], &dir)
    } else {
        spawn("redis-server", &[conf, "--sentinel".into()], &dir)
    };
    wait_listening(port);
    Proc {
        port,
        dir,
        child: Some(child),
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

/// A master, its replicas and three sentinels.
pub struct SentinelSet {
    pub master: Proc,
    pub replicas: Vec<Proc>,
    pub sentinels: Vec<Proc>,
    _dir: tempfile::TempDir,
}

impl SentinelSet {
    /// Starts everything and waits until every sentinel knows the master, every replica and
    /// the other sentinels (so a failover can be agreed on).
    pub async fn start(replicas: usize) -> SentinelSet {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = data_node(dir.path(), None);
        let replicas: Vec<Proc> = (0..replicas)
            .map(|_| data_node(dir.path(), Some(master.port)))
            .collect();
        let sentinels: Vec<Proc> = (0..3).map(|_| sentinel(dir.path(), master.port)).collect();
        let set = SentinelSet {
            master,
            replicas,
            sentinels,
            _dir: dir,
        };
        set.wait_ready().await;
        set
    }

    /// `MN_REDIS_SENTINELS`.
    pub fn sentinels_var(&self) -> String {
        let list: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        list.join(",")
    }

    /// The environment of a node that reaches Redis through the sentinels.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MN_REDIS_SENTINELS".into(), self.sentinels_var()),
            ("MN_REDIS_SENTINEL_MASTER".into(), MASTER_NAME.into()),
            ("MN_REDIS_PASSWORD".into(), PASSWORD.into()),
            (
                "MN_REDIS_SENTINEL_PASSWORD".into(),
                SENTINEL_PASSWORD.into(),
            ),
        ]
    }

    /// The same, for a store opened in the test process.
    pub fn config(&self) -> SentinelConfig {
        let env = self.env();
        SentinelConfig::from_lookup(|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("valid sentinel settings")
        .expect("sentinels set")
    }

    async fn wait_ready(&self) {
        let want_replicas = self.replicas.len().to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self.sentinels.iter().all(|s| {
                let Ok(mut c) = s.connect(Some(SENTINEL_PASSWORD)) else {
                    return false;
                };
                let master: redis::RedisResult<std::collections::HashMap<String, String>> =
                    redis::cmd("SENTINEL")
                        .arg("MASTER")
                        .arg(MASTER_NAME)
                        .query(&mut c);
                let replicas: redis::RedisResult<Vec<std::collections::HashMap<String, String>>> =
                    redis::cmd("SENTINEL")
                        .arg("REPLICAS")
                        .arg(MASTER_NAME)
                        .query(&mut c);
                match (master, replicas) {
                    (Ok(m), Ok(r)) => {
                        m.get("flags").map(String::as_str) == Some("master")
                            && m.get("num-other-sentinels").map(String::as_str) == Some("2")
                            && m.get("num-slaves") == Some(&want_replicas)
                            && r.iter().all(|r| {
                                r.get("flags").map(String::as_str) == Some("slave")
                                    && r.get("master-link-status").map(String::as_str) == Some("ok")
                            })
                    }
                    _ => false,
                }
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sentinels did not see the master, {} replicas and each other",
                self.replicas.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The master port a majority of the sentinels name right now.
    fn named_master(&self) -> Option<u16> {
        let named: Vec<u16> = self
            .sentinels
            .iter()
            .filter_map(|s| {
                let mut c = s.connect(Some(SENTINEL_PASSWORD)).ok()?;
                let (_, port): (String, u16) = redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(MASTER_NAME)
                    .query(&mut c)
                    .ok()?;
                Some(port)
            })
            .collect();
        named
            .iter()
            .copied()
            .find(|p| named.iter().filter(|q| *q == p).count() * 2 > self.sentinels.len())
    }

    /// Waits until the sentinels have promoted a server other than `old` and it acts as
    /// master; returns the index of that replica in `replicas`.
    pub async fn wait_failover(&self, old: u16, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(port) = self.named_master().filter(|p| *p != old)
                && let Some(i) = self.replicas.iter().position(|r| r.port == port)
                && role(&self.replicas[i]).as_deref() == Some("master")
            {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no failover away from port {old} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Cuts replication from the master to every replica without stopping any of them: the
    /// replicas' `masterauth` is made wrong and their links killed, so they cannot sync again.
    /// (Stopping a replica with SIGSTOP would not do: the kernel keeps receiving into its
    /// socket, and it reads everything once resumed.) Writes the master acknowledges from now
    /// on are on the master alone.
    pub async fn cut_replication(&self) {
        self.set_masterauth("not-the-password");
        let mut mc = self.master.connect(Some(PASSWORD)).expect("connect master");
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("replica")
            .query(&mut mc)
            .expect("client kill");
        let deadline = Instant::now() + Duration::from_secs(5);
        for r in &self.replicas {
            let mut rc = r.connect(Some(PASSWORD)).expect("connect replica");
            loop {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut rc)
                    .expect("info");
                if info.contains("master_link_status:down") {
                    break;
                }
                assert!(Instant::now() < deadline, "replication link stays up");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Gives the replicas the right `masterauth` back (once the master is dead, so that the
    /// replica not promoted can follow the new master).
    pub fn heal_replication(&self) {
        self.set_masterauth(PASSWORD);
    }

    fn set_masterauth(&self, password: &str) {
        for r in &self.replicas {
            let mut rc = r.connect(Some(PASSWORD)).expect("connect replica");
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("masterauth")
                .arg(password)
                .query(&mut rc)
                .expect("config set masterauth");
        }
    }
}

/// `ROLE` of a data node (`master` or `slave`), `None` when it does not answer.
pub fn role(p: &Proc) -> Option<String> {
    let mut c = p.connect(Some(PASSWORD)).ok()?;
    let v: redis::Value = redis::cmd("ROLE").query(&mut c).ok()?;
    match v {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Some(redis::Value::SimpleString(s)) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}
