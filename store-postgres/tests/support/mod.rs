//! How the tests of this crate find their PostgreSQL server and isolate
//! themselves from each other: every test gets its own table in the schema
//! `store_postgres_tests`, so tests run in parallel.

#![allow(dead_code)] // each test file uses a different part of this module

use std::time::Duration;

use conformance::fixtures::HOUR;
use session_core::{Record, Timestamp};
use sqlx::{ConnectOptions as _, PgConnection};
use store_postgres::PostgresStore;

/// The server: `DATABASE_URL`, or the local default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A table name no other test uses: `<prefix>_<16 random hex digits>`.
pub fn unique_table(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!("{prefix}_{:016x}", u64::from_le_bytes(bytes))
}

/// Whether the server answers. When it does not, the test is skipped with
/// a line the test harness does not capture (the caller returns), or fails
/// under `SESSIONS_REQUIRE_SERVICES=1`: `conformance::fixtures::skip_or_fail`.
pub async fn server_available() -> bool {
    let attempt = tokio::time::timeout(Duration::from_secs(5), raw_connection()).await;
    let error = match attempt {
        Ok(Ok(_)) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "connecting took more than 5 s".to_owned(),
    };
    conformance::fixtures::skip_or_fail("PostgreSQL", &format!("at {}: {error}", database_url()));
    false
}

/// A plain connection beside the store's, for the test's own SQL.
pub async fn raw_connection() -> Result<PgConnection, sqlx::Error> {
    let options: sqlx::postgres::PgConnectOptions = database_url().parse()?;
    options.application_name("store-postgres-tests").connect().await
}

/// A migrated store on a fresh table, with a unique application name so a
/// test can find its connections in `pg_stat_activity`.
pub async fn fresh_store(
    configure: impl FnOnce(store_postgres::PostgresStoreBuilder) -> store_postgres::PostgresStoreBuilder,
) -> PostgresStore {
    let table = unique_table("t");
    let builder = PostgresStore::builder()
        .url(database_url())
        .schema("store_postgres_tests")
        .table(&table)
        .application_name(&table)
        .migrate_on_connect(true);
    configure(builder)
        .connect()
        .await
        .expect("a migrated store on a fresh table")
}

/// [`fresh_store`], or `None` (the test is skipped, or fails under
/// `SESSIONS_REQUIRE_SERVICES=1`) when the server does not answer: see
/// [`server_available`].
pub async fn fresh_store_or_skip(
    configure: impl FnOnce(store_postgres::PostgresStoreBuilder) -> store_postgres::PostgresStoreBuilder,
) -> Option<PostgresStore> {
    if !server_available().await {
        return None;
    }
    Some(fresh_store(configure).await)
}

/// A `conformance::fixtures::record` under a fresh key, created at `now`,
/// lasting an hour, of `owner`.
pub fn record(now: Timestamp, owner: Option<&str>) -> Record {
    Record {
        owner: owner.map(str::to_owned),
        ..conformance::fixtures::record(conformance::fresh_key(), now, HOUR)
    }
}

/// Runs `sql` on a connection of its own.
pub async fn execute(sql: String) {
    let mut conn = raw_connection().await.expect("a raw connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("the test's own SQL runs");
}

/// Damages `key`'s row behind the store's back: `UPDATE <table> SET <set>
/// WHERE key = <key>`, on a connection of its own.
pub async fn damage(store: &PostgresStore, key: &session_core::StoreKey, set: &str) {
    execute(format!(
        "UPDATE {} SET {set} WHERE key = '\\x{}'::bytea",
        store.table(),
        key.to_hex()
    ))
    .await;
}

/// The `application_name` of a [`fresh_store`]'s connections: its table's
/// name without the schema.
pub fn application_name(store: &PostgresStore) -> String {
    store.table().rsplit('.').next().unwrap_or_default().to_owned()
}

/// Waits until at least `n` backends of `application` wait for a lock of
/// the kind `wait_event` (`advisory`, `transactionid`, `relation`...), as
/// `pg_stat_activity` shows them: a condition, never an assumed duration.
/// Fails after 20 s.
pub async fn wait_until_waiting(watcher: &mut PgConnection, application: &str, wait_event: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = $2",
        )
        .bind(application)
        .bind(wait_event)
        .fetch_one(&mut *watcher)
        .await
        .expect("read pg_stat_activity");
        if waiting >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} backends of {application} never waited on a {wait_event} lock ({waiting} did)"
        );
        tokio::task::yield_now().await;
    }
}

/// The statement the store sends for `op`, from `statements_for_tests`.
pub fn statement(store: &PostgresStore, op: &str) -> String {
    store
        .statements_for_tests()
        .iter()
        .find(|(name, _)| *name == op)
        .map(|(_, sql)| (*sql).to_owned())
        .unwrap_or_else(|| panic!("the store has no statement {op:?}"))
}

/// A write of another instance in flight: a transaction of its own that has
/// rewritten `key`'s row and stays open, holding the row's lock, until
/// [`InFlightWrite::commit`] or [`InFlightWrite::rollback`].
pub struct InFlightWrite {
    conn: PgConnection,
}

impl InFlightWrite {
    /// Opens the transaction and writes the row (its contents unchanged).
    pub async fn start(store: &PostgresStore, key: &session_core::StoreKey) -> InFlightWrite {
        let mut conn = raw_connection().await.expect("a raw connection");
        sqlx::raw_sql("BEGIN").execute(&mut conn).await.expect("begin");
        let written = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET data = data WHERE key = $1",
            store.table()
        )))
        .bind(key.as_bytes().as_slice())
        .execute(&mut conn)
        .await
        .expect("write the row");
        assert_eq!(written.rows_affected(), 1, "the row to hold exists");
        InFlightWrite { conn }
    }

    /// Commits the write, releasing the row.
    pub async fn commit(mut self) {
        sqlx::raw_sql("COMMIT").execute(&mut self.conn).await.expect("commit");
    }

    /// Rolls the write back, releasing the row.
    pub async fn rollback(mut self) {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut self.conn)
            .await
            .expect("rollback");
    }
}

/// The [`PostgresError`](store_postgres::PostgresError) behind a backend error.
pub fn postgres_error(e: &session_core::Error) -> Option<&store_postgres::PostgresError> {
    match e {
        session_core::Error::Backend(b) => {
            std::error::Error::source(b).and_then(|s| s.downcast_ref::<store_postgres::PostgresError>())
        }
        _ => None,
    }
}
