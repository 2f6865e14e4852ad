//! The runtime on a 3-master Redis Cluster started on loopback by the test: every key of a job
//! in one slot (as the servers themselves compute it), jobs spread over every master, the CLI
//! and `admin` working per shard, two `serve` nodes handing a job over after kill -9, and
//! nodes that disagree on the shard count refused.
//!
//! The whole `examples` and `cluster` suites also run on a cluster with
//! `MN_REDIS_CLUSTER=1 cargo test --test examples --test cluster` (a lane of `.ci/run`).

mod common;
#[allow(dead_code)]
#[path = "common/cluster.rs"]
mod harness;
#[path = "common/history.rs"]
mod history;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use common::redis_cluster::{TestCluster, spawn_cluster};
use harness::{fan_out_bundle, spawn_node_env, wait_for, wait_healthy, wait_terminal};
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::{Projectors, local, wait_projections_caught_up};
use mirror_neuron::store::{Store, Topology, check_durability};
use serde_json::Value;

/// Shard count the tests use (the default of `MN_REDIS_CLUSTER_SHARDS`).
const SHARDS: u16 = 8;

/// The cluster shared by this file's tests (each test has its own namespace).
fn cluster() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| spawn_cluster(3, &["--appendonly", "yes"]))
}

async fn cluster_store(ns: &str) -> Store {
    let topology = Topology::Cluster {
        seeds: cluster()
            .masters
            .iter()
            .map(|m| format!("redis://127.0.0.1:{}", m.port))
            .collect(),
        shards: SHARDS,
    };
    let store = Store::connect_to(&topology, ns).await.expect("connect");
    store.migrate(0).await.expect("migrate");
    store
}

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Runs the CLI against the cluster in namespace `ns`, with `env` on top.
fn cli(ns: &str, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(args)
        .env("MN_REDIS_CLUSTER", "1")
        .env("MN_REDIS_URL", cluster().seeds())
        .env("MN_REDIS_NAMESPACE", ns)
        .env("MN_HOME", home)
        .env("MN_TEMP_DIR", home.join("runs"))
        .envs(env.iter().copied())
        .output()
        .expect("run the CLI")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `CLUSTER KEYSLOT key`, as the server computes it.
fn server_slot(port: u16, key: &str) -> u16 {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "keyslot", key])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a slot number")
}

/// Keys of namespace `ns` held by the master on `port`.
fn keys_on(port: u16, ns: &str) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "--scan",
            "--pattern",
            &format!("{ns}:*"),
        ])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_a_job_shares_a_slot_and_jobs_spread_over_every_master() {
    let ns = common::namespace();
    let store = cluster_store(&ns).await;
    let bundle = load_bundle(&example("research_flow")).expect("bundle");
    let mut jobs = vec![];
    for _ in 0..24 {
        jobs.push(local::submit(&store, &bundle).await.expect("submit"));
    }
    let projectors = Projectors::start(&store, "t", 1);
    wait_projections_caught_up(&store, Duration::from_secs(30))
        .await
        .expect("views caught up");
    projectors.stop().await;

    let port = cluster().masters[0].port;
    let k = store.keys();
    for job in &jobs {
        let shard = k.shard_of(job);
        let slot = server_slot(port, &k.job_events(job));
        for key in [
            k.job_lease_epoch(job),
            k.job_view(job),
            k.job_agents(job),
            k.job_archive(job),
            k.feed(shard),
            k.jobs_registry(shard),
            k.jobs_by_time(shard),
            k.jobs_by_status(shard, JobStatus::Pending),
        ] {
            assert_eq!(server_slot(port, &key), slot, "{key} of {job}");
        }
        let view = store.job_view(job).await.expect("view").expect("a view");
        assert_eq!(view.status, Some(JobStatus::Pending));
    }
    // Every master holds jobs: the shard tags split the slot ranges evenly.
    for m in &cluster().masters {
        let held = keys_on(m.port, &ns)
            .iter()
            .filter(|key| key.ends_with(":events") && key.contains(":job:"))
            .count();
        assert!(held > 0, "master {} holds no job history", m.port);
    }
    let listed = store
        .list_jobs(&mirror_neuron::store::JobListFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), jobs.len(), "the list merges every shard");
    assert_eq!(store.job_ids().await.expect("ids").len(), jobs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_jobs_and_admin_works_on_every_shard() {
    let ns = common::namespace();
    let home = tempfile::tempdir().expect("home");
    let flow = example("research_flow");
    let run = json_of(&cli(
        &ns,
        home.path(),
        &["run", flow.to_str().expect("utf-8 path"), "--json"],
        &[],
    ));
    assert_eq!(run["status"], "completed", "{run}");
    let job = run["job_id"].as_str().expect("job id").to_string();

    let list = json_of(&cli(&ns, home.path(), &["job", "list", "--json"], &[]));
    assert!(list.to_string().contains(&job), "{list}");
    let status = json_of(&cli(&ns, home.path(), &["admin", "status", "--json"], &[]));
    assert_eq!(status["jobs"], 1, "{status}");
    assert_eq!(status["shards"], SHARDS, "{status}");
    assert_eq!(status["projection_backlog"], 0, "{status}");

    let trimmed = json_of(&cli(
        &ns,
        home.path(),
        &["admin", "trim-feed", "--json"],
        &[],
    ));
    let shards = trimmed["shards"].as_array().expect("per shard");
    assert_eq!(shards.len(), SHARDS as usize, "{trimmed}");
    assert!(
        trimmed["trimmed"].as_u64().expect("a count") > 0,
        "{trimmed}"
    );

    let rebuilt = cli(
        &ns,
        home.path(),
        &["admin", "rebuild-projections", "--check"],
        &[],
    );
    assert!(
        rebuilt.status.success(),
        "views rebuilt from history match: {}{}",
        String::from_utf8_lossy(&rebuilt.stdout),
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let inspect = json_of(&cli(
        &ns,
        home.path(),
        &["job", "inspect", &job, "--json"],
        &[],
    ));
    assert_eq!(inspect["status"], "completed", "{inspect}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_disagree_on_the_shard_count_or_the_topology_are_refused() {
    let ns = common::namespace();
    let home = tempfile::tempdir().expect("home");
    json_of(&cli(&ns, home.path(), &["job", "list", "--json"], &[]));
    let other = cli(
        &ns,
        home.path(),
        &["job", "list", "--json"],
        &[("MN_REDIS_CLUSTER_SHARDS", "4")],
    );
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("MN_REDIS_CLUSTER_SHARDS"), "{err}");

    // One node of the cluster given as a plain Redis.
    let first = format!("redis://127.0.0.1:{}", cluster().masters[0].port);
    let plain = cli(
        &ns,
        home.path(),
        &["job", "list", "--json"],
        &[("MN_REDIS_CLUSTER", "0"), ("MN_REDIS_URL", &first)],
    );
    assert!(!plain.status.success());
    let err = String::from_utf8_lossy(&plain.stderr);
    assert!(
        err.contains("is a Redis Cluster node: set MN_REDIS_CLUSTER=1"),
        "{err}"
    );

    let no_url = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(["job", "list"])
        .env("MN_REDIS_CLUSTER", "1")
        .env_remove("MN_REDIS_URL")
        .env("MN_HOME", home.path())
        .output()
        .expect("run the CLI");
    assert!(!no_url.status.success());
    let err = String::from_utf8_lossy(&no_url.stderr);
    assert!(err.contains("MN_REDIS_CLUSTER"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_a_cluster_hand_a_job_over_after_kill_9() {
    let ns = common::namespace();
    let store = cluster_store(&ns).await;
    let dir = tempfile::tempdir().expect("dir");
    let seeds = cluster().seeds();
    let env = [("MN_REDIS_CLUSTER", "1")];
    let mut nodes = [
        spawn_node_env("ca", &ns, &seeds, dir.path(), &env),
        spawn_node_env("cb", &ns, &seeds, dir.path(), &env),
    ];
    wait_healthy(&store, &["ca", "cb"]).await;
    let bundle = load_bundle(&fan_out_bundle(dir.path(), 6, 0.4)).expect("bundle");
    let job = local::submit(&store, &bundle).await.expect("submit");
    let (owner, _epoch) = wait_for(Duration::from_secs(15), "an owner", || async {
        store.job_lease_holder(&job).await.ok().flatten()
    })
    .await;
    let victim = nodes
        .iter()
        .position(|n| owner.starts_with(&n.name))
        .unwrap_or(0);
    nodes[victim].kill9();
    let status = wait_terminal(&store, &job, Duration::from_secs(60)).await;
    let survivor = &nodes[1 - victim];
    assert_eq!(
        status,
        JobStatus::Completed,
        "survivor log:\n{}",
        survivor.log_text()
    );
    history::check_history(&store, &job, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_is_checked_on_every_master() {
    let store = cluster_store(&common::namespace()).await;
    let report = check_durability(&store).await.expect("check");
    assert!(report.problems().is_empty(), "{:?}", report.problems());

    // One master loses its AOF: the check names it, though the others are fine.
    let port = cluster().masters[2].port.to_string();
    let set = |v: &str| {
        let ok = Command::new("redis-cli")
            .args(["-p", &port, "config", "set", "appendonly", v])
            .output()
            .expect("redis-cli");
        assert!(ok.status.success());
    };
    set("no");
    let problems = check_durability(&store).await.expect("check").problems();
    set("yes");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("appendonly=no") && p.contains(&port)),
        "{problems:?}"
    );
}
