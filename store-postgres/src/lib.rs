//! # store-postgres: sessions in PostgreSQL
//!
//! [`PostgresStore`] implements the [`SessionStore`] contract on PostgreSQL
//! through sqlx. Pick it when your application already runs PostgreSQL and
//! sessions must survive restarts and be shared by every instance of the
//! application, without adding Redis to the stack. Pick `store-redis` for the
//! lowest latency at high request rates, `store-memory` for one process.
//!
//! ## Guarantees
//!
//! - **One statement, one round trip per operation.** Every operation of the
//!   contract is a single SQL statement (with CTEs where it must read and
//!   write), sent as one extended-protocol exchange; `delete_by_owner` is two
//!   statements in one simple-query message (below). Each is therefore
//!   atomic (PostgreSQL runs it as one transaction) and costs one round trip
//!   once its statement is prepared on the connection (the first use of each
//!   statement on a new connection costs one more, to prepare it). The
//!   store's pool never pings: see [`Pool`](#connections) below. The crate's
//!   tests count the server's ReadyForQuery messages to prove it, for every
//!   operation `overwrite`, `was_rotated` and both kinds of `rotate`
//!   included. The exceptions, which cost a second statement, all races or
//!   leftovers on the same key: an `update` or `overwrite` whose row changed
//!   between its statement's snapshot and its write; a `create` or `rotate`
//!   onto a key already in the table (an expired leftover, a rotation mark,
//!   a taken key for `create`, or a race on the same new key; `rotate`
//!   refuses a live new key in one statement); a
//!   `delete` whose row was rotated away between its snapshot and its
//!   write. Fresh keys, as new session ids are, never take those paths.
//! - **Linearizable.** Each statement decides on the newest committed
//!   version of the row it writes, under that row's lock, so two `update`s that
//!   expect the same version cannot both win (the loser gets
//!   [`Error::Conflict`] with the version it lost to), and a `touch` racing a
//!   `delete` or `rotate` never revives anything. `list_by_owner` reads one
//!   snapshot. `delete_by_owner` ("log out everywhere") takes no table lock:
//!   every statement that can make a session an owner's (a `create`,
//!   `update` or `overwrite` writing that owner, a `rotate` setting it or
//!   moving the session out of its row) first takes a shared,
//!   transaction-scoped advisory lock of that owner, and `delete_by_owner`
//!   takes it exclusively before its delete, so its snapshot holds every
//!   session of the owner; a session rotated to a new key meanwhile is
//!   followed there (the common rotate changes the key of the session's
//!   row). So a session created, logged in or rotated at the same moment is
//!   either ended or comes after it, never missed; other owners, anonymous
//!   sessions and reads never wait for it, nor it for VACUUM, ANALYZE or
//!   open transactions. (Details in the `statements` module.)
//! - **Rotation marks.** `rotate` leaves a mark under the old key until
//!   `min(old expiry, now + ROTATION_MARK_TTL)`: a row with `expires_at =
//!   i64::MIN`, which no liveness test accepts, and the mark's end in the
//!   `rotated_until` column; no data, no owner. [`was_rotated`](SessionStore::was_rotated)
//!   reads it; `create` and `rotate` onto the key replace it, `delete`
//!   removes it, the sweep removes it once it has ended.
//! - **Liveness by the caller's clock.** A row is live iff the caller's
//!   `now` is before its `expires_at` (milliseconds). The database clock is
//!   never read, so application servers and the database may disagree on the
//!   time without breaking the contract.
//! - **Durability.** By default a write returns after its commit is on disk:
//!   acknowledged sessions survive a crash or restart of the server.
//!   [`PostgresStoreBuilder::synchronous_commit`]`(false)` trades the last
//!   fraction of a second of writes on a server *crash* for faster commits;
//!   it is off by default.
//! - **Expired rows** are invisible at once and removed by
//!   [`delete_expired`](SessionStore::delete_expired), which you call
//!   periodically (for example every minute, with a limit of a few thousand):
//!   PostgreSQL has no TTL of its own. The sweep walks the `expires_at`
//!   index, oldest first, skips rows locked by a concurrent renewal and
//!   re-checks expiry under the row lock, so a renewed session survives it.
//!   It also removes the rotation marks that have ended (through their own
//!   index) and rows whose expiry is unreadable, without counting either.
//! - **Scaling out.** Every application instance talks to the same primary.
//!   Reads are not sent to replicas (a replica's lag would break
//!   linearizability).
//! - **Bad rows** (a key that is not 32 bytes, a version below 1, a NULL or
//!   an unexpected column type) give [`Error::Corrupt`] where a record is
//!   read (`load`, `update`); `list_by_owner` skips them with a warning, and
//!   `delete`, `delete_by_owner` and the sweep remove them (a row whose
//!   expiry cannot be read counts as not live). An `update` or `overwrite` of
//!   a row at the largest version a `bigint` holds is refused with `Corrupt`,
//!   nothing written. Server and connection failures give [`Error::Backend`],
//!   transient where a retry may help ([`Error::is_retryable`]); its message
//!   gives the server's message and SQLSTATE, and tells a statement timeout
//!   from an administrator's cancel. Nothing panics on any input.
//! - **Owners** are those the contract accepts
//!   ([`validate_owner`]: up to 1024 bytes of
//!   UTF-8 without control characters), all of which fit the owner index; the
//!   store refuses any other with [`Error::InvalidOwner`] before sending
//!   anything (PostgreSQL cannot store NUL in `text`, nor index entries over
//!   about 2.7 KB).
//!
//! ## Schema and migrations
//!
//! One table, by default `public.sessions` (both names configurable, strictly
//! validated: see [`PostgresStoreBuilder::table`]):
//!
//! | column | type | |
//! |---|---|---|
//! | `key` | `bytea` primary key | SHA-256 of the session id, never the token |
//! | `version` | `bigint` | 1 after create and rotate, +1 per update and overwrite (0 in a mark) |
//! | `data` | `bytea` | the application's encoded data (empty in a mark) |
//! | `created_at`, `expires_at` | `bigint` | milliseconds since the Unix epoch (`expires_at` is `i64::MIN` in a mark) |
//! | `owner` | `text`, nullable | the owner index (NULL in a mark) |
//! | `rotated_until` | `bigint`, nullable | a mark's end; NULL in every record |
//!
//! with an index on `(expires_at)` for sweeps, a partial index on
//! `(owner, expires_at) WHERE owner IS NOT NULL` for the owner queries, and
//! a partial index on `(rotated_until) WHERE rotated_until IS NOT NULL` for
//! sweeping marks. The schema is created by migrations embedded in the
//! crate (version [`SCHEMA_VERSION`]), recorded per table in
//! `<table>_migrations` and run by [`PostgresStore::migrate`] (or by
//! [`PostgresStoreBuilder::migrate_on_connect`]). Migrating is idempotent,
//! safe when several instances start at once, and upgrades an existing
//! table in place: migration 2 adds the nullable `rotated_until` column
//! (a catalog change) and builds its index, which reads the table once
//! while holding writes back. Instances of version 1 of this crate keep
//! working on an upgraded table during a rolling deployment, with two
//! gaps until every instance runs this version: they see marks as the
//! expired rows they look like (their sweep removes marks early, so
//! `was_rotated` may miss a few), and they take no owner locks and rotate
//! by a delete and an insert, so a `delete_by_owner` of a new instance can
//! miss a session that an old instance creates or rotates for the same
//! owner at that very moment (an old instance's `delete_by_owner` still
//! takes its table lock and misses nothing).
//!
//! ## Connections
//!
//! The store keeps its own small pool of `PgConnection`s (at most
//! [`max_connections`](PostgresStoreBuilder::max_connections)) instead of a
//! sqlx `PgPool`, because sqlx 0.9 pings every pooled connection when it is
//! given back, and by default when it is handed out: three round trips per
//! operation instead of one. A connection is reused only if its last
//! operation ended cleanly; after a connection breaks (server restart,
//! failover, `pg_terminate_backend`), the operations in flight fail with a
//! transient [`Error::Backend`], every older connection is retired, and the
//! next operations open fresh ones: the store serves again by itself, without
//! being rebuilt. As with any networked store, an operation that failed this
//! way may or may not have been applied.
//!
//! Session settings travel in the connection's startup packet (no extra
//! round trip): the [`statement_timeout`](PostgresStoreBuilder::statement_timeout)
//! (default 5 s) and, if chosen, `synchronous_commit = off`.
//!
//! ## Running against a managed PostgreSQL
//!
//! - **TLS.** This crate is built without TLS by default (loopback, private
//!   networks, a sidecar proxy). For a server that requires TLS (most managed
//!   offerings), enable the `tls-rustls` (or `tls-native-tls`) feature of this
//!   crate and put `?sslmode=verify-full` (or `require`) in the URL; with TLS
//!   off, an `sslmode` that requires TLS fails to connect with a clear error
//!   rather than falling back to plain text.
//! - **Privileges.** [`PostgresStore::migrate`] needs to create a table (and
//!   the schema if it is missing); the operations need `SELECT, INSERT,
//!   UPDATE, DELETE` on the table (advisory locks need no privilege). Run
//!   `migrate` with a privileged role at deployment, and the application with
//!   the restricted one.
//! - **Poolers.** Behind PgBouncer in transaction mode, the startup settings
//!   are not forwarded (set `statement_timeout` on the role instead:
//!   `ALTER ROLE app SET statement_timeout = '5s'`), and prepared statements
//!   need PgBouncer 1.21 or later with `max_prepared_statements` set. The
//!   owner locks are transaction-scoped, so transaction mode keeps them
//!   right. Session mode, or no pooler, needs nothing.
//! - Keep `max_connections` × instances below the server's connection limit.
//!
//! ## Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::{Config, SessionManager};
//! use store_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), session_core::Error> {
//! let store = PostgresStore::builder()
//!     .url("postgres://app:secret@db.internal:5432/app?sslmode=prefer")
//!     .table("sessions")
//!     .migrate_on_connect(true)
//!     .connect()
//!     .await?;
//!
//! // Sweep expired sessions in the background.
//! let sweeper = store.clone();
//! tokio::spawn(async move {
//!     loop {
//!         tokio::time::sleep(std::time::Duration::from_secs(60)).await;
//!         let now = session_core::Timestamp::now();
//!         let _ = session_core::SessionStore::delete_expired(&sweeper, now, 5_000).await;
//!     }
//! });
//!
//! let manager = SessionManager::new(Arc::new(store), Config::default())?;
//! let mut session = manager.create(None).await?;
//! // Log in: a new id, and the owner, in one step.
//! manager.rotate_to_owner(&mut session, "user-42").await?;
//! // Log out everywhere.
//! manager.destroy_by_owner("user-42").await?;
//! # Ok(())
//! # }
//! ```

mod builder;
mod error;
mod migrations;
mod pool;
mod row;
mod statements;
mod table;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    Error, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, SessionStore, StoreKey, Timestamp, Update, async_trait,
    validate_owner,
};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Execute, Executor as _, Postgres, query, raw_sql};

pub use builder::{DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT, PostgresStoreBuilder};
pub use error::{ConfigError, PostgresError};
pub use migrations::SCHEMA_VERSION;
pub use table::{MAX_SCHEMA_NAME_LEN, MAX_TABLE_NAME_LEN};

use error::{
    CancelCause, backend, cancel_cause, is_aborted_without_effect, is_query_canceled, is_transient, is_unique_violation,
};
use pool::Pool;
use statements::Statements;
use table::TableName;

/// A PostgreSQL session store. Cheap to clone: clones share the connections.
///
/// Made by [`PostgresStore::builder`]; see the [crate docs](crate) for its
/// guarantees.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Arc<Pool>,
    table: Arc<Table>,
    // Kept to name the timeout in errors, and to tell it from other cancels.
    statement_timeout: Option<Duration>,
}

/// Everything that depends on the table name, built once.
pub(crate) struct Table {
    name: TableName,
    // `schema.table`, for messages.
    display: String,
    sql: Statements,
    // The seed of this table's owner lock keys (see `statements::owner_lock_seed`).
    lock_seed: i64,
}

impl Table {
    pub(crate) fn new(name: TableName) -> Self {
        Self {
            display: name.to_string(),
            sql: Statements::new(&name),
            lock_seed: statements::owner_lock_seed(&name),
            name,
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.table.display)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

impl PostgresStore {
    /// A builder with the defaults: table `public.sessions`, 10 connections,
    /// 5 s statement timeout, synchronous commits, no migration at connect.
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder::default()
    }

    /// Creates or upgrades the table, its indexes and its migrations table,
    /// applying each embedded migration that this table has not seen yet.
    /// Idempotent; concurrent calls are serialized by an advisory lock.
    pub async fn migrate(&self) -> Result<(), Error> {
        self.migrate_up_to(SCHEMA_VERSION).await
    }

    /// [`migrate`](Self::migrate), stopping after migration `version`: how
    /// this crate's tests make a table of an older schema to upgrade. Not a
    /// stable API; the store's operations need the latest schema.
    #[doc(hidden)]
    pub async fn migrate_up_to_for_tests(&self, version: i64) -> Result<(), Error> {
        self.migrate_up_to(version).await
    }

    async fn migrate_up_to(&self, version: i64) -> Result<(), Error> {
        let mut lease = self.pool.acquire().await?;
        let result = migrations::run(lease.conn(), &self.table.name, version).await;
        // A failed migration may leave a transaction open on the connection:
        // only a clean run gives it back.
        if result.is_ok() {
            lease.settle(None);
        }
        result
    }

    /// Another store on the same connections, with its own table (for
    /// example one per tenant, or one per test). The name is validated like
    /// the builder's; migrate the new store before use.
    pub fn with_table(&self, schema: &str, table: &str) -> Result<PostgresStore, Error> {
        Ok(PostgresStore {
            pool: Arc::clone(&self.pool),
            table: Arc::new(Table::new(TableName::new(schema, table)?)),
            statement_timeout: self.statement_timeout,
        })
    }

    /// The table, as `schema.table`.
    pub fn table(&self) -> &str {
        &self.table.display
    }

    /// Drops the table and its migrations table, with every session in it.
    /// For tests and tools; an application never needs it.
    pub async fn drop_table(&self) -> Result<(), Error> {
        let sql = migrations::drop_sql(&self.table.name);
        let mut lease = self.pool.acquire().await?;
        let started = Instant::now();
        let result = raw_sql(AssertSqlSafe(sql)).execute(lease.conn()).await;
        lease.settle(result.as_ref().err());
        result.map(drop).map_err(|error| {
            self.op_error(
                "drop_table",
                Failed {
                    error,
                    elapsed: started.elapsed(),
                },
            )
        })
    }

    /// Closes the store's connections. Later operations, on this store and
    /// on every clone or [`with_table`](Self::with_table) sibling, fail with
    /// a permanent [`Error::Backend`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The statement behind each operation, for tools that `EXPLAIN` them
    /// (this crate's index tests). Not a stable API.
    #[doc(hidden)]
    pub fn statements_for_tests(&self) -> Vec<(&'static str, &str)> {
        let s = &self.table.sql;
        vec![
            ("create", &*s.create),
            ("create (key in the table)", &*s.create_or_replace),
            ("load", &*s.load),
            ("update", &*s.update),
            ("update (row changed meanwhile)", &*s.update_locked),
            ("overwrite", &*s.overwrite),
            ("overwrite (row changed meanwhile)", &*s.overwrite_locked),
            ("touch", &*s.touch),
            ("rotate", &*s.rotate),
            ("rotate (new key in the table)", &*s.rotate_locked),
            ("was_rotated", &*s.was_rotated),
            ("delete", &*s.delete),
            ("list_by_owner", &*s.list_by_owner),
            ("delete_by_owner", &*s.delete_by_owner_for_explain),
            ("delete_expired", &*s.delete_expired),
        ]
    }

    /// The seed of the owner lock keys, `hashtextextended(owner, seed)`,
    /// that the statements making a row `owner`'s take in shared mode, and
    /// `delete_by_owner` exclusively, for tests that stand in for such a
    /// writer. Not a stable API.
    #[doc(hidden)]
    pub fn owner_lock_seed_for_tests(&self) -> i64 {
        self.table.lock_seed
    }

    /// Opens (or reuses) one connection, which proves the server is reachable
    /// and the credentials are right.
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        let mut lease = self.pool.acquire().await?;
        lease.settle(None);
        Ok(())
    }

    fn op_error(&self, op: &'static str, failed: Failed) -> Error {
        let Failed { error: source, elapsed } = failed;
        let table = self.table.display.clone();
        if let sqlx::Error::Database(db) = &source
            && is_query_canceled(&source)
        {
            let error = match cancel_cause(db.message(), elapsed, self.statement_timeout) {
                CancelCause::Timeout => PostgresError::StatementTimeout {
                    op,
                    table,
                    // Ours only if the statement ran that long; a shorter
                    // server-side setting canceled it otherwise.
                    timeout: self.statement_timeout.filter(|t| elapsed >= *t),
                    source,
                },
                CancelCause::Other => PostgresError::Canceled {
                    op,
                    table,
                    elapsed,
                    source,
                },
            };
            return backend(error, true);
        }
        let transient = is_transient(&source);
        backend(PostgresError::Statement { op, table, source }, transient)
    }

    /// The operation was attempted `attempts` times and met a concurrent
    /// change of the same rows every time; nothing was applied.
    fn kept_changing(&self, op: &'static str, attempts: u32) -> Error {
        backend(
            PostgresError::KeptChanging {
                op,
                table: self.table.display.clone(),
                attempts,
            },
            true,
        )
    }

    fn statement(sql: &Arc<str>) -> PgQuery<'static> {
        query(AssertSqlSafe(Arc::clone(sql)))
    }

    /// Sends the statement that `make` builds on one connection and reads
    /// its result the way `wanted` says. Normally one attempt, one round
    /// trip. When the server aborted the statement as a deadlock victim or
    /// for a serialization failure, nothing of it was applied, so it is sent
    /// again (at most [`ABORTED_STATEMENT_ATTEMPTS`] times in all).
    async fn run<Q>(&self, op: &'static str, wanted: Wanted, make: impl Fn() -> Q) -> Result<Got, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        self.send(wanted, make).await?.map_err(|f| self.op_error(op, f))
    }

    /// [`run`](Self::run) for a statement that fails with a unique
    /// violation when the key it inserts is already in the table: `None`
    /// then, and nothing of the statement was applied.
    async fn run_or_taken<Q>(
        &self,
        op: &'static str,
        wanted: Wanted,
        make: impl Fn() -> Q,
    ) -> Result<Option<Got>, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        match self.send(wanted, make).await? {
            Err(f) if is_unique_violation(&f.error) => Ok(None),
            other => other.map(Some).map_err(|f| self.op_error(op, f)),
        }
    }

    /// The sending and retrying behind [`run`](Self::run); the statement's
    /// own failure is left to the caller to map.
    async fn send<Q>(&self, wanted: Wanted, make: impl Fn() -> Q) -> Result<Result<Got, Failed>, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        let mut lease = self.pool.acquire().await?;
        let mut attempt = 1;
        loop {
            let q = make();
            let conn = lease.conn();
            let started = Instant::now();
            let result = match wanted {
                Wanted::RowsAffected => conn.execute(q).await.map(|r| Got::RowsAffected(r.rows_affected())),
                Wanted::AtMostOneRow => conn.fetch_optional(q).await.map(Got::AtMostOneRow),
                Wanted::AllRows => conn.fetch_all(q).await.map(Got::AllRows),
            };
            lease.settle(result.as_ref().err());
            match result {
                Err(e) if attempt < ABORTED_STATEMENT_ATTEMPTS && is_aborted_without_effect(&e) => {
                    tracing::debug!(error = %e, "PostgreSQL session store: retrying an aborted statement");
                    attempt += 1;
                }
                other => {
                    return Ok(other.map_err(|error| Failed {
                        error,
                        elapsed: started.elapsed(),
                    }));
                }
            }
        }
    }

    /// Runs a statement that changes rows; returns how many.
    async fn execute(&self, op: &'static str, make: impl Fn() -> PgQuery<'static>) -> Result<u64, Error> {
        let got = self.run(op, Wanted::RowsAffected, make).await?;
        got.rows_affected().ok_or_else(|| self.unexpected(op))
    }

    /// Runs a lean statement that changes rows; how many, or `None` if the
    /// key it inserts was already in the table (nothing was applied).
    async fn execute_or_taken(
        &self,
        op: &'static str,
        make: impl Fn() -> PgQuery<'static>,
    ) -> Result<Option<u64>, Error> {
        match self.run_or_taken(op, Wanted::RowsAffected, make).await? {
            Some(got) => got.rows_affected().map(Some).ok_or_else(|| self.unexpected(op)),
            None => Ok(None),
        }
    }

    /// Runs a statement that returns at most one row.
    async fn fetch_optional<Q>(&self, op: &'static str, make: impl Fn() -> Q) -> Result<Option<PgRow>, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        let got = self.run(op, Wanted::AtMostOneRow, make).await?;
        got.at_most_one_row().ok_or_else(|| self.unexpected(op))
    }

    /// Runs a statement that returns at most one row, or `None` if the key
    /// it inserts was already in the table (nothing was applied).
    async fn fetch_optional_or_taken(
        &self,
        op: &'static str,
        make: impl Fn() -> PgQuery<'static>,
    ) -> Result<Option<Option<PgRow>>, Error> {
        match self.run_or_taken(op, Wanted::AtMostOneRow, make).await? {
            Some(got) => got.at_most_one_row().map(Some).ok_or_else(|| self.unexpected(op)),
            None => Ok(None),
        }
    }

    /// Runs a statement that always returns exactly one row.
    async fn fetch_one<Q>(&self, op: &'static str, make: impl Fn() -> Q) -> Result<PgRow, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        self.fetch_optional(op, make).await?.ok_or_else(|| self.unexpected(op))
    }

    /// Runs a statement that returns any number of rows.
    async fn fetch_all(&self, op: &'static str, make: impl Fn() -> PgQuery<'static>) -> Result<Vec<PgRow>, Error> {
        let got = self.run(op, Wanted::AllRows, make).await?;
        got.all_rows().ok_or_else(|| self.unexpected(op))
    }

    /// A statement answered in a shape it cannot have (no row where one is
    /// always returned): the table is not what the migrations made.
    fn unexpected(&self, op: &'static str) -> Error {
        backend(
            PostgresError::Statement {
                op,
                table: self.table.display.clone(),
                source: sqlx::Error::RowNotFound,
            },
            false,
        )
    }
}

/// A statement's failure and how long it had run (to tell a statement
/// timeout from another cancel).
struct Failed {
    error: sqlx::Error,
    elapsed: Duration,
}

/// What a statement's caller reads from it.
#[derive(Clone, Copy)]
enum Wanted {
    RowsAffected,
    AtMostOneRow,
    AllRows,
}

/// What was read, by [`Wanted`].
enum Got {
    RowsAffected(u64),
    AtMostOneRow(Option<PgRow>),
    AllRows(Vec<PgRow>),
}

impl Got {
    fn rows_affected(self) -> Option<u64> {
        match self {
            Got::RowsAffected(n) => Some(n),
            _ => None,
        }
    }

    fn at_most_one_row(self) -> Option<Option<PgRow>> {
        match self {
            Got::AtMostOneRow(row) => Some(row),
            _ => None,
        }
    }

    fn all_rows(self) -> Option<Vec<PgRow>> {
        match self {
            Got::AllRows(rows) => Some(rows),
            _ => None,
        }
    }
}

/// What the `(current, updated)` row of an `update` or `overwrite` means.
enum Written {
    /// Written; the new version.
    Version(u64),
    /// Nothing written although the statement's snapshot showed a live row
    /// at a version it could write: the row changed after the snapshot.
    Changed,
}

/// Reads the `(current, updated)` row of an `update` (`expected`: the
/// version it expects, `None` if no stored version can be it) or an
/// `overwrite` (`expected`: `None`, unused).
fn written(row: &PgRow, expected: Option<Option<i64>>) -> Result<Written, Error> {
    let current: Option<i64> = row::optional(row, "current")?;
    let updated: Option<i64> = row::optional(row, "updated")?;
    match (current, updated) {
        (_, Some(new_version)) => Ok(Written::Version(row::version(new_version)?)),
        (None, None) => Err(Error::NotFound),
        (Some(current), None) => match expected {
            Some(expected) if expected != Some(current) => Err(Error::Conflict {
                current: row::version(current)?,
            }),
            // The version the write wanted (any, for an overwrite): either
            // it cannot grow (refused, nothing written), or the row changed.
            _ => row::incrementable(current).map(|_| Written::Changed),
        },
    }
}

/// `validate_owner` for an owner a store call writes or looks up: the
/// contract's owners are the only ones PostgreSQL can store and index (no
/// NUL in `text`, B-tree entries of at most about 2.7 KB), so any other is
/// refused here with [`Error::InvalidOwner`] saying what is wrong, before
/// anything is sent.
fn check_owner(owner: Option<&str>) -> Result<(), Error> {
    owner.map_or(Ok(()), validate_owner)
}

/// How many times a statement is sent when the server keeps aborting it as a
/// deadlock victim or for a serialization failure.
const ABORTED_STATEMENT_ATTEMPTS: u32 = 3;

/// How many times `delete` and `rotate_locked` are sent when each attempt
/// meets a concurrent write of the same key between its snapshot and its
/// own write (each retry needs another such write to commit in that
/// window of microseconds).
const CHANGED_ROW_ATTEMPTS: u32 = 8;

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        let owner = record.owner.as_deref();
        check_owner(owner)?;
        let lean = || {
            Self::statement(&self.table.sql.create)
                .bind(record.key.as_bytes().as_slice())
                .bind(record.data.as_ref())
                .bind(record.created_at.as_millis())
                .bind(record.expires_at.as_millis())
                .bind(owner)
        };
        if self.execute_or_taken("create", lean).await?.is_some() {
            return Ok(());
        }
        // The key is in the table: live (AlreadyExists) or not (replaced).
        let q = || {
            Self::statement(&self.table.sql.create_or_replace)
                .bind(record.key.as_bytes().as_slice())
                .bind(record.data.as_ref())
                .bind(record.created_at.as_millis())
                .bind(record.expires_at.as_millis())
                .bind(owner)
                .bind(now.as_millis())
        };
        match self.execute("create", q).await? {
            0 => Err(Error::AlreadyExists),
            _ => Ok(()),
        }
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        let q = || {
            Self::statement(&self.table.sql.load)
                .bind(key.as_bytes().as_slice())
                .bind(now.as_millis())
        };
        match self.fetch_optional("load", q).await? {
            Some(row) => row::record(*key, &row).map(Some),
            None => Ok(None),
        }
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        let owner = update.owner.as_deref();
        check_owner(owner)?;
        // A version beyond i64 can match no stored one: NULL compares false,
        // and the statement reports the stored version as a conflict.
        let expected = i64::try_from(update.expected_version).ok();
        let q = |sql: &Arc<str>| {
            Self::statement(sql)
                .bind(key.as_bytes().as_slice())
                .bind(expected)
                .bind(update.data.as_ref())
                .bind(update.expires_at.as_millis())
                .bind(owner)
                .bind(now.as_millis())
        };
        let row = self.fetch_one("update", || q(&self.table.sql.update)).await?;
        if let Written::Version(v) = written(&row, Some(expected))? {
            return Ok(v);
        }
        // The snapshot showed the expected version, yet the write found the
        // row changed after it: ask again under the row lock.
        let row = self.fetch_one("update", || q(&self.table.sql.update_locked)).await?;
        match written(&row, Some(expected))? {
            Written::Version(v) => Ok(v),
            // Under the row lock, the expected and writable version is
            // always written.
            Written::Changed => Err(self.unexpected("update")),
        }
    }

    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        let owner = write.owner.as_deref();
        check_owner(owner)?;
        let q = |sql: &Arc<str>| {
            Self::statement(sql)
                .bind(key.as_bytes().as_slice())
                .bind(write.data.as_ref())
                .bind(write.expires_at.as_millis())
                .bind(owner)
                .bind(now.as_millis())
        };
        let row = self.fetch_one("overwrite", || q(&self.table.sql.overwrite)).await?;
        if let Written::Version(v) = written(&row, None)? {
            return Ok(v);
        }
        let row = self
            .fetch_one("overwrite", || q(&self.table.sql.overwrite_locked))
            .await?;
        match written(&row, None)? {
            Written::Version(v) => Ok(v),
            Written::Changed => Err(self.unexpected("overwrite")),
        }
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        let q = || {
            Self::statement(&self.table.sql.touch)
                .bind(key.as_bytes().as_slice())
                .bind(expires_at.as_millis())
                .bind(now.as_millis())
        };
        Ok(self.execute("touch", q).await? > 0)
    }

    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        check_owner(set_owner)?;
        if old_key == new_key {
            // Nothing can move: NotFound if the session is not live, else
            // the new key is taken (by it).
            let q = || {
                Self::statement(&self.table.sql.load)
                    .bind(old_key.as_bytes().as_slice())
                    .bind(now.as_millis())
            };
            return match self.fetch_optional("rotate", q).await? {
                Some(_) => Err(Error::AlreadyExists),
                None => Err(Error::NotFound),
            };
        }
        // The lean statement keeps the session in its row's chain, which
        // `delete_by_owner` follows, so only a new owner takes its lock.
        let mark_until = now.saturating_add(ROTATION_MARK_TTL).as_millis();
        let q = |sql: &Arc<str>| {
            Self::statement(sql)
                .bind(old_key.as_bytes().as_slice())
                .bind(new_key.as_bytes().as_slice())
                .bind(set_owner)
                .bind(now.as_millis())
                .bind(mark_until)
        };
        if let Some(row) = self
            .fetch_optional_or_taken("rotate", || q(&self.table.sql.rotate))
            .await?
        {
            let row = row.ok_or_else(|| self.unexpected("rotate"))?;
            if row::required::<bool>(&row, "was_moved")? {
                return row::moved(*new_key, &row);
            }
            // Both from the snapshot when the new key was live there;
            // otherwise the UPDATE found no live session under the old key.
            let taken = row::required::<bool>(&row, "new_live")? && row::required::<bool>(&row, "old_live")?;
            return Err(if taken { Error::AlreadyExists } else { Error::NotFound });
        }
        // The new key is in the table but was not live in the snapshot.
        for _ in 0..CHANGED_ROW_ATTEMPTS {
            let row = self.fetch_one("rotate", || q(&self.table.sql.rotate_locked)).await?;
            if !row::required::<bool>(&row, "old_live")? {
                return Err(Error::NotFound);
            }
            if !row::required::<bool>(&row, "unchanged")? {
                // The session's owner (so the lock it took is another's),
                // or the rows under the two keys, changed after the
                // statement's snapshot: nothing was applied; the next
                // snapshot sees the change.
                continue;
            }
            if !row::required::<bool>(&row, "was_moved")? {
                return Err(Error::AlreadyExists);
            }
            return row::moved(*new_key, &row);
        }
        Err(self.kept_changing("rotate", CHANGED_ROW_ATTEMPTS + 1))
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let q = || {
            Self::statement(&self.table.sql.was_rotated)
                .bind(key.as_bytes().as_slice())
                .bind(now.as_millis())
        };
        Ok(self.fetch_optional("was_rotated", q).await?.is_some())
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let q = || {
            Self::statement(&self.table.sql.delete)
                .bind(key.as_bytes().as_slice())
                .bind(now.as_millis())
        };
        for _ in 0..CHANGED_ROW_ATTEMPTS {
            let row = self.fetch_one("delete", q).await?;
            if row::required::<bool>(&row, "removed")? {
                return row::required(&row, "was_live");
            }
            if !row::required::<bool>(&row, "seen")? {
                return Ok(false);
            }
            // The snapshot had a row the DELETE then found gone or moved
            // away: a rotate from this key may have left a mark the
            // snapshot cannot see. Ask again with a fresh one.
        }
        Err(self.kept_changing("delete", CHANGED_ROW_ATTEMPTS))
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        check_owner(Some(owner))?;
        let q = || {
            Self::statement(&self.table.sql.list_by_owner)
                .bind(owner)
                .bind(now.as_millis())
        };
        let rows = self.fetch_all("list_by_owner", q).await?;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in &rows {
            match row::owned_session(row) {
                Ok(session) => sessions.push(session),
                // One damaged row must not hide the owner's other sessions.
                Err(e) => tracing::warn!(
                    table = %self.table.display,
                    key = %row::key_for_log(row),
                    error = %e,
                    "PostgreSQL session store: list_by_owner skipped a session row it cannot read"
                ),
            }
        }
        Ok(sessions)
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        check_owner(Some(owner))?;
        // A simple-protocol query (see `Statements::delete_by_owner`): the
        // owner travels hex-encoded, so it needs no escaping.
        let sql = self.table.sql.delete_by_owner(owner, now.as_millis());
        let q = || raw_sql(AssertSqlSafe(sql.clone()));
        let row = self.fetch_one("delete_by_owner", q).await?;
        let live: i64 = row::required(&row, "live")?;
        u64::try_from(live).map_err(|_| Error::Corrupt(format!("a row count of {live}")))
    }

    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        if limit == 0 {
            return Ok(0);
        }
        let q = || {
            Self::statement(&self.table.sql.delete_expired)
                .bind(now.as_millis())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        };
        self.execute("delete_expired", q).await
    }
}
