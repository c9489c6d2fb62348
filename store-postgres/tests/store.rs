//! What this backend promises beyond the shared suite: configuration is
//! validated before any connection, migrations are idempotent and safe to
//! race, damaged rows give `Corrupt`, and a statement stuck on a lock fails
//! with a clear statement-timeout error, and an update that loses a race
//! after its snapshot still reports the version it lost to.

mod support;

use std::error::Error as _;
use std::time::Duration;

use session_core::{Error, SessionStore, Timestamp, Update};
use sqlx::{Connection as _, Row as _};
use store_postgres::{ConfigError, PostgresError, PostgresStore};

fn postgres_error(e: &Error) -> Option<&PostgresError> {
    match e {
        Error::Backend(b) => b.source().and_then(|s| s.downcast_ref::<PostgresError>()),
        _ => None,
    }
}

fn config_error(e: &Error) -> Option<&ConfigError> {
    match e {
        Error::Backend(b) => b.source().and_then(|s| s.downcast_ref::<ConfigError>()),
        _ => None,
    }
}

#[tokio::test]
async fn invalid_table_and_schema_names_are_refused_at_configuration() {
    // Port 1 on loopback: were a connection attempted, the error would be a
    // connection error, not a configuration error.
    let unreachable = "postgres://nobody@127.0.0.1:1/none";
    for (schema, table) in [
        ("public", "Sessions"),
        ("public", "sessions\"; DROP TABLE users; --"),
        ("public", "1sessions"),
        ("public", ""),
        ("public", "sessions.other"),
        ("my schema", "sessions"),
        ("pg_catalog", "sessions"),
        ("public", "a_table_name_that_is_far_too_long_for_the_derived_names"),
    ] {
        let built = PostgresStore::builder()
            .url(unreachable)
            .schema(schema)
            .table(table)
            .build();
        let err = built.expect_err("an invalid name was accepted by build");
        assert!(
            matches!(config_error(&err), Some(ConfigError::InvalidName { .. })),
            "{schema:?}.{table:?}: {err}"
        );
        assert!(!err.is_retryable(), "a configuration error is permanent");

        let connected = PostgresStore::builder()
            .url(unreachable)
            .schema(schema)
            .table(table)
            .connect()
            .await;
        let err = connected.expect_err("an invalid name was accepted by connect");
        assert!(
            matches!(config_error(&err), Some(ConfigError::InvalidName { .. })),
            "{err}"
        );

        let base = PostgresStore::builder()
            .url(unreachable)
            .build()
            .expect("valid defaults");
        assert!(
            base.with_table(schema, table).is_err(),
            "with_table accepted {schema:?}.{table:?}"
        );
    }
    let zero = PostgresStore::builder().url(unreachable).max_connections(0).build();
    assert!(matches!(
        config_error(&zero.expect_err("0 connections")),
        Some(ConfigError::NoConnections)
    ));
    let no_url = PostgresStore::builder().build();
    assert!(matches!(
        config_error(&no_url.expect_err("no url")),
        Some(ConfigError::MissingUrl)
    ));
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

    // A key that is not 32 bytes, found through the owner index.
    let r = support::record(now, Some("eve"));
    store.create(r.clone(), now).await.expect("create");
    support::execute(format!(
        "UPDATE {} SET key = '\\x0102'::bytea WHERE key = '\\x{}'::bytea",
        store.table(),
        r.key.to_hex()
    ))
    .await;
    match store.list_by_owner("eve", now).await {
        Err(Error::Corrupt(msg)) => assert!(msg.contains("32 bytes"), "{msg}"),
        other => panic!("listing a damaged key gave {other:?}"),
    }
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
    let mut other = support::raw_connection().await.expect("raw connection");
    let mut tx = other.begin().await.expect("begin");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {} WHERE key = $1 FOR UPDATE",
        store.table()
    )))
    .bind(r.key.as_bytes().as_slice())
    .fetch_one(&mut *tx)
    .await
    .expect("lock the row");

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

    tx.rollback().await.expect("release the lock");
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
