//! What this backend promises beyond the shared suite: configuration is
//! validated before any connection, migrations are idempotent, safe to race
//! and upgrade a table in place, damaged rows give `Corrupt` where they are
//! read and are skipped or removed where sessions are listed or ended, a
//! statement stuck on a lock fails with a clear statement-timeout error and
//! an administrator's cancel with another, owners the contract refuses are
//! refused before any SQL, and an update that loses a race after its snapshot
//! still reports the version it lost to.

mod support;

use std::error::Error as _;
use std::time::Duration;

use session_core::{Error, Record, SessionStore, Timestamp, Update};
use sqlx::{Connection as _, Row as _};
use store_postgres::{PostgresError, PostgresStore};

fn postgres_error(e: &Error) -> Option<&PostgresError> {
    match e {
        Error::Backend(b) => b.source().and_then(|s| s.downcast_ref::<PostgresError>()),
        _ => None,
    }
}

/// The setting a configuration error names.
fn refused_setting(e: &Error) -> Option<&str> {
    match e {
        Error::Config(c) => Some(c.setting()),
        _ => None,
    }
}

#[tokio::test]
async fn invalid_table_and_schema_names_are_refused_at_configuration() {
    // Port 1 on loopback: were a connection attempted, the error would be a
    // connection error, not a configuration error.
    let unreachable = "postgres://nobody@127.0.0.1:1/none";
    for (schema, table, refused) in [
        ("public", "Sessions", "table"),
        ("public", "sessions\"; DROP TABLE users; --", "table"),
        ("public", "1sessions", "table"),
        ("public", "", "table"),
        ("public", "sessions.other", "table"),
        ("my schema", "sessions", "schema"),
        ("pg_catalog", "sessions", "schema"),
        (
            "public",
            "a_table_name_that_is_far_too_long_for_the_derived_names",
            "table",
        ),
    ] {
        let built = PostgresStore::builder()
            .url(unreachable)
            .schema(schema)
            .table(table)
            .build();
        let err = built.expect_err("an invalid name was accepted by build");
        assert_eq!(refused_setting(&err), Some(refused), "{schema:?}.{table:?}: {err}");
        assert!(!err.is_retryable(), "a configuration error is permanent");

        let connected = PostgresStore::builder()
            .url(unreachable)
            .schema(schema)
            .table(table)
            .connect()
            .await;
        let err = connected.expect_err("an invalid name was accepted by connect");
        assert_eq!(refused_setting(&err), Some(refused), "{err}");

        let base = PostgresStore::builder()
            .url(unreachable)
            .build()
            .expect("valid defaults");
        let err = base
            .with_table(schema, table)
            .expect_err("with_table accepted an invalid name");
        assert_eq!(refused_setting(&err), Some(refused), "{err}");
    }
    let zero = PostgresStore::builder().url(unreachable).max_connections(0).build();
    assert_eq!(
        refused_setting(&zero.expect_err("0 connections")),
        Some("max_connections")
    );
    let no_url = PostgresStore::builder().build();
    assert_eq!(refused_setting(&no_url.expect_err("no url")), Some("url"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_backend_error() {
    let err = PostgresStore::builder()
        .url("postgres://nobody@127.0.0.1:1/none")
        .acquire_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(postgres_error(&err), Some(PostgresError::Connect(_))), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn migrate_is_idempotent_and_safe_to_race() {
    if !support::server_or_skip("migrate_is_idempotent_and_safe_to_race").await {
        return;
    }
    let schema = support::unique_table("migrate");
    let base = PostgresStore::builder()
        .url(support::database_url())
        .schema(&schema)
        .table("sessions")
        .build()
        .expect("valid configuration");
    // Eight instances start at once on a schema that does not exist yet.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = base.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("no panic")
            .expect("every concurrent migrate succeeds");
    }
    base.migrate().await.expect("migrating again is a no-op");

    let mut conn = support::raw_connection().await.expect("raw connection");
    let applied: Vec<i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\".sessions_migrations ORDER BY version"
    )))
    .fetch_all(&mut conn)
    .await
    .expect("the ledger exists")
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(applied, (1..=store_postgres::SCHEMA_VERSION).collect::<Vec<_>>());

    let now = Timestamp::now();
    base.create(support::record(now, None), now)
        .await
        .expect("the table works");
    support::execute(format!("DROP SCHEMA \"{schema}\" CASCADE")).await;
}

#[tokio::test]
async fn damaged_rows_give_corrupt_never_a_panic() {
    if !support::server_or_skip("damaged_rows_give_corrupt_never_a_panic").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
    let now = Timestamp::now();

    // A version below 1: load and update refuse to interpret it.
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");
    support::execute(format!(
        "UPDATE {} SET version = -3 WHERE key = '\\x{}'::bytea",
        store.table(),
        r.key.to_hex()
    ))
    .await;
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
    support::execute(format!(
        "UPDATE {} SET key = '\\x0102'::bytea WHERE key = '\\x{}'::bytea",
        store.table(),
        r.key.to_hex()
    ))
    .await;
    assert_eq!(store.list_by_owner("eve", now).await.expect("list"), Vec::new());
    assert_eq!(store.delete_by_owner("eve", now).await.expect("delete_by_owner"), 1);

    store.drop_table().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_on_a_lock_fails_with_a_clear_timeout_error() {
    if !support::server_or_skip("a_statement_stuck_on_a_lock_fails_with_a_clear_timeout_error").await {
        return;
    }
    let timeout = Duration::from_millis(300);
    let store = support::fresh_store(|b| b.statement_timeout(timeout)).await;
    let now = Timestamp::now();
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");

    // Another client holds the row's lock in an open transaction.
    let in_flight = support::InFlightWrite::start(&store, &r.key).await;

    let started = std::time::Instant::now();
    let err = store
        .touch(&r.key, now + conformance::HOUR * 2, now)
        .await
        .expect_err("the touch waits on the lock until the statement timeout");
    let waited = started.elapsed();
    assert!(waited >= timeout, "failed after {waited:?}, before the timeout");
    assert!(err.is_retryable(), "a timeout may succeed when retried");
    let source = postgres_error(&err).expect("a PostgresError source");
    assert!(source.is_statement_timeout(), "{source}");
    let message = err.to_string();
    assert!(
        message.contains("`touch`") && message.contains("statement timeout of 300 ms"),
        "{message}"
    );
    // Reads do not wait for row locks.
    assert!(store.load(&r.key, now).await.expect("load").is_some());

    in_flight.rollback().await;
    assert!(
        store
            .touch(&r.key, now + conformance::HOUR * 2, now)
            .await
            .expect("touch after the lock")
    );
    store.drop_table().await.expect("drop");
}

/// The lean `update` reads `current` from its snapshot. When the row changes
/// after that snapshot, the snapshot still shows the expected version while
/// the write, re-checked on the newest row, does nothing: the store must
/// then report the version it really lost to, never the expected one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_loses_after_its_snapshot_reports_the_version_it_lost_to() {
    if !support::server_or_skip("an_update_that_loses_after_its_snapshot_reports_the_version_it_lost_to").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
    let now = Timestamp::now();
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");

    // Another client bumps the version in a transaction it keeps open, so
    // the store's update takes its snapshot before that commit and then
    // waits on the row lock.
    let mut other = support::raw_connection().await.expect("raw connection");
    let mut tx = other.begin().await.expect("begin");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET version = version + 1 WHERE key = $1",
        store.table()
    )))
    .bind(r.key.as_bytes().as_slice())
    .execute(&mut *tx)
    .await
    .expect("bump the version");

    let racing = {
        let (store, key) = (store.clone(), r.key);
        let u = Update {
            expected_version: 1,
            data: r.data.clone(),
            expires_at: r.expires_at,
            owner: None,
        };
        tokio::spawn(async move { store.update(&key, u, now).await })
    };
    // Wait until the update is blocked on the row lock (a condition, not an
    // assumed duration), then commit the other write.
    let mut watcher = support::raw_connection().await.expect("raw connection");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock' \
             AND position($1 in query) > 0",
        )
        // The table part of `schema.table`: statements quote each part.
        .bind(store.table().rsplit('.').next().unwrap_or_default().to_owned())
        .fetch_one(&mut watcher)
        .await
        .expect("read pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            !racing.is_finished(),
            "the update finished without waiting on the row lock"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the update never reached the row lock"
        );
        tokio::task::yield_now().await;
    }
    assert!(!racing.is_finished(), "the update waits on the row lock");
    tx.commit().await.expect("commit the other write");

    let result = racing.await.expect("the update task");
    assert!(
        matches!(result, Err(Error::Conflict { current: 2 })),
        "expected Conflict {{ current: 2 }}, got {result:?}"
    );
    let stored = store.load(&r.key, now).await.expect("load").expect("live");
    assert_eq!(stored.version, 2, "the losing update wrote nothing");
    store.drop_table().await.expect("drop");
}

/// PostgreSQL reports a statement canceled by `pg_cancel_backend` with the
/// same SQLSTATE (57014) as one canceled by the statement timeout: the
/// store must not call an administrator's cancel, milliseconds into a 30 s
/// timeout, a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrators_cancel_is_not_reported_as_a_statement_timeout() {
    if !support::server_or_skip("an_administrators_cancel_is_not_reported_as_a_statement_timeout").await {
        return;
    }
    let store = support::fresh_store(|b| b.statement_timeout(Duration::from_secs(30))).await;
    let application = support::application_name(&store);
    let now = Timestamp::now();
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");

    let in_flight = support::InFlightWrite::start(&store, &r.key).await;
    let touching = {
        let (store, key) = (store.clone(), r.key);
        tokio::spawn(async move { store.touch(&key, now + conformance::HOUR * 2, now).await })
    };
    let mut admin = support::raw_connection().await.expect("raw connection");
    support::wait_until_waiting(&mut admin, &application, "transactionid", 1).await;
    let canceled: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND wait_event = 'transactionid'",
    )
    .bind(&application)
    .fetch_one(&mut admin)
    .await
    .expect("cancel the store's statement");
    assert_eq!(canceled, 1);

    let err = touching.await.expect("task").expect_err("the canceled touch fails");
    assert!(err.is_retryable(), "a canceled statement may succeed when retried");
    let source = postgres_error(&err).expect("a PostgresError source");
    assert!(!source.is_statement_timeout(), "reported as a timeout: {err}");
    assert!(source.is_canceled(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("`touch`")
            && message.contains("was canceled (by an administrator, pg_cancel_backend, or a shutdown)")
            && !message.contains("timeout"),
        "{message}"
    );
    in_flight.rollback().await;
    assert!(
        store
            .touch(&r.key, now + conformance::HOUR * 2, now)
            .await
            .expect("touch")
    );
    store.drop_table().await.expect("drop");
}

/// A row whose `expires_at` cannot be read (NULL, possible only once
/// someone dropped the NOT NULL constraint) is not live for anything, and
/// every way of ending sessions removes it: `delete` gives `Ok(false)`
/// (not `Corrupt`), `create` over it replaces it, `delete_by_owner` ends it
/// without counting it, and the sweep removes it without counting it.
#[tokio::test]
async fn rows_whose_expiry_cannot_be_read_are_ended_and_count_as_not_live() {
    if !support::server_or_skip("rows_whose_expiry_cannot_be_read_are_ended_and_count_as_not_live").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
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
    let live = (now + conformance::HOUR).as_millis().to_string();
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
    if !support::server_or_skip("list_by_owner_skips_the_rows_it_cannot_read_and_warns").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
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
    if !support::server_or_skip("a_version_that_cannot_grow_is_refused_as_corrupt_and_nothing_is_written").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
    let now = Timestamp::now();
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");
    support::execute(format!(
        "UPDATE {} SET version = 9223372036854775807 WHERE key = '\\x{}'::bytea",
        store.table(),
        r.key.to_hex()
    ))
    .await;
    let top = i64::MAX.unsigned_abs();
    let write = |expected_version| Update {
        expected_version,
        data: session_core::Bytes::from_static(b"new"),
        expires_at: r.expires_at + conformance::HOUR,
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
        expires_at: r.expires_at + conformance::HOUR,
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
    if !support::server_or_skip("owners_the_contract_refuses_are_refused_by_the_store_before_any_sql").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
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
    if !support::server_or_skip("the_longest_owners_work_for_every_operation").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
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

/// A server error names the problem and its SQLSTATE, never "at line N",
/// which sqlx appends from the protocol's field for the line of
/// PostgreSQL's C source that raised it.
#[tokio::test]
async fn server_errors_give_the_sqlstate_not_a_line_of_postgresqls_source() {
    if !support::server_or_skip("server_errors_give_the_sqlstate_not_a_line_of_postgresqls_source").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
    store.drop_table().await.expect("drop");
    let err = store
        .load(&conformance::fresh_key(), Timestamp::now())
        .await
        .expect_err("the table is gone");
    let message = err.to_string();
    assert!(
        message.contains("does not exist (SQLSTATE 42P01)") && !message.contains(" at line "),
        "{message}"
    );
}

/// A table made by version 1 of the schema, with sessions in it, upgrades in
/// place: `migrate` applies only the later migrations, the sessions are
/// kept, and every operation works on the upgraded table.
#[tokio::test]
async fn a_version_1_table_upgrades_in_place_and_keeps_its_sessions() {
    if !support::server_or_skip("a_version_1_table_upgrades_in_place_and_keeps_its_sessions").await {
        return;
    }
    let schema = support::unique_table("upgrade");
    let store = PostgresStore::builder()
        .url(support::database_url())
        .schema(&schema)
        .table("sessions")
        .build()
        .expect("valid configuration");
    store.migrate_up_to_for_tests(1).await.expect("the version 1 schema");
    let now = Timestamp::now();
    let (live, expired) = (conformance::fresh_key(), conformance::fresh_key());
    // Written the way version 1 of the crate wrote them: its columns only.
    support::execute(format!(
        "INSERT INTO \"{schema}\".sessions (key, version, data, created_at, expires_at, owner) VALUES \
         ('\\x{}'::bytea, 4, '\\x0100'::bytea, {c}, {e}, 'vera'), \
         ('\\x{}'::bytea, 1, '\\x0100'::bytea, {c}, {c}, NULL)",
        live.to_hex(),
        expired.to_hex(),
        c = now.as_millis(),
        e = (now + conformance::HOUR).as_millis(),
    ))
    .await;
    let mut conn = support::raw_connection().await.expect("raw connection");
    let columns_sql = "SELECT column_name::text FROM information_schema.columns \
                       WHERE table_schema = $1 AND table_name = 'sessions' ORDER BY ordinal_position";
    let columns: Vec<String> = sqlx::query_scalar(columns_sql)
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .expect("columns");
    assert!(!columns.contains(&"rotated_until".to_owned()), "{columns:?}");

    store.migrate().await.expect("upgrade to the latest schema");
    store.migrate().await.expect("migrating again is a no-op");
    let applied: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\".sessions_migrations ORDER BY version"
    )))
    .fetch_all(&mut conn)
    .await
    .expect("the ledger");
    assert_eq!(applied, (1..=store_postgres::SCHEMA_VERSION).collect::<Vec<_>>());
    let columns: Vec<String> = sqlx::query_scalar(columns_sql)
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .expect("columns");
    assert!(columns.contains(&"rotated_until".to_owned()), "{columns:?}");
    let (marks_index,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'sessions_marks'")
            .bind(&schema)
            .fetch_one(&mut conn)
            .await
            .expect("pg_indexes");
    assert_eq!(marks_index, 1);

    // The old sessions, with every operation.
    let kept = store
        .load(&live, now)
        .await
        .expect("load")
        .expect("the live session is kept");
    assert_eq!((kept.version, kept.owner.as_deref()), (4, Some("vera")));
    assert_eq!(store.list_by_owner("vera", now).await.expect("list").len(), 1);
    let new_key = conformance::fresh_key();
    let moved = store.rotate(&live, &new_key, None, now).await.expect("rotate");
    assert_eq!(
        moved,
        Record {
            key: new_key,
            version: 1,
            ..kept
        }
    );
    assert!(store.was_rotated(&live, now).await.expect("was_rotated"));
    assert_eq!(store.delete_expired(now, 10).await.expect("delete_expired"), 1);
    assert_eq!(store.delete_by_owner("vera", now).await.expect("delete_by_owner"), 1);
    support::execute(format!("DROP SCHEMA \"{schema}\" CASCADE")).await;
}
