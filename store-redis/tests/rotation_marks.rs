//! What `rotate` leaves under the old key, as Redis holds it: a string of
//! its own kind (`M`), its end in the `expires_at` field of the header, with
//! the old record's server TTL; and how every operation treats it, damaged
//! marks and deletion receipts included.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use session_core::{Bytes, Error, Overwrite, ROTATION_MARK_TTL, Record, SessionStore, StoreKey, Timestamp, Update};
use store_redis::RedisStore;

use conformance::fixtures::HOUR;
const MS: Duration = Duration::from_millis(1);

fn record(key: StoreKey, now: Timestamp, ttl: Duration, owner: Option<&str>) -> Record {
    Record {
        key,
        version: 1,
        data: Bytes::from_static(b"\x01data"),
        created_at: now,
        expires_at: now + ttl,
        owner: owner.map(str::to_owned),
    }
}

async fn raw(conn: &mut MultiplexedConnection, store: &RedisStore, key: &StoreKey) -> Vec<u8> {
    conn.get(store.session_key(key)).await.expect("GET")
}

/// The end of the mark in `raw`, or `None` if it is not a mark.
fn mark_until(raw: &[u8]) -> Option<i64> {
    (raw.len() == 43 && raw[0] == b'M').then(|| i64::from_be_bytes(raw[17..25].try_into().expect("8 bytes")))
}

async fn server_ttl(conn: &mut MultiplexedConnection, store: &RedisStore, key: &StoreKey) -> i64 {
    support::expiry(conn, &store.session_key(key)).await
}

/// Every operation but `was_rotated` finds no session under `key`, and
/// writes nothing there.
async fn absent_for_every_operation(store: &RedisStore, key: StoreKey, now: Timestamp) {
    assert_eq!(store.load(&key, now).await.expect("load"), None);
    let update = Update {
        expected_version: 1,
        data: Bytes::from_static(b"x"),
        expires_at: now + HOUR,
        owner: None,
    };
    assert!(matches!(store.update(&key, update, now).await, Err(Error::NotFound)));
    let write = Overwrite {
        data: Bytes::from_static(b"x"),
        expires_at: now + HOUR,
        owner: Some("olga".into()),
    };
    assert!(matches!(store.overwrite(&key, write, now).await, Err(Error::NotFound)));
    assert!(!store.touch(&key, now + HOUR * 9, now).await.expect("touch"));
    let elsewhere = conformance::fresh_key();
    assert!(matches!(
        store.rotate(&key, &elsewhere, Some("olga"), now).await,
        Err(Error::NotFound)
    ));
    assert_eq!(store.load(&elsewhere, now).await.expect("load"), None);
    assert!(store.list_by_owner("olga", now).await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_is_a_string_of_its_own_kind_with_the_old_records_server_ttl() {
    let grace = Duration::from_secs(60);
    let Some(store) = support::shared_store_with(|b| b.ttl_grace(grace)).await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let (old, new) = (conformance::fresh_key(), conformance::fresh_key());
    store
        .create(record(old, now, HOUR, Some("mona")), now)
        .await
        .expect("create");
    let old_ttl = server_ttl(&mut conn, &store, &old).await;
    assert_eq!(old_ttl, (now + HOUR + grace).as_millis());

    let moved = store.rotate(&old, &new, None, now).await.expect("rotate");
    assert_eq!(store.load(&new, now).await.expect("load"), Some(moved));
    // The mark: a header only, in force for ROTATION_MARK_TTL by the
    // caller's clock, kept by the server as long as the old record would
    // have been.
    let until = (now + ROTATION_MARK_TTL).as_millis();
    assert_eq!(mark_until(&raw(&mut conn, &store, &old).await), Some(until));
    assert_eq!(server_ttl(&mut conn, &store, &old).await, old_ttl);
    assert_eq!(server_ttl(&mut conn, &store, &new).await, old_ttl);
    // Never in an owner index.
    let members: Vec<String> = conn.zrange(store.owner_index_key("mona"), 0, -1).await.expect("ZRANGE");
    assert_eq!(members, vec![new.to_hex()]);
    assert_eq!(store.delete_by_owner("mona", now).await.expect("delete_by_owner"), 1);
    assert!(store.was_rotated(&old, now).await.expect("was_rotated"));

    // A session closer to its end than ROTATION_MARK_TTL: the mark ends with it.
    let (short, target) = (conformance::fresh_key(), conformance::fresh_key());
    store.create(record(short, now, HOUR, None), now).await.expect("create");
    let late = now + HOUR - Duration::from_secs(10);
    store.rotate(&short, &target, None, late).await.expect("rotate");
    assert_eq!(
        mark_until(&raw(&mut conn, &store, &short).await),
        Some((now + HOUR).as_millis())
    );
    assert!(store.was_rotated(&short, now + HOUR - MS).await.expect("was_rotated"));
    assert!(!store.was_rotated(&short, now + HOUR).await.expect("was_rotated"));

    // delete removes a mark physically, and reports no session.
    assert!(!store.delete(&old, now).await.expect("delete"));
    assert!(!conn.exists::<_, bool>(store.session_key(&old)).await.expect("EXISTS"));
    support::delete_prefix(store.prefix()).await;
}

/// The conformance suite's clock starts at the real time and many cases run
/// long after at that same instant; a caller's clock may also simply run
/// behind the server's. A mark whose server TTL were its own end would
/// vanish while still in force by such a clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_stays_in_force_by_a_callers_clock_that_runs_behind_the_servers() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    // Two hours behind: the mark's end is long past by the server's clock,
    // the session itself still an hour from its end.
    let behind = Timestamp::now() - HOUR * 2;
    let (old, new) = (conformance::fresh_key(), conformance::fresh_key());
    store
        .create(record(old, behind, HOUR * 3, None), behind)
        .await
        .expect("create");
    store.rotate(&old, &new, None, behind).await.expect("rotate");

    assert!(conn.exists::<_, bool>(store.session_key(&old)).await.expect("EXISTS"));
    assert!(store.was_rotated(&old, behind).await.expect("was_rotated"));
    assert!(
        store
            .was_rotated(&old, behind + ROTATION_MARK_TTL - MS)
            .await
            .expect("was_rotated")
    );
    assert!(
        !store
            .was_rotated(&old, behind + ROTATION_MARK_TTL)
            .await
            .expect("was_rotated")
    );
    absent_for_every_operation(&store, old, behind).await;
    support::delete_prefix(store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_rotate_replace_a_mark_whole() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let (a, b, c, d) = (
        conformance::fresh_key(),
        conformance::fresh_key(),
        conformance::fresh_key(),
        conformance::fresh_key(),
    );
    store.create(record(a, now, HOUR, None), now).await.expect("create");
    store.create(record(c, now, HOUR, None), now).await.expect("create");
    store.rotate(&a, &b, None, now).await.expect("rotate");
    store.rotate(&c, &d, None, now).await.expect("rotate");

    // create over the mark under `a`: a session record.
    let fresh = record(a, now, HOUR * 2, Some("nina"));
    store.create(fresh.clone(), now).await.expect("create over a mark");
    assert!(!store.was_rotated(&a, now).await.expect("was_rotated"));
    assert_eq!(store.load(&a, now).await.expect("load"), Some(fresh.clone()));
    assert_eq!(raw(&mut conn, &store, &a).await[0], b'S');
    assert_eq!(server_ttl(&mut conn, &store, &a).await, fresh.expires_at.as_millis());

    // rotate onto the mark under `c`.
    let moved = store.rotate(&a, &c, None, now).await.expect("rotate onto a mark");
    assert!(!store.was_rotated(&c, now).await.expect("was_rotated"));
    assert_eq!(store.load(&c, now).await.expect("load"), Some(moved));
    assert_eq!(raw(&mut conn, &store, &c).await[0], b'S');
    assert_eq!(store.list_by_owner("nina", now).await.expect("list").len(), 1);
    support::delete_prefix(store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_marks_foreign_types_and_deletion_receipts() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let (a, b) = (conformance::fresh_key(), conformance::fresh_key());
    store.create(record(a, now, HOUR, None), now).await.expect("create");
    store.rotate(&a, &b, None, now).await.expect("rotate");

    // A truncated mark cannot be told from a truncated record: it is a
    // damaged record for every operation, and delete still removes it.
    let mark = raw(&mut conn, &store, &a).await;
    let _: () = conn.set(store.session_key(&a), &mark[..30]).await.expect("SET");
    assert!(matches!(store.was_rotated(&a, now).await, Err(Error::Corrupt(_))));
    assert!(matches!(store.load(&a, now).await, Err(Error::Corrupt(_))));
    assert!(!store.delete(&a, now).await.expect("delete"));
    assert!(!conn.exists::<_, bool>(store.session_key(&a)).await.expect("EXISTS"));

    // Another type under the key is corrupt for was_rotated too.
    let foreign = conformance::fresh_key();
    let _: () = conn
        .hset(store.session_key(&foreign), "rotated_until", "1")
        .await
        .expect("HSET");
    assert!(matches!(store.was_rotated(&foreign, now).await, Err(Error::Corrupt(_))));

    // A session is no mark; a deletion receipt is neither a session nor a
    // mark, and create replaces it.
    assert!(!store.was_rotated(&b, now).await.expect("was_rotated"));
    assert!(store.delete(&b, now).await.expect("delete"));
    assert_eq!(raw(&mut conn, &store, &b).await[0], b'D');
    assert!(!store.was_rotated(&b, now).await.expect("was_rotated"));
    absent_for_every_operation(&store, b, now).await;
    store
        .create(record(b, now, HOUR, None), now)
        .await
        .expect("create over a receipt");
    assert!(store.load(&b, now).await.expect("load").is_some());
    support::delete_prefix(store.prefix()).await;
}
