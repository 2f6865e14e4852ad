//! Test harness: a real `redis-server` on a free loopback port, one per test process, and a
//! fresh random namespace per test so tests never see each other's keys.

#![allow(dead_code)]

pub mod exec;
pub mod redis_cluster;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mirror_neuron::store::{Store, Topology};

/// A redis-server owned by the test process.
pub struct TestRedis {
    /// `redis://127.0.0.1:PORT/0`; for a Redis Cluster, its seed nodes, comma-separated, as
    /// `MN_REDIS_URL` takes them with `MN_REDIS_CLUSTER=1`.
    pub url: String,
    pub port: u16,
    pub dir: std::path::PathBuf,
}

/// True when the suite runs on a Redis Cluster (`MN_REDIS_CLUSTER=1`, as users set it; the
/// `serve` and CLI processes tests start inherit it): `redis()` is then a 3-master cluster on
/// loopback, and tests that need one plain server (restarting it, proxying it) skip.
pub fn cluster_mode() -> bool {
    matches!(
        std::env::var("MN_REDIS_CLUSTER").ok().as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

/// Skips the calling test under [`cluster_mode`], saying why. Returns true when skipped.
pub fn skip_on_cluster(why: &str) -> bool {
    if cluster_mode() {
        eprintln!("skipped under MN_REDIS_CLUSTER=1: {why}");
    }
    cluster_mode()
}

/// How tests reach `url`: one server, or the cluster [`redis()`] started.
pub fn topology(url: &str) -> Topology {
    if cluster_mode() && url == redis().url {
        Topology::Cluster {
            seeds: url.split(',').map(|s| format!("redis://{s}")).collect(),
            shards: 8,
        }
    } else {
        Topology::Single { url: url.into() }
    }
}

/// A store on `url` (see [`topology`]) under `ns`, not migrated.
pub async fn connect(url: &str, ns: &str) -> Store {
    Store::connect_to(&topology(url), ns)
        .await
        .unwrap_or_else(|e| panic!("connect to test redis {url}: {e}"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Starts a redis-server with the given extra arguments; it dies with the test process.
pub fn spawn_redis(extra: &[&str]) -> TestRedis {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("mn-test-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create redis dir");
    // The server is spawned from a thread that lives as long as the process, so the
    // parent-death signal fires only when the whole test process exits.
    let (tx, rx) = std::sync::mpsc::channel();
    let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let dir2 = dir.clone();
    std::thread::spawn(move || {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&dir2)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: prctl in the child before exec only sets its parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        tx.send(child.id()).ok();
        // Reaps the server if it ever exits; otherwise blocks until the test process ends.
        let _ = child.wait();
    });
    rx.recv().expect("redis spawned");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    TestRedis {
        url: format!("redis://127.0.0.1:{port}/0"),
        port,
        dir,
    }
}

/// The process-wide test Redis (AOF on, noeviction, like production).
pub fn redis() -> &'static TestRedis {
    static REDIS: OnceLock<TestRedis> = OnceLock::new();
    const PRODUCTION: [&str; 4] = ["--appendonly", "yes", "--maxmemory-policy", "noeviction"];
    REDIS.get_or_init(|| {
        if cluster_mode() {
            redis_cluster::spawn_cluster(3, &PRODUCTION).into_test_redis()
        } else {
            spawn_redis(&PRODUCTION)
        }
    })
}

/// A random namespace for one test.
pub fn namespace() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A store on the test Redis under a fresh namespace, migrated.
pub async fn store() -> Store {
    let store = connect(&redis().url, &namespace()).await;
    store.migrate(0).await.expect("migrate");
    store
}

/// The address a starting `serve` prints (`serving gRPC on ADDR`), read from its log by
/// `read_log` until it appears (30 s at most).
pub fn wait_grpc_target(read_log: impl Fn() -> String) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = read_log();
        if let Some(addr) = log
            .lines()
            .find_map(|l| l.split("serving gRPC on ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
        {
            return addr.to_string();
        }
        assert!(Instant::now() < deadline, "serve did not start: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Host pids of processes whose `argv[0]` is `name`.
pub fn pids_named(name: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let argv0 = cmdline.split(|b| *b == 0).next()?;
            (argv0 == name.as_bytes()).then_some(pid)
        })
        .collect()
}

/// Asserts that a replay's `view` (the job view folded from the history) says what
/// `job inspect --json` (the job record the API builds from the live views) says.
pub fn assert_view_is_record(view: &serde_json::Value, record: &serde_json::Value) {
    for key in [
        "job_id",
        "graph_id",
        "status",
        "last_seq",
        "last_event",
        "result",
        "lease_owner",
        "lease_epoch",
        "submitted_at",
        "updated_at",
    ] {
        assert_eq!(view[key], record[key], "{key}: {view} vs {record}");
    }
    for (view_key, counter) in [
        ("agent_count", "agents"),
        ("messages_sent", "messages_sent"),
        ("steps_finished", "steps_finished"),
        ("steps_failed", "steps_failed"),
        ("dead_letters", "dead_letters"),
    ] {
        assert_eq!(
            view[view_key], record["counters"][counter],
            "{view_key}: {view} vs {record}"
        );
    }
}

/// Dead letters as (agent, reason, message), whether rows of a replay report or of
/// `job dead-letters --json`.
pub fn dead_letter_keys(rows: &serde_json::Value) -> Vec<[serde_json::Value; 3]> {
    rows.as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            [
                r["agent_id"].clone(),
                r["reason"].clone(),
                r["message"].clone(),
            ]
        })
        .collect()
}
