//! Round trips on a cluster, counted by the masters: every operation is one
//! command (one FCALL; `load` one GET, `was_rotated` one GETRANGE), except
//! the three the crate docs name: `list_by_owner` and `delete_by_owner` of
//! an owner with sessions (two FCALLs: the first learns the keys to
//! declare), and a rotate into another shard (three: seal, publish,
//! retire).
//!
//! Runs on a private cluster (no replicas), so no other test's traffic is
//! counted. `INFO commandstats` counts the commands a function runs too, so
//! the GET and GETRANGE counts are checked only for operations that run no
//! function.

use std::collections::BTreeMap;
use std::time::Duration;

use redis_harness::LocalCluster;
use session_core::{Record, SessionStore, StoreKey, Timestamp, Update, mint_id};
use store_redis::RedisStore;

/// Calls per command, summed over the masters.
fn calls(cluster: &LocalCluster) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for m in cluster.masters().expect("masters") {
        let stats = cluster.cli(m.port, &["INFO", "commandstats"]).expect("INFO");
        for line in stats.lines() {
            let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(":calls=")) else {
                continue;
            };
            let n: u64 = rest.split(',').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            *out.entry(name.to_owned()).or_default() += n;
        }
    }
    out
}

fn diff(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, name: &str) -> u64 {
    after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0)
}

fn record(key: StoreKey, owner: Option<&str>, now: Timestamp) -> Record {
    Record {
        key,
        version: 1,
        data: b"data".to_vec().into(),
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
        owner: owner.map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_one_command_but_the_three_the_docs_name() {
    let cluster = match tokio::task::block_in_place(|| LocalCluster::start(3, 0)) {
        Ok(c) => c,
        Err(e) if !conformance::services_required() => {
            conformance::announce_skip("redis-cluster round trips", &e);
            return;
        }
        Err(e) => panic!("the round-trip test needs a local Redis Cluster: {e}"),
    };
    let store = RedisStore::cluster_builder(cluster.seeds())
        .prefix("rt:")
        .connect()
        .await
        .expect("connect");
    let now = Timestamp::now();
    let ada = "ada";
    let bob = (0..)
        .map(|i| format!("bob-{i}"))
        .find(|b| store.shard_of_owner(b) != store.shard_of_owner(ada))
        .expect("an owner in another shard");
    let mint = |owner: Option<&str>| {
        mint_id(&store, owner.and_then(|o| store.shard_of_owner(o)))
            .expect("id")
            .store_key()
    };
    let key = mint(Some(ada));
    let same_shard = mint(Some(ada));
    let other_shard = mint(Some(&bob));
    // Load the library first: the first FCALL of a fresh cluster also loads
    // it. (A create without owner is a plain SET, which loads nothing.)
    store
        .create(record(mint(Some("warm")), Some("warm"), now), now)
        .await
        .expect("warm up");

    let expect = |what: &str, fcalls: u64, reads: Option<(&str, u64)>, before: BTreeMap<String, u64>| {
        let after = calls(&cluster);
        assert_eq!(diff(&before, &after, "fcall"), fcalls, "{what}: FCALLs");
        if let Some((cmd, n)) = reads {
            assert_eq!(diff(&before, &after, cmd), n, "{what}: {cmd}s");
        }
        eprintln!("cluster round trips: {what}: {fcalls} FCALL(s)");
    };

    let b = calls(&cluster);
    store.create(record(key, Some(ada), now), now).await.expect("create");
    expect("create", 1, None, b);
    let b = calls(&cluster);
    store.create(record(mint(None), None, now), now).await.expect("create");
    expect("create without owner", 0, Some(("set", 1)), b);
    let b = calls(&cluster);
    store.load(&key, now).await.expect("load").expect("live");
    expect("load", 0, Some(("get", 1)), b);
    let b = calls(&cluster);
    let update = Update {
        expected_version: 1,
        data: b"next".to_vec().into(),
        expires_at: now + Duration::from_secs(3600),
        owner: Some(ada.to_owned()),
    };
    store.update(&key, update, now).await.expect("update");
    expect("update", 1, None, b);
    let b = calls(&cluster);
    store
        .touch(&key, now + Duration::from_secs(7200), now)
        .await
        .expect("touch");
    expect("touch", 1, None, b);
    let b = calls(&cluster);
    store.rotate(&key, &same_shard, None, now).await.expect("rotate");
    expect("rotate within a shard", 1, None, b);
    let b = calls(&cluster);
    store.was_rotated(&key, now).await.expect("was_rotated");
    expect("was_rotated", 0, Some(("getrange", 1)), b);
    let b = calls(&cluster);
    assert_eq!(store.list_by_owner(ada, now).await.expect("list").len(), 1);
    expect("list_by_owner", 2, None, b);
    let b = calls(&cluster);
    assert!(store.list_by_owner("nobody", now).await.expect("list").is_empty());
    expect("list_by_owner of an owner without sessions", 1, None, b);
    let b = calls(&cluster);
    store
        .rotate(&same_shard, &other_shard, Some(&bob), now)
        .await
        .expect("login");
    expect("rotate into another shard", 3, None, b);
    let b = calls(&cluster);
    assert!(store.delete(&other_shard, now).await.expect("delete"));
    expect("delete", 1, None, b);
    let third = mint(Some(ada));
    store.create(record(third, Some(ada), now), now).await.expect("create");
    let b = calls(&cluster);
    assert_eq!(store.delete_by_owner(ada, now).await.expect("delete_by_owner"), 1);
    expect("delete_by_owner", 2, None, b);
}
