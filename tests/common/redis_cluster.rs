//! A Redis Cluster of real `redis-server` processes on loopback: `n` masters, no replicas,
//! the slots split evenly by `redis-cli --cluster create`. The servers die with the test
//! process.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{TestRedis, spawn_redis};

/// A running cluster: its masters, in the order their slot ranges go.
pub struct TestCluster {
    pub masters: Vec<TestRedis>,
}

impl TestCluster {
    /// The seed list as `MN_REDIS_URL` takes it under `MN_REDIS_CLUSTER=1`.
    pub fn seeds(&self) -> String {
        self.masters
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The cluster as the shared test Redis (the first master's port and folder).
    pub fn into_test_redis(self) -> TestRedis {
        let url = self.seeds();
        let first = self
            .masters
            .into_iter()
            .next()
            .expect("a cluster has masters");
        TestRedis { url, ..first }
    }
}

/// Starts `n` cluster-enabled servers with `extra` arguments, joins them into one cluster and
/// waits until every node reports `cluster_state:ok`.
pub fn spawn_cluster(n: usize, extra: &[&str]) -> TestCluster {
    let masters: Vec<TestRedis> = (0..n)
        .map(|_| {
            spawn_redis(
                &[
                    &["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
                    extra,
                ]
                .concat(),
            )
        })
        .collect();
    let addrs: Vec<String> = masters
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.port))
        .collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli must be installed (apt-get install redis-tools)");
    assert!(
        out.status.success(),
        "redis-cli --cluster create: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    for m in &masters {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &m.port.to_string(), "cluster", "info"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cluster node {} never reached cluster_state:ok: {info}",
                m.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    TestCluster { masters }
}
