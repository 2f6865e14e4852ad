//! Redis Sentinel failover with real processes: a master, replicas and three sentinels on
//! loopback (`common/sentinel.rs`), `serve` nodes that reach Redis through the sentinels, and
//! `kill -9` of the master while jobs run and while submissions arrive. Numbers are printed
//! (run with `--nocapture` to see them).

mod common;
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;
#[allow(dead_code)]
#[path = "common/sentinel.rs"]
mod sentinels;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::{NodeProc, fan_out_bundle, spawn_node_env, wait_for, wait_healthy, wait_terminal};
use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::{Bundle, load_bundle};
use mirror_neuron::runtime::local;
use mirror_neuron::store::{AppendError, LeaseGrant, ReplicaAck, Store, Topology, seal};
use sentinels::SentinelSet;
use serde_json::json;

/// One test at a time: each runs a whole Redis deployment plus nodes.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a failover may take: down-after (1 s), agreement, promotion, with slack for a
/// loaded machine.
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);

/// A job of two agents and no processes: a router hands one message to an aggregator.
fn tiny_bundle(dir: &Path) -> PathBuf {
    let root = dir.join("tiny");
    std::fs::create_dir_all(root.join("payloads")).unwrap();
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "tiny", "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_after": 1}}
        ],
        "edges": [{"from_node": "start", "to_node": "sink", "message_type": "go"}],
    });
    std::fs::write(root.join("manifest.json"), manifest.to_string()).unwrap();
    root
}

async fn sentinel_store(set: &SentinelSet, ns: &str, ack: Option<ReplicaAck>) -> Store {
    let store = Store::connect_to(&Topology::Sentinel(set.config()), ns)
        .await
        .expect("connect through the sentinels")
        .with_replica_ack(ack);
    store.migrate(0).await.expect("migrate");
    store
}

fn spawn_sentinel_node(name: &str, ns: &str, dir: &Path, env: &[(String, String)]) -> NodeProc {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // An empty MN_REDIS_URL counts as unset: the node finds Redis through the sentinels.
    spawn_node_env(name, ns, "", dir, &env)
}

/// Waits for the job to end; on a timeout, shows the nodes' logs before failing.
async fn finish(store: &Store, job: &str, limit: Duration, nodes: &[NodeProc]) -> JobStatus {
    let wait = tokio::time::timeout(limit, async {
        loop {
            if let Ok(Some(v)) = store.job_view(job).await
                && let Some(s) = v.status.filter(|s| s.is_terminal())
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    match wait.await {
        Ok(status) => status,
        Err(_) => {
            for n in nodes {
                let log = n.log_text();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("--- node {} (last lines)", n.name);
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
            panic!("job {job} did not finish within {limit:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_jobs_complete_across_a_failover_of_the_master() {
    if common::skip_on_cluster("Sentinel and Redis Cluster are alternatives") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let set = SentinelSet::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    let ns = common::namespace();
    let nodes: Vec<NodeProc> = ["a", "b"]
        .iter()
        .map(|n| spawn_sentinel_node(n, &ns, dir.path(), &set.env()))
        .collect();
    let store = sentinel_store(&set, &ns, None).await;
    wait_healthy(&store, &["a", "b"]).await;

    // Before: an ordinary job.
    let bundle = load_bundle(&fan_out_bundle(dir.path(), 2, 0.1)).unwrap();
    let job = local::submit(&store, &bundle).await.unwrap();
    let status = wait_terminal(&store, &job, Duration::from_secs(30)).await;
    assert_eq!(status, JobStatus::Completed);

    // During: jobs whose steps are still running when the master dies.
    let slow = load_bundle(&fan_out_bundle(dir.path(), 4, 0.6)).unwrap();
    let mut jobs = vec![];
    for _ in 0..3 {
        jobs.push(local::submit(&store, &slow).await.unwrap());
    }
    wait_for(Duration::from_secs(20), "progress", || async {
        let v = store.job_view(&jobs[0]).await.ok()??;
        (v.steps_finished >= 1).then_some(())
    })
    .await;
    let mut set = set;
    let old = set.master.port;
    let killed = Instant::now();
    set.master.kill9();
    let promoted = set.wait_failover(old, FAILOVER_LIMIT).await;
    eprintln!(
        "failover: replica on port {} promoted {:?} after kill -9",
        set.replicas[promoted].port,
        killed.elapsed()
    );
    for job in &jobs {
        let status = finish(&store, job, Duration::from_secs(60), &nodes).await;
        assert_eq!(status, JobStatus::Completed, "job {job}");
    }
    eprintln!(
        "all {} running jobs completed {:?} after kill -9",
        jobs.len(),
        killed.elapsed()
    );
    // After: new work runs on the new master.
    let job = local::submit(&store, &bundle).await.unwrap();
    let status = wait_terminal(&store, &job, Duration::from_secs(30)).await;
    assert_eq!(status, JobStatus::Completed);
    drop(nodes);
}

/// What [`submit_through_a_failover`] saw.
struct SubmitReport {
    attempts: usize,
    acknowledged: Vec<String>,
    /// Acknowledged submissions whose job is not on the new master.
    lost: Vec<String>,
    /// Tried, and acknowledged, while replication was cut (before the master was killed).
    attempts_while_cut: usize,
    acknowledged_while_cut: usize,
}

/// Submits jobs in a loop: 50 with replication healthy; then, with replication to both
/// replicas cut, up to 50 more (or 2 s); then `kill -9` of the master (and replication
/// allowed again, so the replica not promoted follows the new one) and more until 50 more
/// are acknowledged by the new master. Counts the acknowledged (the submit call
/// returned OK) and checks each is on the new master.
async fn submit_through_a_failover(
    set: &mut SentinelSet,
    store: &Store,
    bundle: &Bundle,
) -> SubmitReport {
    let mut acknowledged = vec![];
    let mut attempts = 0;
    let submit = async |acknowledged: &mut Vec<String>, attempts: &mut usize| {
        *attempts += 1;
        match tokio::time::timeout(Duration::from_secs(5), local::submit(store, bundle)).await {
            Ok(Ok(job)) => {
                acknowledged.push(job);
                true
            }
            _ => false,
        }
    };
    for _ in 0..50 {
        assert!(
            submit(&mut acknowledged, &mut attempts).await,
            "healthy submissions fail"
        );
    }
    set.cut_replication().await;
    let cut = Instant::now();
    let (acked_before_cut, attempts_before_cut) = (acknowledged.len(), attempts);
    for _ in 0..50 {
        submit(&mut acknowledged, &mut attempts).await;
        if cut.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    let acknowledged_while_cut = acknowledged.len() - acked_before_cut;
    let attempts_while_cut = attempts - attempts_before_cut;
    let old = set.master.port;
    set.master.kill9();
    set.heal_replication();
    let killed = Instant::now();
    let before_kill = acknowledged.len();
    while acknowledged.len() < before_kill + 50 {
        assert!(
            killed.elapsed() < FAILOVER_LIMIT + Duration::from_secs(30),
            "submissions do not succeed after the failover"
        );
        if !submit(&mut acknowledged, &mut attempts).await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    set.wait_failover(old, FAILOVER_LIMIT).await;
    let mut lost = vec![];
    for job in &acknowledged {
        if store.version(job).await.expect("read the new master") == 0 {
            lost.push(job.clone());
        }
    }
    SubmitReport {
        attempts,
        acknowledged,
        lost,
        attempts_while_cut,
        acknowledged_while_cut,
    }
}

/// The must-show: with `MN_REDIS_MIN_REPLICAS_ACK=1`, no acknowledged submission is lost in
/// a failover, even one that promotes a replica that stopped receiving writes, and each
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_min_replicas_ack_every_acknowledged_submission_survives_a_failover() {
    if common::skip_on_cluster("Sentinel and Redis Cluster are alternatives") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let mut set = SentinelSet::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    let ns = common::namespace();
    let mut env = set.env();
    env.push(("MN_REDIS_MIN_REPLICAS_ACK".into(), "1".into()));
    env.push(("MN_REDIS_REPLICA_ACK_TIMEOUT_MS".into(), "300".into()));
    let node = spawn_sentinel_node("a", &ns, dir.path(), &env);
    let ack = ReplicaAck {
        replicas: 1,
        timeout_ms: 300,
    };
    let store = sentinel_store(&set, &ns, Some(ack)).await;
    wait_healthy(&store, &["a"]).await;
    let bundle = load_bundle(&tiny_bundle(dir.path())).unwrap();

    let r = submit_through_a_failover(&mut set, &store, &bundle).await;
    eprintln!(
        "MN_REDIS_MIN_REPLICAS_ACK=1: {} submissions, {} acknowledged ({} of {} while replication was cut), {} of them lost",
        r.attempts,
        r.acknowledged.len(),
        r.acknowledged_while_cut,
        r.attempts_while_cut,
        r.lost.len()
    );
    assert_eq!(
        r.acknowledged_while_cut, 0,
        "a write no replica has must not be acknowledged"
    );
    assert!(r.lost.is_empty(), "acknowledged but lost: {:?}", r.lost);
    let started = Instant::now();
    for job in &r.acknowledged {
        let status = wait_terminal(&store, job, Duration::from_secs(120)).await;
        assert_eq!(status, JobStatus::Completed, "job {job}");
    }
    eprintln!(
        "all {} acknowledged jobs completed ({:?} after the last submission)",
        r.acknowledged.len(),
        started.elapsed()
    );
    drop(node);
}

/// Without `MN_REDIS_MIN_REPLICAS_ACK` the same run loses what the master acknowledged but
/// never replicated: Redis replication is asynchronous. Measured, and checked to be seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_min_replicas_ack_acknowledged_submissions_can_be_lost() {
    if common::skip_on_cluster("Sentinel and Redis Cluster are alternatives") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let mut set = SentinelSet::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    let ns = common::namespace();
    let node = spawn_sentinel_node("a", &ns, dir.path(), &set.env());
    let store = sentinel_store(&set, &ns, None).await;
    wait_healthy(&store, &["a"]).await;
    let bundle = load_bundle(&tiny_bundle(dir.path())).unwrap();

    let r = submit_through_a_failover(&mut set, &store, &bundle).await;
    eprintln!(
        "without MN_REDIS_MIN_REPLICAS_ACK: {} submissions, {} acknowledged ({} of {} while replication was cut), {} of them lost",
        r.attempts,
        r.acknowledged.len(),
        r.acknowledged_while_cut,
        r.attempts_while_cut,
        r.lost.len()
    );
    assert!(r.acknowledged_while_cut > 0);
    assert!(
        !r.lost.is_empty(),
        "the cut should lose what only the dead master had"
    );
    // What survived still runs.
    for job in r.acknowledged.iter().filter(|j| !r.lost.contains(j)) {
        let status = wait_terminal(&store, job, Duration::from_secs(120)).await;
        assert_eq!(status, JobStatus::Completed, "job {job}");
    }
    drop(node);
}

/// A lease granted on the old master is still fenced on the new one: with
/// `MN_REDIS_MIN_REPLICAS_ACK` the epoch survives the failover, a later owner gets a higher
/// epoch, the old owner's renewal answers "lost", and its append is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_from_the_old_master_is_fenced_on_the_new_one() {
    if common::skip_on_cluster("Sentinel and Redis Cluster are alternatives") {
        return;
    }
    let _serial = SERIAL.lock().await;
    let mut set = SentinelSet::start(2).await;
    let ns = common::namespace();
    let ack = Some(ReplicaAck {
        replicas: 1,
        timeout_ms: 1000,
    });
    let a = sentinel_store(&set, &ns, ack).await;
    let b = sentinel_store(&set, &ns, ack).await;
    let job = "lease-job";
    let ttl_ms = 2_000;
    let LeaseGrant::Granted { epoch: first } = a.acquire_job_lease(job, "a", ttl_ms).await.unwrap()
    else {
        panic!("a gets the free lease");
    };
    let events = seal(job, 0, first, 0, None, None, vec![JobEvent::JobResumed]);
    a.append(job, 0, first, &events).await.unwrap();

    let old = set.master.port;
    set.master.kill9();
    set.wait_failover(old, FAILOVER_LIMIT).await;

    // The grant and the append were confirmed by the replica, so the new master has both.
    // (The first command on each store after the failover may fail, retryably: the link it
    // was sent on died with the master. Callers retry; so does the test.)
    let epoch_key = b.keys().job_lease_epoch(job);
    let epoch_now: u64 = wait_for(FAILOVER_LIMIT, "the new master", || async {
        let mut conn = b.conn();
        redis::cmd("GET")
            .arg(&epoch_key)
            .query_async(&mut conn)
            .await
            .ok()
    })
    .await;
    assert_eq!(epoch_now, first, "the epoch survived the failover");
    assert_eq!(b.version(job).await.unwrap(), 1);
    // The owner retrying its append (as after a lost reply) on the new master: recognised,
    // not written twice, and the WAIT that goes with it succeeds.
    let retried = wait_for(Duration::from_secs(10), "a's retry to answer", || async {
        a.append(job, 0, first, &events).await.ok()
    })
    .await;
    assert_eq!(
        retried,
        mirror_neuron::store::AppendOutcome::AlreadyAppended { first: 1, last: 1 }
    );

    // b takes the lease once a's expires, at a higher epoch than a ever held.
    let second = wait_for(Duration::from_secs(15), "b to get the lease", || async {
        match b.acquire_job_lease(job, "b", ttl_ms).await {
            Ok(LeaseGrant::Granted { epoch }) => Some(epoch),
            _ => None,
        }
    })
    .await;
    assert!(second > first, "{second} <= {first}");
    // a, back on the new master, learns it lost the lease and cannot write.
    let renewed = wait_for(Duration::from_secs(10), "a's renewal to answer", || async {
        a.renew_job_lease(job, "a", first, ttl_ms).await.ok()
    })
    .await;
    assert!(!renewed, "a renewal of the old lease must fail");
    let late = seal(job, 1, first, 0, None, None, vec![JobEvent::JobResumed]);
    let refused = wait_for(Duration::from_secs(10), "a's append to answer", || async {
        match a.append(job, 1, first, &late).await {
            Err(AppendError::Store(e)) if e.is_retryable() => None,
            other => Some(other),
        }
    })
    .await;
    match refused {
        Err(AppendError::StaleEpoch { writer, current }) => {
            assert_eq!((writer, current), (first, second));
        }
        other => panic!("a stale owner's append must be fenced, got {other:?}"),
    }
}

/// Settings that cannot be used are refused before anything connects, naming the variable.
#[test]
fn sentinel_settings_are_checked_at_start() {
    let home = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
            .args(["node", "list"])
            .env_remove("MN_REDIS_URL")
            .env("MN_HOME", home.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env:?} must be refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let both = run(&[
        ("MN_REDIS_URL", "redis://127.0.0.1:1/"),
        ("MN_REDIS_SENTINELS", "127.0.0.1:1"),
    ]);
    assert!(
        both.contains("MN_REDIS_URL") && both.contains("MN_REDIS_SENTINELS"),
        "{both}"
    );
    let bad = run(&[("MN_REDIS_SENTINELS", "127.0.0.1:notaport")]);
    assert!(bad.contains("MN_REDIS_SENTINELS"), "{bad}");
    for (name, value) in [
        ("MN_REDIS_MIN_REPLICAS_ACK", "one"),
        ("MN_REDIS_REPLICA_ACK_TIMEOUT_MS", "0"),
    ] {
        let bad = run(&[
            ("MN_REDIS_SENTINELS", "127.0.0.1:1"),
            ("MN_REDIS_MIN_REPLICAS_ACK", "1"),
            (name, value),
        ]);
        assert!(bad.contains(name), "{bad}");
    }
    let secret = run(&[
        ("MN_REDIS_SENTINELS", "127.0.0.1:1"),
        ("MN_REDIS_PASSWORD", "hunter2-secret"),
    ]);
    assert!(secret.contains("127.0.0.1:1"), "{secret}");
    assert!(!secret.contains("hunter2"), "{secret}");
}
