//! Damaged or foreign values under the store's keys give `Error::Corrupt`,
//! never a panic, and the failing operation writes nothing; a listing skips
//! them (and logs them) instead.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use session_core::{Bytes, Error, Overwrite, Record, SessionStore, StoreKey, Timestamp, Update};
use store_redis::RedisStore;
use tracing::instrument::WithSubscriber;

use conformance::fixtures::HOUR;

fn record(key: StoreKey, now: Timestamp, owner: Option<&str>) -> Record {
    Record {
        key,
        version: 1,
        data: Bytes::from_static(b"\x01data"),
        created_at: now,
        expires_at: now + HOUR,
        owner: owner.map(str::to_owned),
    }
}

fn update(expected_version: u64, now: Timestamp) -> Update {
    Update {
        expected_version,
        data: Bytes::from_static(b"\x01new"),
        expires_at: now + HOUR,
        owner: None,
    }
}

fn overwrite(now: Timestamp) -> Overwrite {
    Overwrite {
        data: Bytes::from_static(b"\x01blind"),
        expires_at: now + HOUR,
        owner: None,
    }
}

fn assert_corrupt<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    assert!(
        matches!(result, Err(Error::Corrupt(_))),
        "{what}: expected Error::Corrupt, got {result:?}"
    );
}

/// Every operation on `key` that reads the record gives `Corrupt`.
async fn every_operation_is_corrupt(store: &RedisStore, key: StoreKey, now: Timestamp) {
    let other = conformance::fresh_key();
    assert_corrupt("load", store.load(&key, now).await);
    assert_corrupt("create", store.create(record(key, now, None), now).await);
    assert_corrupt("update", store.update(&key, update(1, now), now).await);
    assert_corrupt("overwrite", store.overwrite(&key, overwrite(now), now).await);
    assert_corrupt("touch", store.touch(&key, now + HOUR * 2, now).await);
    assert_corrupt("rotate from it", store.rotate(&key, &other, None, now).await);
    // Rotating onto it needs a live source first.
    store
        .create(record(other, now, None), now)
        .await
        .expect("create the source");
    assert_corrupt("rotate onto it", store.rotate(&other, &key, None, now).await);
    assert!(store.load(&other, now).await.expect("source untouched").is_some());
}

async fn cleanup(store: &RedisStore) {
    support::delete_prefix(store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holding_a_string_is_corrupt() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let key = conformance::fresh_key();
    let _: () = conn.set(store.session_key(&key), "not a session").await.expect("SET");

    every_operation_is_corrupt(&store, key, now).await;
    // Nothing was written over the foreign value.
    let kept: String = conn.get(store.session_key(&key)).await.expect("GET");
    assert_eq!(kept, "not a session");
    // Ending the session needs no decoding: delete removes it, not counted
    // as a live session.
    assert!(!store.delete(&key, now).await.expect("delete"));
    assert!(!conn.exists::<_, bool>(store.session_key(&key)).await.expect("EXISTS"));
    cleanup(&store).await;
}

/// Writes `bytes` at `offset` of the raw record (the layout of
/// `RedisStore::session_key`: kind at 0, version at 1, created_at at 9,
/// expires_at at 17, op id at 25, owner length at 41, owner from 43).
async fn patch(conn: &mut redis::aio::MultiplexedConnection, key: &str, offset: isize, bytes: &[u8]) {
    let _: () = conn.setrange(key, offset, bytes).await.expect("SETRANGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_records_are_corrupt() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    // (what, offset, bytes), or a truncation to 20 bytes for offset -1.
    let damages: [(&str, isize, &[u8]); 5] = [
        ("a truncated header", -1, b""),
        ("a wrong format byte", 0, b"X"),
        ("version 0", 1, &[0; 8]),
        ("an owner length past the end", 41, &[0xff, 0xff]),
        ("another wrong format byte", 0, b"\x00"),
    ];
    let healthy = conformance::fresh_key();
    store
        .create(record(healthy, now, Some("dora")), now)
        .await
        .expect("create");
    let mut kept = Vec::new();
    for (i, (what, offset, bytes)) in damages.into_iter().enumerate() {
        let key = conformance::fresh_key();
        store.create(record(key, now, Some("dora")), now).await.expect("create");
        let redis_key = store.session_key(&key);
        if offset < 0 {
            let whole: Vec<u8> = conn.get(&redis_key).await.expect("GET");
            let _: () = conn.set(&redis_key, &whole[..20]).await.expect("SET");
        } else {
            patch(&mut conn, &redis_key, offset, bytes).await;
        }
        let before: Vec<u8> = conn.get(&redis_key).await.expect("GET");

        every_operation_is_corrupt(&store, key, now).await;

        let after: Vec<u8> = conn.get(&redis_key).await.expect("GET");
        assert_eq!(before, after, "{what}: a failed operation wrote to the record");
        // The owner's listing skips the damaged session and shows the rest.
        let listed = store
            .list_by_owner("dora", now)
            .await
            .expect("list_by_owner never fails");
        assert_eq!(
            listed.iter().map(|s| s.key).collect::<Vec<_>>(),
            vec![healthy],
            "{what}"
        );

        // A damaged session can still be ended, alone or with its owner's.
        if i % 2 == 0 {
            assert!(!store.delete(&key, now).await.expect("delete"));
            assert!(!conn.exists::<_, bool>(&redis_key).await.expect("EXISTS"));
        } else {
            kept.push(redis_key);
        }
    }
    assert_eq!(store.delete_by_owner("dora", now).await.expect("delete_by_owner"), 1);
    for redis_key in kept {
        assert!(
            !conn.exists::<_, bool>(&redis_key).await.expect("EXISTS"),
            "delete_by_owner left a damaged session"
        );
    }
    assert!(
        !conn
            .exists::<_, bool>(store.owner_index_key("dora"))
            .await
            .expect("EXISTS")
    );
    cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holding_another_type_is_corrupt() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let key = conformance::fresh_key();
    let _: () = conn.hset(store.session_key(&key), "version", "1").await.expect("HSET");
    every_operation_is_corrupt(&store, key, now).await;
    assert!(!store.delete(&key, now).await.expect("delete"));
    assert!(!conn.exists::<_, bool>(store.session_key(&key)).await.expect("EXISTS"));
    cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_index_holding_a_string_is_corrupt_and_nothing_is_written() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let _: () = conn.set(store.owner_index_key("mallory"), "junk").await.expect("SET");

    assert_corrupt("list_by_owner", store.list_by_owner("mallory", now).await);
    assert_corrupt("delete_by_owner", store.delete_by_owner("mallory", now).await);
    let key = conformance::fresh_key();
    assert_corrupt("create", store.create(record(key, now, Some("mallory")), now).await);
    assert_eq!(
        store.load(&key, now).await.expect("load"),
        None,
        "create wrote half a session"
    );

    // A session moving into that owner fails whole, too.
    store.create(record(key, now, None), now).await.expect("create");
    let mut moving = update(1, now);
    moving.owner = Some("mallory".into());
    assert_corrupt("update", store.update(&key, moving, now).await);
    let loaded = store.load(&key, now).await.expect("load").expect("live");
    assert_eq!((loaded.version, loaded.owner), (1, None));
    cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_owner_index_entries_are_skipped() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let key = conformance::fresh_key();
    store.create(record(key, now, Some("eve")), now).await.expect("create");
    let index = store.owner_index_key("eve");
    // An entry pointing nowhere is skipped.
    let far = (now + HOUR).as_millis();
    let _: () = conn.zadd(&index, "not-a-key", far).await.expect("ZADD");
    let listed = store.list_by_owner("eve", now).await.expect("list");
    assert_eq!(listed.iter().map(|s| s.key).collect::<Vec<_>>(), vec![key]);

    // An entry pointing at a session whose key is not a store key is
    // skipped too: it must not hide the owner's real session.
    let _: () = conn.zadd(&index, "zz", far).await.expect("ZADD");
    let fake: Vec<u8> = conn.get(store.session_key(&key)).await.expect("GET");
    let _: () = conn
        .set(format!("{}s:{{zz}}", store.prefix()), fake)
        .await
        .expect("SET");
    let listed = store.list_by_owner("eve", now).await.expect("list");
    assert_eq!(listed.iter().map(|s| s.key).collect::<Vec<_>>(), vec![key]);
    cleanup(&store).await;
}

/// Collects the events logged while a future runs, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    fn events(&self) -> Vec<String> {
        self.0.lock().expect("no test thread panicked holding it").clone()
    }
}

impl tracing::Subscriber for Captured {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut text = Text(event.metadata().level().to_string());
        event.record(&mut text);
        self.0.lock().expect("no test thread panicked holding it").push(text.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_session_is_left_out_of_its_owners_listing_and_logged_by_key_prefix() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let (healthy, damaged, foreign) = (
        conformance::fresh_key(),
        conformance::fresh_key(),
        conformance::fresh_key(),
    );
    for key in [healthy, damaged, foreign] {
        let mut r = record(key, now, Some("gus"));
        r.data = Bytes::from_static(b"\x01secret-payload");
        store.create(r, now).await.expect("create");
    }
    patch(&mut conn, &store.session_key(&damaged), 1, &[0; 8]).await;
    let _: () = conn.del(store.session_key(&foreign)).await.expect("DEL");
    let _: () = conn
        .hset(store.session_key(&foreign), "not", "a string")
        .await
        .expect("HSET");

    let captured = Captured::default();
    let listed = store
        .list_by_owner("gus", now)
        .with_subscriber(captured.clone())
        .await
        .expect("list_by_owner never fails for a damaged record");
    assert_eq!(listed.iter().map(|s| s.key).collect::<Vec<_>>(), vec![healthy]);

    let events = captured.events();
    assert_eq!(events.len(), 2, "one warning per skipped record: {events:?}");
    for key in [damaged, foreign] {
        assert!(
            events
                .iter()
                .any(|e| e.starts_with("WARN") && e.contains(&format!("key={}", key.short()))),
            "no warning names {}: {events:?}",
            key.short()
        );
    }
    for e in &events {
        for key in [healthy, damaged, foreign] {
            assert!(!e.contains(&key.to_hex()), "a warning holds a whole key: {e}");
        }
        assert!(!e.contains("gus"), "a warning names the owner: {e}");
        assert!(!e.contains("secret-payload"), "a warning holds session data: {e}");
    }
    cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_at_u64_max_is_refused_before_anything_is_written() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let snapshot = async |conn: &mut redis::aio::MultiplexedConnection, key: &StoreKey| {
        let value: Vec<u8> = conn.get(store.session_key(key)).await.expect("GET");
        let ttl = support::expiry(conn, &store.session_key(key)).await;
        let mut indexes = Vec::new();
        for owner in ["vera", "walt"] {
            let index: Vec<(String, f64)> = conn
                .zrange_withscores(store.owner_index_key(owner), 0, -1)
                .await
                .expect("ZRANGE");
            indexes.push(index);
        }
        (value, ttl, indexes)
    };
    for owner in [None, Some("vera")] {
        let key = conformance::fresh_key();
        store.create(record(key, now, owner), now).await.expect("create");
        patch(&mut conn, &store.session_key(&key), 1, &u64::MAX.to_be_bytes()).await;
        let before = snapshot(&mut conn, &key).await;

        // Moving to another owner too: the index path must refuse as well.
        let mut u = update(u64::MAX, now);
        u.owner = Some("walt".into());
        assert_corrupt("update of u64::MAX", store.update(&key, u, now).await);
        let mut w = overwrite(now);
        w.owner = Some("walt".into());
        assert_corrupt("overwrite of u64::MAX", store.overwrite(&key, w, now).await);
        assert_corrupt(
            "overwrite of u64::MAX",
            store.overwrite(&key, overwrite(now), now).await,
        );
        assert_eq!(
            snapshot(&mut conn, &key).await,
            before,
            "owner {owner:?}: a refused write changed something"
        );
        // The largest version is a valid record, just not writable.
        let loaded = store.load(&key, now).await.expect("load").expect("live");
        assert_eq!(loaded.version, u64::MAX);
        assert!(matches!(
            store.update(&key, update(1, now), now).await,
            Err(Error::Conflict { current: u64::MAX })
        ));
    }
    cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_beyond_double_precision_stay_exact() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let key = conformance::fresh_key();
    store.create(record(key, now, Some("big")), now).await.expect("create");

    // 2^53 + 1 is not a double: a script doing float arithmetic would say 2^53.
    patch(
        &mut conn,
        &store.session_key(&key),
        1,
        &9_007_199_254_740_993u64.to_be_bytes(),
    )
    .await;
    let mut u = update(9_007_199_254_740_993, now);
    u.owner = Some("big".into());
    assert_eq!(
        store.update(&key, u.clone(), now).await.expect("update"),
        9_007_199_254_740_994
    );
    assert!(matches!(
        store.update(&key, u, now).await,
        Err(Error::Conflict {
            current: 9_007_199_254_740_994
        })
    ));
    // A carry across the two 32-bit halves the scripts use.
    patch(&mut conn, &store.session_key(&key), 1, &0xffff_ffffu64.to_be_bytes()).await;
    assert_eq!(
        store.update(&key, update(0xffff_ffff, now), now).await.expect("update"),
        0x1_0000_0000
    );

    // Expiry at the end of time, and liveness one millisecond before it.
    assert!(store.touch(&key, Timestamp::MAX, now).await.expect("touch"));
    let almost = Timestamp::from_millis(i64::MAX - 1);
    let loaded = store
        .load(&key, almost)
        .await
        .expect("load")
        .expect("live just before MAX");
    assert_eq!(loaded.expires_at, Timestamp::MAX);
    assert_eq!(store.load(&key, Timestamp::MAX).await.expect("load"), None);
    cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_instants_compare_as_numbers() {
    // A century of grace keeps the server from dropping records that expired
    // before 1970 by its clock, so liveness is decided by the scripts alone.
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    let Some(store) = support::shared_store_with(|b| b.ttl_grace(century)).await else {
        return;
    };
    let key = conformance::fresh_key();
    let mut r = record(key, Timestamp::from_millis(-5_000), None);
    r.expires_at = Timestamp::from_millis(-10);
    store.create(r, Timestamp::from_millis(-20)).await.expect("create");
    for (now, live) in [
        (-100, true),
        (-11, true),
        (-10, false),
        (-9, false),
        (0, false),
        (5, false),
    ] {
        let loaded = store.load(&key, Timestamp::from_millis(now)).await.expect("load");
        assert_eq!(loaded.is_some(), live, "at {now}");
    }
    assert!(
        store
            .touch(&key, Timestamp::from_millis(-2), Timestamp::from_millis(-11))
            .await
            .expect("touch")
    );
    let loaded = store
        .load(&key, Timestamp::from_millis(-3))
        .await
        .expect("load")
        .expect("renewed");
    assert_eq!(loaded.expires_at, Timestamp::from_millis(-2));
    assert_eq!(loaded.created_at, Timestamp::from_millis(-5_000));
    // Touch never shortens, whatever the signs.
    assert!(
        store
            .touch(&key, Timestamp::from_millis(-50), Timestamp::from_millis(-60))
            .await
            .expect("touch")
    );
    let loaded = store
        .load(&key, Timestamp::from_millis(-3))
        .await
        .expect("load")
        .expect("live");
    assert_eq!(loaded.expires_at, Timestamp::from_millis(-2));
    cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_configurations_are_refused_before_any_io() {
    // No server is needed: both are refused before connecting.
    for prefix in ["app{", "}app", "{tenant}:"] {
        match RedisStore::builder("redis://127.0.0.1:1")
            .prefix(prefix)
            .connect()
            .await
        {
            Err(Error::Config(e)) => assert_eq!(e.setting(), "prefix", "{e}"),
            other => panic!("prefix {prefix:?} gave {other:?}"),
        }
    }
    match RedisStore::builder("http://user:hunter2@example.com").connect().await {
        Err(Error::Config(e)) => {
            assert_eq!(e.setting(), "url", "{e}");
            assert!(!e.to_string().contains("hunter2"), "the error shows the password: {e}");
        }
        other => panic!("an http URL gave {other:?}"),
    }
}

/// Owners outside the contract (`session_core::validate_owner`: empty, a
/// control character, over 1024 bytes, or too long for the record's 2-byte
/// length) are refused as `InvalidOwner` before anything is sent, whichever
/// operation carries them, as every backend does.
#[tokio::test]
async fn owners_the_contract_refuses_are_refused_before_anything_is_written() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let over_limit = "x".repeat(session_core::MAX_OWNER_LEN + 1);
    let past_u16 = "x".repeat(usize::from(u16::MAX) + 1);
    let anonymous = record(conformance::fresh_key(), now, None);
    store.create(anonymous.clone(), now).await.expect("create");
    for owner in ["", "a\0b", "tab\there", over_limit.as_str(), past_u16.as_str()] {
        let key = conformance::fresh_key();
        let refused = |what: &str, r: Result<(), Error>| {
            assert!(
                matches!(r, Err(Error::InvalidOwner(_))),
                "{what} with an owner of {} bytes: {r:?}",
                owner.len()
            );
        };
        refused("create", store.create(record(key, now, Some(owner)), now).await);
        let mut u = update(1, now);
        u.owner = Some(owner.to_owned());
        refused("update", store.update(&anonymous.key, u, now).await.map(drop));
        let new_key = conformance::fresh_key();
        refused(
            "rotate",
            store.rotate(&anonymous.key, &new_key, Some(owner), now).await.map(drop),
        );
        refused("list_by_owner", store.list_by_owner(owner, now).await.map(drop));
        refused("delete_by_owner", store.delete_by_owner(owner, now).await.map(drop));
        let written: bool = conn.exists(store.session_key(&key)).await.expect("EXISTS");
        assert!(!written, "a refused create wrote its record");
        let moved: bool = conn.exists(store.session_key(&new_key)).await.expect("EXISTS");
        assert!(!moved, "a refused rotate wrote its new key");
    }
    let still = store
        .load(&anonymous.key, now)
        .await
        .expect("load")
        .expect("the session is untouched");
    assert_eq!((still.version, still.owner), (1, None));
    support::delete_prefix(store.prefix()).await;
}
