//! Migrations, the schema-version guard, durability checks and the embedded Redis.

mod common;

use mirror_neuron::runtime::embedded_redis::EmbeddedRedis;
use mirror_neuron::store::migrate::{SchemaError, latest_version};
use mirror_neuron::store::{Store, check_durability};
use redis::AsyncCommands;

#[tokio::test]
async fn a_migration_runs_exactly_once_even_when_raced() {
    let store = common::connect(&common::redis().url, &common::namespace()).await;
    assert_eq!(store.schema_version().await.unwrap(), 0);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.migrate(42).await.unwrap() }));
    }
    let mut ran = 0;
    for t in tasks {
        ran += t.await.unwrap().iter().filter(|a| a.ran).count();
    }
    assert_eq!(
        ran,
        latest_version() as usize,
        "each migration ran once across all racers"
    );
    assert_eq!(store.schema_version().await.unwrap(), latest_version());
    let again = store.migrate(43).await.unwrap();
    assert!(again.iter().all(|a| !a.ran));
    let applied: std::collections::HashMap<String, i64> = store
        .conn()
        .hgetall(store.keys().migrations_applied())
        .await
        .unwrap();
    assert_eq!(
        applied.get("1"),
        Some(&42),
        "applied-at is from the run that applied it"
    );
    // 0001 created the projection group on the feed.
    let groups: redis::streams::StreamInfoGroupsReply = store
        .conn()
        .xinfo_groups(store.keys().feed(mirror_neuron::store::Shard(0)))
        .await
        .unwrap();
    assert!(groups.groups.iter().any(|g| g.name == "projections"));
}

#[tokio::test]
async fn a_keyspace_newer_than_this_build_is_refused_with_a_clear_error() {
    let store = common::store().await;
    let _: () = store
        .conn()
        .set(store.keys().schema_version(), latest_version() + 1)
        .await
        .unwrap();
    let err = store.check_not_newer().await.unwrap_err();
    assert!(matches!(err, SchemaError::TooNew { .. }));
    let text = err.to_string();
    assert!(
        text.contains(&format!("schema version {}", latest_version() + 1)),
        "{text}"
    );
    assert!(text.contains("upgrade mirror-neuron"), "{text}");
    assert!(store.migrate(0).await.is_err(), "migrate refuses too");
}

#[tokio::test]
async fn unsafe_redis_settings_are_reported() {
    let safe = common::store().await;
    assert!(check_durability(&safe).await.unwrap().problems().is_empty());
    let risky = common::spawn_redis(&["--appendonly", "no", "--maxmemory-policy", "allkeys-lru"]);
    let store = Store::connect(&risky.url, "x").await.unwrap();
    let problems = check_durability(&store).await.unwrap().problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("appendonly=no"));
    assert!(problems[1].contains("allkeys-lru") && problems[1].contains("EVICT"));
}

#[tokio::test]
async fn the_embedded_redis_is_durable_reused_and_stopped() {
    let home = tempfile::tempdir().unwrap();
    let mut first = EmbeddedRedis::start_or_reuse(home.path()).await.unwrap();
    assert!(first.owned());
    let store = Store::connect(first.url(), "emb").await.unwrap();
    let report = check_durability(&store).await.unwrap();
    assert_eq!(report.appendonly.as_deref(), Some("yes"));
    assert_eq!(report.maxmemory_policy.as_deref(), Some("noeviction"));
    let _: () = store.conn().set("emb:k", "v").await.unwrap();

    let second = EmbeddedRedis::start_or_reuse(home.path()).await.unwrap();
    assert!(
        !second.owned(),
        "a running embedded server is reused, not doubled"
    );
    assert_eq!(second.url(), first.url());
    drop(second);
    first.stop().await;
    assert!(!home.path().join("redis/redis.port").exists());

    // Data survives a restart (AOF).
    let mut third = EmbeddedRedis::start_or_reuse(home.path()).await.unwrap();
    let store = Store::connect(third.url(), "emb").await.unwrap();
    let v: Option<String> = store.conn().get("emb:k").await.unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    third.stop().await;
}
