//! What only a cluster store does, against a real Redis Cluster: owned
//! sessions in their owner's shard, the refusal of a misplaced one, a rotate
//! between shards in three steps, and every key of a shard in one slot.

use std::time::Duration;

use conformance::StoreFactory;
use session_core::{Error, Record, SessionStore, StoreKey, Timestamp, Update, mint_id};
use store_redis::RedisStore;
use store_redis::testing::{RedisClusterFactory, cluster_nodes};

async fn store() -> Option<(RedisClusterFactory, RedisStore)> {
    let factory = RedisClusterFactory::local();
    match factory.make().await {
        Ok(s) => Some((factory, s)),
        Err(e) if !conformance::services_required() => {
            conformance::announce_skip("redis-cluster", &e);
            None
        }
        Err(e) => panic!("the test cluster is required: {e}"),
    }
}

fn factory_nodes() -> Vec<String> {
    cluster_nodes().expect("the cluster the store reached")
}

fn record(key: StoreKey, owner: Option<&str>, now: Timestamp) -> Record {
    Record {
        key,
        version: 1,
        data: b"hello".to_vec().into(),
        created_at: now,
        expires_at: now + Duration::from_secs(600),
        owner: owner.map(str::to_owned),
    }
}

fn key_for(store: &RedisStore, owner: Option<&str>) -> StoreKey {
    mint_id(store, owner.and_then(|o| store.shard_of_owner(o)))
        .expect("an id")
        .store_key()
}

/// Two owners whose sessions live in different shards.
fn owners_in_two_shards(store: &RedisStore) -> (String, String) {
    let a = "ada".to_owned();
    let b = (0..)
        .map(|i| format!("bob-{i}"))
        .find(|b| store.shard_of_owner(b) != store.shard_of_owner(&a))
        .expect("some owner is elsewhere");
    (a, b)
}

async fn slot(store: &RedisStore, name: &str) -> i64 {
    let _ = store;
    let nodes = factory_nodes();
    let mut c = redis::Client::open(nodes[0].as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("a node");
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(name)
        .query_async(&mut c)
        .await
        .expect("CLUSTER KEYSLOT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owners_sessions_index_and_receipt_share_one_slot() {
    let Some((factory, store)) = store().await else { return };
    let now = Timestamp::now();
    let key = key_for(&store, Some("ada"));
    store.create(record(key, Some("ada"), now), now).await.expect("create");
    let expected = slot(&store, &store.session_key(&key)).await;
    assert_eq!(slot(&store, &store.owner_index_key("ada")).await, expected);
    assert_eq!(store.list_by_owner("ada", now).await.expect("list").len(), 1);
    assert_eq!(store.delete_by_owner("ada", now).await.expect("delete"), 1);
    assert!(store.load(&key, now).await.expect("load").is_none());
    factory.dispose(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_outside_its_owners_shard_is_refused_and_nothing_is_written() {
    let Some((factory, store)) = store().await else { return };
    let now = Timestamp::now();
    let (a, b) = owners_in_two_shards(&store);
    let key = key_for(&store, Some(&a));
    assert!(matches!(
        store.create(record(key, Some(&b), now), now).await,
        Err(Error::WrongShard { .. })
    ));
    assert!(store.load(&key, now).await.expect("load").is_none());
    store.create(record(key, Some(&a), now), now).await.expect("create");
    let update = Update {
        expected_version: 1,
        data: b"x".to_vec().into(),
        expires_at: now + Duration::from_secs(60),
        owner: Some(b.clone()),
    };
    assert!(matches!(
        store.update(&key, update, now).await,
        Err(Error::WrongShard { .. })
    ));
    let loaded = store.load(&key, now).await.expect("load").expect("live");
    assert_eq!((loaded.version, loaded.owner.as_deref()), (1, Some(a.as_str())));
    factory.dispose(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotate_between_shards_moves_everything_and_leaves_a_mark() {
    let Some((factory, store)) = store().await else { return };
    let now = Timestamp::now();
    let (a, b) = owners_in_two_shards(&store);
    let old = key_for(&store, Some(&a));
    store.create(record(old, Some(&a), now), now).await.expect("create");
    let new = key_for(&store, Some(&b));
    let moved = store.rotate(&old, &new, Some(&b), now).await.expect("rotate");
    assert_eq!((moved.version, moved.owner.as_deref()), (1, Some(b.as_str())));
    let loaded = store.load(&new, now).await.expect("load").expect("live");
    assert_eq!(loaded.data, moved.data);
    assert_eq!(
        (loaded.created_at, loaded.expires_at),
        (now, now + Duration::from_secs(600))
    );
    assert!(store.load(&old, now).await.expect("load").is_none());
    assert!(store.was_rotated(&old, now).await.expect("was_rotated"));
    assert!(store.list_by_owner(&a, now).await.expect("list").is_empty());
    assert_eq!(store.list_by_owner(&b, now).await.expect("list").len(), 1);
    // The mark no longer carries the record (retired).
    let nodes = factory_nodes();
    let mut c = redis::cluster::ClusterClient::new(nodes)
        .expect("nodes")
        .get_async_connection()
        .await
        .expect("cluster");
    let len: usize = redis::cmd("STRLEN")
        .arg(store.session_key(&old))
        .query_async(&mut c)
        .await
        .expect("STRLEN");
    assert_eq!(len, 43, "the mark is a header alone after the rotate");
    // An anonymous rotate between shards, and onto a taken key.
    let anon = key_for(&store, None);
    store.create(record(anon, None, now), now).await.expect("create");
    let taken = key_for(&store, Some(&b));
    store.create(record(taken, Some(&b), now), now).await.expect("create");
    if store.shard_of_key(&anon) != store.shard_of_key(&taken) {
        assert!(matches!(
            store.rotate(&anon, &taken, Some(&b), now).await,
            Err(Error::AlreadyExists)
        ));
        let back = store.load(&anon, now).await.expect("load").expect("put back");
        assert_eq!((back.version, back.owner), (1, None));
    }
    factory.dispose(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_sent_twice_with_one_op_id_reports_its_first_outcome() {
    let Some((factory, store)) = store().await else { return };
    let now = Timestamp::now();
    let (a, b) = owners_in_two_shards(&store);
    let key = key_for(&store, Some(&a));
    let op = |n: u8| [n; 16];
    for _ in 0..2 {
        store
            .create_with_op_id(record(key, Some(&a), now), now, op(1))
            .await
            .expect("create, and its resend");
    }
    let update = Update {
        expected_version: 1,
        data: b"two".to_vec().into(),
        expires_at: now + Duration::from_secs(600),
        owner: Some(a.clone()),
    };
    for _ in 0..2 {
        let v = store
            .update_with_op_id(&key, update.clone(), now, op(2))
            .await
            .expect("update, and its resend");
        assert_eq!(v, 2);
    }
    // A rotate into another shard (seal, publish, retire), sent twice.
    let new = key_for(&store, Some(&b));
    let first = store
        .rotate_with_op_id(&key, &new, Some(&b), now, op(3))
        .await
        .expect("rotate");
    let again = store
        .rotate_with_op_id(&key, &new, Some(&b), now, op(3))
        .await
        .expect("the resent rotate reports the rotation");
    assert_eq!(first, again);
    for _ in 0..2 {
        assert!(store.delete_with_op_id(&new, now, op(4)).await.expect("delete"));
    }
    let other = key_for(&store, Some(&b));
    store.create(record(other, Some(&b), now), now).await.expect("create");
    for _ in 0..2 {
        assert_eq!(
            store
                .delete_by_owner_with_op_id(&b, now, op(5))
                .await
                .expect("delete_by_owner"),
            1
        );
    }
    factory.dispose(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_seeds_are_clear_errors_before_any_operation() {
    let refused = |r: Result<RedisStore, Error>| match r {
        Err(Error::Config(e)) => e.to_string(),
        other => panic!("expected a configuration error, got {other:?}"),
    };
    assert!(refused(RedisStore::cluster_builder(Vec::<String>::new()).connect().await).contains("nodes"));
    assert!(refused(RedisStore::cluster_builder(["not a url"]).connect().await).contains("nodes"));
    assert!(
        refused(
            RedisStore::cluster_builder(["redis://127.0.0.1:6379"])
                .prefix("{x}")
                .connect()
                .await
        )
        .contains("prefix")
    );
    // Nothing listens on port 1: a retryable backend error, at once.
    match RedisStore::cluster_builder(["redis://127.0.0.1:1"]).connect().await {
        Err(Error::Backend(e)) => assert!(e.is_retryable(), "{e}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    // A server that is not a cluster member: a permanent error that says so.
    let url = store_redis::testing::redis_url();
    if redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .is_ok()
    {
        match RedisStore::cluster_builder([url]).connect().await {
            Err(Error::Backend(e)) => {
                assert!(!e.is_retryable(), "{e}");
                assert!(e.to_string().contains("cluster support disabled"), "{e}");
            }
            other => panic!("expected a backend error, got {other:?}"),
        }
    }
}
