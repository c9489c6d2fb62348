//! The owner index never grows without bound: it holds one entry per session
//! the server still has, and expires with its longest-lived session. It
//! follows every write, a rotation that changes the owner included, and
//! every owner the contract accepts gets an index of its own.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use session_core::{Bytes, Record, SessionStore, StoreKey, Timestamp, Update};

use conformance::fixtures::HOUR;

fn record(key: StoreKey, created_at: Timestamp, expires_at: Timestamp, owner: &str) -> Record {
    Record {
        key,
        version: 1,
        data: Bytes::from_static(b"\x01data"),
        created_at,
        expires_at,
        owner: Some(owner.to_owned()),
    }
}

/// The keys `list_by_owner` returns, sorted.
async fn listed(store: &store_redis::RedisStore, owner: &str, now: Timestamp) -> Vec<StoreKey> {
    let mut keys: Vec<StoreKey> = store
        .list_by_owner(owner, now)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.key)
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_index_drops_entries_the_server_has_expired() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let index = store.owner_index_key("carol");
    let real_now = Timestamp::now();

    let fresh = conformance::fresh_key();
    let expires_at = real_now + HOUR;
    store
        .create(record(fresh, real_now, expires_at, "carol"), real_now)
        .await
        .expect("create");

    // A caller whose clock is three hours behind writes a session that is
    // live by its clock and long expired by the server's: the server drops
    // the record at once, and the write trims its index entry.
    let late_clock = real_now - HOUR * 3;
    let stale = conformance::fresh_key();
    store
        .create(record(stale, late_clock, real_now - HOUR * 2, "carol"), late_clock)
        .await
        .expect("create");
    let members: Vec<String> = conn.zrange(&index, 0, -1).await.expect("ZRANGE");
    assert_eq!(members, vec![fresh.to_hex()]);

    // The index expires with its longest-lived session.
    assert_eq!(support::expiry(&mut conn, &index).await, expires_at.as_millis());
    support::delete_prefix(store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_index_follows_every_write() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let dave = store.owner_index_key("dave");
    let erin = store.owner_index_key("erin");
    let (a, b, c) = (
        conformance::fresh_key(),
        conformance::fresh_key(),
        conformance::fresh_key(),
    );
    store
        .create(record(a, now, now + HOUR, "dave"), now)
        .await
        .expect("create");
    store
        .create(record(b, now, now + HOUR * 5, "dave"), now)
        .await
        .expect("create");
    assert_eq!(support::expiry(&mut conn, &dave).await, (now + HOUR * 5).as_millis());

    // Deleting the longest-lived session shortens the index's TTL.
    assert!(store.delete(&b, now).await.expect("delete"));
    assert_eq!(support::expiry(&mut conn, &dave).await, (now + HOUR).as_millis());

    // Touch moves the score and the TTL.
    assert!(store.touch(&a, now + HOUR * 2, now).await.expect("touch"));
    assert_eq!(
        conn.zscore::<_, _, f64>(&dave, a.to_hex()).await.expect("ZSCORE") as i64,
        (now + HOUR * 2).as_millis()
    );
    assert_eq!(support::expiry(&mut conn, &dave).await, (now + HOUR * 2).as_millis());

    // Rotate renames the entry.
    store.rotate(&a, &c, None, now).await.expect("rotate");
    let members: Vec<String> = conn.zrange(&dave, 0, -1).await.expect("ZRANGE");
    assert_eq!(members, vec![c.to_hex()]);
    assert_eq!(support::expiry(&mut conn, &dave).await, (now + HOUR * 2).as_millis());

    // Moving the last session to another owner removes the old index.
    let moved = Update {
        expected_version: 1,
        data: Bytes::new(),
        expires_at: now + HOUR,
        owner: Some("erin".into()),
    };
    store.update(&c, moved, now).await.expect("update");
    assert!(!conn.exists::<_, bool>(&dave).await.expect("EXISTS"));
    assert_eq!(store.list_by_owner("erin", now).await.expect("list").len(), 1);
    assert!(store.list_by_owner("dave", now).await.expect("list").is_empty());

    // Ending all of erin's sessions removes her index.
    assert_eq!(store.delete_by_owner("erin", now).await.expect("delete_by_owner"), 1);
    assert!(!conn.exists::<_, bool>(&erin).await.expect("EXISTS"));
    support::delete_prefix(store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_carries_a_server_ttl_at_its_expiry() {
    let Some(store) = support::shared_store_with(|b| b.ttl_grace(Duration::from_secs(60))).await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let (a, b) = (conformance::fresh_key(), conformance::fresh_key());
    store
        .create(record(a, now, now + HOUR, "frank"), now)
        .await
        .expect("create");
    let ttl_of = async |conn: &mut redis::aio::MultiplexedConnection, key: &StoreKey| {
        support::expiry(conn, &store.session_key(key)).await
    };
    let grace = 60_000;
    assert_eq!(ttl_of(&mut conn, &a).await, (now + HOUR).as_millis() + grace);
    // Touch never shortens the server TTL either.
    assert!(store.touch(&a, now + HOUR / 2, now).await.expect("touch"));
    assert_eq!(ttl_of(&mut conn, &a).await, (now + HOUR).as_millis() + grace);
    assert!(store.touch(&a, now + HOUR * 2, now).await.expect("touch"));
    assert_eq!(ttl_of(&mut conn, &a).await, (now + HOUR * 2).as_millis() + grace);
    // Rotate carries it over exactly.
    store.rotate(&a, &b, None, now).await.expect("rotate");
    assert_eq!(ttl_of(&mut conn, &b).await, (now + HOUR * 2).as_millis() + grace);
    support::delete_prefix(store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_with_set_owner_moves_the_entry_to_the_new_owners_index() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let (gina, hank, ivan) = (
        store.owner_index_key("gina"),
        store.owner_index_key("hank"),
        store.owner_index_key("ivan"),
    );
    let keys: Vec<StoreKey> = (0..6).map(|_| conformance::fresh_key()).collect();
    let [long, short, logged_in, anonymous, adopted, stale] = keys[..] else {
        unreachable!("six keys")
    };
    store
        .create(record(long, now, now + HOUR * 3, "gina"), now)
        .await
        .expect("create");
    store
        .create(record(short, now, now + HOUR, "gina"), now)
        .await
        .expect("create");
    let members = async |conn: &mut redis::aio::MultiplexedConnection, index: &str| -> Vec<(String, f64)> {
        conn.zrange_withscores(index, 0, -1).await.expect("ZRANGE")
    };

    // A user switch: gina's longest session becomes hank's, in one step.
    let moved = store
        .rotate(&long, &logged_in, Some("hank"), now)
        .await
        .expect("rotate");
    assert_eq!(moved.owner.as_deref(), Some("hank"));
    let score = |t: Timestamp| t.as_millis() as f64;
    assert_eq!(
        members(&mut conn, &gina).await,
        vec![(short.to_hex(), score(now + HOUR))]
    );
    assert_eq!(support::expiry(&mut conn, &gina).await, (now + HOUR).as_millis());
    assert_eq!(
        members(&mut conn, &hank).await,
        vec![(logged_in.to_hex(), score(now + HOUR * 3))]
    );
    assert_eq!(support::expiry(&mut conn, &hank).await, (now + HOUR * 3).as_millis());
    let stored = store.load(&logged_in, now).await.expect("load").expect("live");
    assert_eq!(stored.owner.as_deref(), Some("hank"));

    // A login from an anonymous session: only the new index changes.
    let mut r = record(anonymous, now, now + HOUR * 2, "x");
    r.owner = None;
    store.create(r, now).await.expect("create");
    store
        .rotate(&anonymous, &adopted, Some("hank"), now)
        .await
        .expect("rotate");
    assert_eq!(members(&mut conn, &hank).await.len(), 2);
    assert_eq!(support::expiry(&mut conn, &hank).await, (now + HOUR * 3).as_millis());

    // Onto an expired record of a third owner: its entry leaves that index.
    store
        .create(record(stale, now, now + HOUR, "ivan"), now)
        .await
        .expect("create");
    let later = now + HOUR;
    store
        .rotate(&adopted, &stale, Some("gina"), later)
        .await
        .expect("rotate");
    assert!(!conn.exists::<_, bool>(&ivan).await.expect("EXISTS"));
    assert_eq!(listed(&store, "gina", later).await, vec![stale]);
    assert_eq!(members(&mut conn, &hank).await.len(), 1);

    // Setting the owner a session already has is a plain rotation.
    let again = conformance::fresh_key();
    store.rotate(&stale, &again, Some("gina"), later).await.expect("rotate");
    let gina_members: Vec<String> = conn.zrange(&gina, 0, -1).await.expect("ZRANGE");
    assert!(gina_members.contains(&again.to_hex()) && !gina_members.contains(&stale.to_hex()));
    support::delete_prefix(store.prefix()).await;
}

/// Owners are part of key names here (`<prefix>owner:{<owner>}`): every
/// owner the contract accepts, braces and the longest ones included, gets
/// an index of its own on one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_with_braces_and_of_the_longest_length_get_indexes_of_their_own() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let longest = "o".repeat(session_core::MAX_OWNER_LEN);
    let longest_but_last = format!("{}p", "o".repeat(session_core::MAX_OWNER_LEN - 1));
    let braces = format!("{{{}}}", "b".repeat(session_core::MAX_OWNER_LEN - 2));
    let owners = [
        "a",
        "{a}",
        "}a{",
        "{",
        "}",
        "{}",
        "a}b",
        "owner:{a}",
        "}{",
        longest.as_str(),
        longest_but_last.as_str(),
        braces.as_str(),
    ];
    for o in owners {
        session_core::validate_owner(o).expect("an owner the contract accepts");
    }
    let mut index_keys: Vec<String> = owners.iter().map(|o| store.owner_index_key(o)).collect();
    index_keys.sort();
    index_keys.dedup();
    assert_eq!(index_keys.len(), owners.len(), "two owners share an index key");

    let mut keys = Vec::new();
    for o in owners {
        let key = conformance::fresh_key();
        store
            .create(record(key, now, now + HOUR, o), now)
            .await
            .expect("create");
        keys.push(key);
    }
    for (o, key) in owners.iter().zip(&keys) {
        let members: Vec<String> = conn.zrange(store.owner_index_key(o), 0, -1).await.expect("ZRANGE");
        assert_eq!(members, vec![key.to_hex()], "owner {o:?}");
        assert_eq!(listed(&store, o, now).await, vec![*key], "owner {o:?}");
    }

    // Moving between brace owners by update and by rotate.
    let moved = Update {
        expected_version: 1,
        data: Bytes::new(),
        expires_at: now + HOUR,
        owner: Some("}a{".into()),
    };
    store.update(&keys[1], moved, now).await.expect("update");
    let rotated = conformance::fresh_key();
    store
        .rotate(&keys[2], &rotated, Some("{a}"), now)
        .await
        .expect("rotate");
    assert_eq!(listed(&store, "{a}", now).await, vec![rotated]);
    assert_eq!(listed(&store, "}a{", now).await, vec![keys[1]]);
    assert_eq!(listed(&store, "a", now).await, vec![keys[0]]);

    // Deleting by the longest owner leaves the one that differs in its last
    // byte; deleting by `{` leaves `{}` and the long braced owner.
    assert_eq!(store.delete_by_owner(&longest, now).await.expect("delete_by_owner"), 1);
    assert_eq!(store.delete_by_owner("{", now).await.expect("delete_by_owner"), 1);
    assert!(listed(&store, &longest, now).await.is_empty());
    assert_eq!(listed(&store, &longest_but_last, now).await, vec![keys[10]]);
    assert_eq!(listed(&store, "{}", now).await, vec![keys[5]]);
    assert_eq!(listed(&store, &braces, now).await, vec![keys[11]]);
    support::delete_prefix(store.prefix()).await;
}
