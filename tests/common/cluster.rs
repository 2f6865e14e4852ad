//! Several `mirror-neuron serve` processes on loopback sharing one Redis, with short leases so
//! failover happens in seconds; plus a TCP proxy that can cut one node off from Redis.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::store::Store;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Lease duration every test node runs with.
pub const LEASE_MS: u64 = 1_500;
/// Renew interval of the job and leader leases, and the heartbeat interval.
pub const RENEW_MS: u64 = 300;

pub struct NodeProc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl NodeProc {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts `serve` as node `name` on `redis_url` in namespace `ns`.
pub fn spawn_node(name: &str, ns: &str, redis_url: &str, dir: &Path) -> NodeProc {
    spawn_node_with(name, ns, redis_url, dir, LEASE_MS, RENEW_MS)
}

/// [`spawn_node`] with other lease timings (every lease `lease_ms`, renewals and heartbeats
/// every `renew_ms`).
pub fn spawn_node_with(
    name: &str,
    ns: &str,
    redis_url: &str,
    dir: &Path,
    lease_ms: u64,
    renew_ms: u64,
) -> NodeProc {
    spawn(name, ns, redis_url, dir, lease_ms, renew_ms, &[])
}

/// [`spawn_node`] with extra environment (`MN_NODE_GPU`, `MN_NODE_CAPABILITIES`, ...).
pub fn spawn_node_env(
    name: &str,
    ns: &str,
    redis_url: &str,
    dir: &Path,
    env: &[(&str, &str)],
) -> NodeProc {
    spawn(name, ns, redis_url, dir, LEASE_MS, RENEW_MS, env)
}

fn spawn(
    name: &str,
    ns: &str,
    redis_url: &str,
    dir: &Path,
    lease_ms: u64,
    renew_ms: u64,
    extra: &[(&str, &str)],
) -> NodeProc {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let ms = |v: u64| v.to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .arg("serve")
        .env("MN_GRPC_PORT", "0")
        .env("MN_REDIS_URL", redis_url)
        .env("MN_REDIS_NAMESPACE", ns)
        .env("MN_NODE_NAME", name)
        .env("MN_HOME", dir.join(format!("{name}-home")))
        .env("MN_TEMP_DIR", dir.join(format!("{name}-runs")))
        .env("MN_JOB_LEASE_DURATION_MS", ms(lease_ms))
        .env("MN_JOB_LEASE_RENEW_INTERVAL_MS", ms(renew_ms))
        .env("MN_NODE_LEASE_DURATION_MS", ms(lease_ms))
        .env("MN_NODE_HEARTBEAT_INTERVAL_MS", ms(renew_ms))
        .env("MN_LEADER_LEASE_DURATION_MS", ms(lease_ms))
        .env("MN_LEADER_LEASE_RENEW_INTERVAL_MS", ms(renew_ms))
        .env("MN_LEADER_SWEEP_INTERVAL_MS", "200")
        .env("MN_CLUSTER_HEALTH_STABLE_MS", "0")
        .env("MN_LOG_LEVEL", "info")
        .envs(extra.iter().copied())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap();
    NodeProc {
        name: name.into(),
        child,
        log,
    }
}

/// Waits until every named node is joined, alive and schedulable.
pub async fn wait_healthy(store: &Store, names: &[&str]) {
    wait_for(Duration::from_secs(30), "nodes to join", || async {
        let views = store.node_views().await.ok()?;
        names
            .iter()
            .all(|n| {
                views
                    .iter()
                    .any(|v| v.name == *n && v.scheduling_eligible())
            })
            .then_some(())
    })
    .await
}

/// Waits until the job's view shows a terminal status, and returns it.
pub async fn wait_terminal(store: &Store, job: &str, limit: Duration) -> JobStatus {
    wait_for(limit, "the job to finish", || async {
        let v = store.job_view(job).await.ok()??;
        v.status.filter(|s| s.is_terminal())
    })
    .await
}

/// Polls `f` every 50 ms until it returns `Some`, or panics with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bundle fanning one message out to `n` executors (worker `i` sleeps `sleep_s * (i + 1)`,
/// so results arrive one by one) that report their own name, collected by an aggregator that
/// completes the job after `n` results.
pub fn fan_out_bundle(dir: &Path, n: usize, sleep_s: f64) -> PathBuf {
    let root = dir.join(format!("fanout-{n}-{sleep_s}"));
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let mut nodes =
        vec![json!({"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}})];
    let mut edges = vec![];
    for i in 0..n {
        let id = format!("w{i}");
        nodes.push(json!({"node_id": id, "agent_type": "executor",
            "config": {"command": format!("sleep {:.2}; echo", sleep_s * (i + 1) as f64) + &format!(" '{{\"worker\": \"{id}\"}}'"),
                       "output_message_type": "done", "idempotent": true}}));
        edges.push(json!({"from_node": "start", "to_node": id, "message_type": "go"}));
        edges.push(json!({"from_node": id, "to_node": "sink", "message_type": "done"}));
    }
    nodes.push(
        json!({"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": n}}),
    );
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "fanout", "entrypoints": ["start"],
        "nodes": nodes, "edges": edges,
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

/// A loopback TCP proxy in front of Redis that can be cut (every connection dropped and new
/// ones closed at once) and healed.
pub struct Proxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (cut2, conns2) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Proxy {
            addr,
            cut,
            conns,
            accept,
        }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
