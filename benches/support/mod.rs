//! Shared by the benchmark binaries: a private redis-server on a free port.

#![allow(dead_code)]

pub mod appends;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A redis-server that is killed when dropped.
pub struct Redis {
    child: Child,
    pub url: String,
    pub port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts redis-server with production-like durability (AOF everysec, noeviction).
pub fn start_redis() -> Redis {
    start_redis_with(&[])
}

/// [`start_redis`] with extra arguments.
pub fn start_redis_with(extra: &[&str]) -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("mn-bench-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
        ])
        .args(extra)
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Redis {
        child,
        url: format!("redis://127.0.0.1:{port}/0"),
        port,
    }
}

/// `n` cluster-enabled servers joined into one Redis Cluster (`redis-cli --cluster create`,
/// no replicas, slots split evenly), same durability as [`start_redis`].
pub fn start_cluster(n: usize) -> Vec<Redis> {
    let nodes: Vec<Redis> = (0..n)
        .map(|_| start_redis_with(&["--cluster-enabled", "yes"]))
        .collect();
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(nodes.iter().map(|r| format!("127.0.0.1:{}", r.port)))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli on PATH");
    assert!(status.success(), "redis-cli --cluster create failed");
    for r in &nodes {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &r.port.to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli on PATH");
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    nodes
}

/// Resident set size now and at its peak, in MiB (Linux /proc).
pub fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
