//! Migrations: idempotent, safe when several instances start at once, and
//! an upgrade in place of a table made by an older schema, keeping its
//! sessions.

mod support;

use conformance::fixtures::HOUR;
use session_core::{Record, SessionStore, Timestamp};
use sqlx::Row as _;
use store_postgres::PostgresStore;

#[tokio::test]
async fn migrate_is_idempotent_and_safe_to_race() {
    if !support::server_available().await {
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

/// A table made by version 1 of the schema, with sessions in it, upgrades in
/// place: `migrate` applies only the later migrations, the sessions are
/// kept, and every operation works on the upgraded table.
#[tokio::test]
async fn a_version_1_table_upgrades_in_place_and_keeps_its_sessions() {
    if !support::server_available().await {
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
        e = (now + HOUR).as_millis(),
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
