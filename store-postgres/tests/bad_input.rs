//! Bad input, from the table or from the caller: damaged rows give
//! `Corrupt` where a record is read and are skipped (with a warning) or
//! removed where sessions are listed or ended; a version that cannot grow
//! is refused; owners the contract refuses are refused before any SQL, and
//! the longest owners it accepts work everywhere.

mod support;

use conformance::fixtures::HOUR;
use session_core::{Error, SessionStore, Timestamp, Update};
use store_postgres::PostgresStore;

#[tokio::test]
async fn damaged_rows_give_corrupt_never_a_panic() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    let now = Timestamp::now();

    // A version below 1: load and update refuse to interpret it.
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");
    support::damage(&store, &r.key, "version = -3").await;
    assert!(matches!(store.load(&r.key, now).await, Err(Error::Corrupt(_))));
    let u = Update {
        expected_version: 1,
        data: r.data.clone(),
        expires_at: r.expires_at,
        owner: None,
    };
    assert!(matches!(store.update(&r.key, u, now).await, Err(Error::Corrupt(_))));
    // The damaged session can still be ended.
    assert!(store.delete(&r.key, now).await.expect("delete"));

    // A key that is not 32 bytes, found through the owner index: listing
    // leaves it out, ending the owner's sessions removes it.
    let r = support::record(now, Some("eve"));
    store.create(r.clone(), now).await.expect("create");
    support::damage(&store, &r.key, "key = '\\x0102'::bytea").await;
    assert_eq!(store.list_by_owner("eve", now).await.expect("list"), Vec::new());
    assert_eq!(store.delete_by_owner("eve", now).await.expect("delete_by_owner"), 1);

    store.drop_table().await.expect("drop");
}

/// A row whose `expires_at` cannot be read (NULL, possible only once
/// someone dropped the NOT NULL constraint) is not live for anything, and
/// every way of ending sessions removes it: `delete` gives `Ok(false)`
/// (not `Corrupt`), `create` over it replaces it, `delete_by_owner` ends it
/// without counting it, and the sweep removes it without counting it.
#[tokio::test]
async fn rows_whose_expiry_cannot_be_read_are_ended_and_count_as_not_live() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    let t = store.table().to_owned();
    support::execute(format!(
        "ALTER TABLE {t} ALTER COLUMN expires_at DROP NOT NULL, ALTER COLUMN created_at DROP NOT NULL"
    ))
    .await;
    let now = Timestamp::now();
    let insert = |key: session_core::StoreKey, created_at: &str, expires_at: &str, owner: &str| {
        format!(
            "INSERT INTO {t} (key, version, data, created_at, expires_at, owner) \
             VALUES ('\\x{}'::bytea, 1, '\\x0100'::bytea, {created_at}, {expires_at}, {owner});",
            key.to_hex()
        )
    };
    let live = (now + HOUR).as_millis().to_string();
    let (deleted, replaced, swept) = (
        conformance::fresh_key(),
        conformance::fresh_key(),
        conformance::fresh_key(),
    );
    let (nia_unreadable, nia_no_created_at) = (conformance::fresh_key(), conformance::fresh_key());
    let nia_healthy = support::record(now, Some("nia"));
    store.create(nia_healthy.clone(), now).await.expect("create");
    support::execute(
        [
            insert(deleted, "0", "NULL", "NULL"),
            insert(replaced, "0", "NULL", "NULL"),
            insert(swept, "0", "NULL", "NULL"),
            insert(nia_unreadable, "0", "NULL", "'nia'"),
            insert(nia_no_created_at, "NULL", &live, "'nia'"),
        ]
        .concat(),
    )
    .await;
    let count = |key: session_core::StoreKey| {
        let sql = format!("SELECT count(*) FROM {t} WHERE key = '\\x{}'::bytea", key.to_hex());
        async move {
            let mut conn = support::raw_connection().await.expect("raw connection");
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .expect("count")
        }
    };

    assert!(
        !store
            .delete(&deleted, now)
            .await
            .expect("delete of an unreadable expiry")
    );
    assert_eq!(count(deleted).await, 0, "the damaged row is removed");

    assert!(store.load(&replaced, now).await.expect("load").is_none());
    let mut fresh = support::record(now, None);
    fresh.key = replaced;
    store
        .create(fresh.clone(), now)
        .await
        .expect("create over an unreadable expiry");
    assert_eq!(store.load(&replaced, now).await.expect("load"), Some(fresh));

    // The healthy session and the one whose expiry is readable (live) count;
    // the unreadable one is ended without counting.
    assert_eq!(store.delete_by_owner("nia", now).await.expect("delete_by_owner"), 2);
    for key in [nia_unreadable, nia_no_created_at, nia_healthy.key] {
        assert_eq!(count(key).await, 0, "a session of the owner survived");
    }

    assert_eq!(store.delete_expired(now, 10).await.expect("delete_expired"), 0);
    assert_eq!(count(swept).await, 0, "the sweep leaves no unreadable row behind");
    store.drop_table().await.expect("drop");
}

/// A warning subscriber for one test: the `list_by_owner` warnings and
/// their fields, rendered.
#[derive(Clone, Default)]
struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        if fields.0.contains("list_by_owner") {
            self.0.lock().expect("not poisoned").push(fields.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// `list_by_owner` skips, with a warning naming the row by its key prefix
/// (never data), every row of the owner it cannot read, and lists the rest:
/// a key that is not 32 bytes, an unreadable `created_at`, a column of the
/// wrong type. One damaged row must not hide a user's other devices.
#[tokio::test]
async fn list_by_owner_skips_the_rows_it_cannot_read_and_warns() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    let t = store.table().to_owned();
    let now = Timestamp::now();
    let mut healthy = Vec::new();
    for _ in 0..2 {
        let r = support::record(now, Some("omar"));
        store.create(r.clone(), now).await.expect("create");
        healthy.push(r.key);
    }
    let (short_key, no_created_at) = (support::record(now, Some("omar")), support::record(now, Some("omar")));
    for r in [&short_key, &no_created_at] {
        store.create(r.clone(), now).await.expect("create");
    }
    support::execute(format!(
        "ALTER TABLE {t} ALTER COLUMN created_at DROP NOT NULL; \
         UPDATE {t} SET key = '\\x0102'::bytea WHERE key = '\\x{}'::bytea; \
         UPDATE {t} SET created_at = NULL WHERE key = '\\x{}'::bytea",
        short_key.key.to_hex(),
        no_created_at.key.to_hex()
    ))
    .await;

    let warnings = Warnings::default();
    let listed = {
        let _guard = tracing::subscriber::set_default(warnings.clone());
        store.list_by_owner("omar", now).await.expect("list_by_owner")
    };
    let mut keys: Vec<_> = listed.iter().map(|s| s.key).collect();
    keys.sort();
    healthy.sort();
    assert_eq!(keys, healthy, "the readable sessions, and only them");
    let warnings = warnings.0.lock().expect("not poisoned").clone();
    assert_eq!(warnings.len(), 2, "one warning per skipped row: {warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("(not a key: 2 bytes)")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&no_created_at.key.short()) && w.contains("created_at")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().all(|w| !w.contains(&no_created_at.key.to_hex())),
        "a warning holds a whole key: {warnings:?}"
    );

    // A column of the wrong type: every row is unreadable, none is listed,
    // nothing fails. (A store whose connections prepared the statement
    // before the change gets "cached plan must not change result type"
    // from PostgreSQL instead: a fresh store here.)
    support::execute(format!("ALTER TABLE {t} ALTER COLUMN created_at TYPE numeric")).await;
    let (schema, table) = t.split_once('.').expect("schema.table");
    let fresh = PostgresStore::builder()
        .url(support::database_url())
        .schema(schema)
        .table(table)
        .build()
        .expect("the same table, new connections");
    assert_eq!(
        fresh.list_by_owner("omar", now).await.expect("list_by_owner"),
        Vec::new()
    );
    assert_eq!(fresh.delete_by_owner("omar", now).await.expect("delete_by_owner"), 4);
    store.drop_table().await.expect("drop");
}

/// A damaged record can hold the largest `bigint` as its version: an
/// `update` or `overwrite` would have to move it past what the column
/// holds, so they refuse with `Corrupt` and write nothing.
#[tokio::test]
async fn a_version_that_cannot_grow_is_refused_as_corrupt_and_nothing_is_written() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    let now = Timestamp::now();
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");
    support::damage(&store, &r.key, "version = 9223372036854775807").await;
    let top = i64::MAX.unsigned_abs();
    let write = |expected_version| Update {
        expected_version,
        data: session_core::Bytes::from_static(b"new"),
        expires_at: r.expires_at + HOUR,
        owner: Some("pia".into()),
    };
    assert!(matches!(
        store.update(&r.key, write(top), now).await,
        Err(Error::Corrupt(_))
    ));
    assert!(matches!(
        store.update(&r.key, write(1), now).await,
        Err(Error::Conflict { current }) if current == top
    ));
    let blind = session_core::Overwrite {
        data: session_core::Bytes::from_static(b"new"),
        expires_at: r.expires_at + HOUR,
        owner: Some("pia".into()),
    };
    match store.overwrite(&r.key, blind, now).await {
        Err(Error::Corrupt(msg)) => assert!(msg.contains("9223372036854775807"), "{msg}"),
        other => panic!("an overwrite past the largest version gave {other:?}"),
    }
    let stored = store.load(&r.key, now).await.expect("load").expect("live");
    assert_eq!(
        (stored.version, &stored.data[..], stored.expires_at, stored.owner),
        (top, &r.data[..], r.expires_at, None),
        "nothing was written"
    );
    store.drop_table().await.expect("drop");
}

/// Owners the contract refuses (see `session_core::validate_owner`) are
/// refused by the store itself with `Error::InvalidOwner` saying what is
/// wrong, before any SQL: never a PostgreSQL error about encodings or index
/// row sizes. Nothing is written.
#[tokio::test]
async fn owners_the_contract_refuses_are_refused_by_the_store_before_any_sql() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    let now = Timestamp::now();
    let r = support::record(now, Some("kept"));
    store.create(r.clone(), now).await.expect("create");
    let too_long = "x".repeat(session_core::MAX_OWNER_LEN + 1);
    let far_too_long = "x".repeat(3000);
    for (bad, problem) in [
        ("a\0b", "control character U+0000"),
        ("a\nb", "control character U+000A"),
        ("", "empty"),
        (too_long.as_str(), "1025 bytes"),
        (far_too_long.as_str(), "3000 bytes"),
    ] {
        let check = |what: &str, result: Result<(), Error>| match result {
            Err(Error::InvalidOwner(reason)) => assert!(reason.contains(problem), "{what}: {reason}"),
            other => panic!("{what} with owner {:?}… gave {other:?}", &bad[..bad.len().min(8)]),
        };
        let mut created = support::record(now, Some(bad));
        created.owner = Some(bad.to_owned());
        check("create", store.create(created.clone(), now).await);
        assert!(store.load(&created.key, now).await.expect("load").is_none());
        let u = Update {
            expected_version: 1,
            data: r.data.clone(),
            expires_at: r.expires_at,
            owner: Some(bad.to_owned()),
        };
        check("update", store.update(&r.key, u, now).await.map(drop));
        let w = session_core::Overwrite {
            data: r.data.clone(),
            expires_at: r.expires_at,
            owner: Some(bad.to_owned()),
        };
        check("overwrite", store.overwrite(&r.key, w, now).await.map(drop));
        let new_key = conformance::fresh_key();
        check("rotate", store.rotate(&r.key, &new_key, Some(bad), now).await.map(drop));
        check("list_by_owner", store.list_by_owner(bad, now).await.map(drop));
        check("delete_by_owner", store.delete_by_owner(bad, now).await.map(drop));
    }
    assert_eq!(
        store.load(&r.key, now).await.expect("load"),
        Some(r),
        "nothing was written"
    );
    store.drop_table().await.expect("drop");
}

/// Every owner the contract accepts works for every operation, the longest
/// ones (1024 bytes of one-, two-, three- and four-byte characters, and two
/// that differ only in their last character) included: they fit the owner
/// index, and are kept apart.
#[tokio::test]
async fn the_longest_owners_work_for_every_operation() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    let now = Timestamp::now();
    let owners = [
        "o".repeat(1024),
        "é".repeat(512),
        format!("{}a", "€".repeat(341)),
        "🦀".repeat(256),
        format!("{}🦁", "🦀".repeat(255)),
    ];
    for o in &owners {
        assert_eq!(o.len(), session_core::MAX_OWNER_LEN, "{o}");
        session_core::validate_owner(o).expect("an accepted owner");
    }
    let mut keys = Vec::new();
    for (i, o) in owners.iter().enumerate() {
        let next = &owners[(i + 1) % owners.len()];
        let r = support::record(now, Some(o));
        store.create(r.clone(), now).await.expect("create");
        let u = Update {
            expected_version: 1,
            data: r.data.clone(),
            expires_at: r.expires_at,
            owner: Some(next.clone()),
        };
        assert_eq!(store.update(&r.key, u, now).await.expect("update"), 2);
        let w = session_core::Overwrite {
            data: r.data.clone(),
            expires_at: r.expires_at,
            owner: Some(o.clone()),
        };
        assert_eq!(store.overwrite(&r.key, w, now).await.expect("overwrite"), 3);
        let new_key = conformance::fresh_key();
        let moved = store
            .rotate(&r.key, &new_key, Some(o), now)
            .await
            .expect("rotate setting the owner");
        assert_eq!(moved.owner.as_deref(), Some(o.as_str()));
        keys.push(new_key);
    }
    for (o, key) in owners.iter().zip(&keys) {
        let listed = store.list_by_owner(o, now).await.expect("list_by_owner");
        assert_eq!(listed.iter().map(|s| s.key).collect::<Vec<_>>(), vec![*key], "{o}");
    }
    for (o, key) in owners.iter().zip(&keys) {
        assert_eq!(store.delete_by_owner(o, now).await.expect("delete_by_owner"), 1, "{o}");
        assert!(store.load(key, now).await.expect("load").is_none());
    }
    store.drop_table().await.expect("drop");
}
