//! # store-postgres: sessions in PostgreSQL
//!
//! [`PostgresStore`] implements the [`SessionStore`] contract on PostgreSQL
//! through sqlx, so a [`SessionManager`](session_core::SessionManager) runs
//! on it as on any other store.
//!
//! **Pick it** when your application already runs PostgreSQL and sessions
//! must survive restarts and be shared by every instance of the
//! application, without adding Redis to the stack. **Pick another store**
//! for the lowest latency at high request rates (`store-redis`), for one
//! process that keeps sessions on its own disk (`store-sled`), or when
//! nothing needs to survive a restart (`store-memory`).
//!
//! ## Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_core::{Config, SessionManager, SessionStore, Timestamp};
//! use store_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), session_core::Error> {
//! let store = PostgresStore::connect("postgres://app:secret@db.internal:5432/app").await?;
//! store.migrate().await?; // creates or upgrades `public.sessions`
//!
//! // PostgreSQL has no TTL: sweep expired sessions in the background.
//! let sweeper = store.clone();
//! tokio::spawn(async move {
//!     loop {
//!         tokio::time::sleep(std::time::Duration::from_secs(60)).await;
//!         if let Err(e) = sweeper.delete_expired(Timestamp::now(), 5_000).await {
//!             tracing::warn!(error = %e, "session sweep failed; the next one retries");
//!         }
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
//!
//! `examples/basic.rs` walks through a login, a "your devices" listing and
//! a logout everywhere (`cargo run -p store-postgres --example basic`, with
//! `DATABASE_URL` set). [`PostgresStore::builder`] chooses the table,
//! connections, timeouts and durability.
//!
//! ## Guarantees
//!
//! - **One statement, one round trip per operation.** Every operation is a
//!   single SQL statement (with CTEs where it must read and write), so it is
//!   atomic, and costs one round trip once the statement is prepared on its
//!   connection (the first use on a new connection costs one more). Only
//!   races or leftovers on the same key (an expired row or rotation mark
//!   under a new key, a row changed between a statement's snapshot and its
//!   write) cost a second statement; fresh session ids never do. The
//!   crate's tests count the server's messages to prove it.
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
//!   open transactions. See [Owner locks](#owner-locks) below.
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
//!   nothing written. Nothing panics on any input.
//! - **Errors.** Server and connection failures give [`Error::Backend`],
//!   retryable where a retry may help ([`Error::is_retryable`]), with a
//!   [`PostgresError`] source that names the operation and the table and
//!   gives the server's message and SQLSTATE. A reply that the store's
//!   statements cannot give (a table that is not what the migrations made)
//!   is a non-retryable [`Error::Backend`] whose source,
//!   [`PostgresError::ImpossibleReply`], says what was expected. A
//!   configuration the builder refuses is [`Error::Config`], naming the
//!   setting.
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
//! ## Owner locks
//!
//! `delete_by_owner` ("log out everywhere") must see every session of the
//! owner at one instant, which a single statement in READ COMMITTED does
//! not: a login for the owner still in flight is not in its snapshot, and
//! would leave a live session after the logout. So every statement that
//! can make a session an owner's takes a shared, transaction-scoped
//! advisory lock on the owner's hash (`pg_advisory_xact_lock_shared`, keyed
//! by the owner and the table), and `delete_by_owner` takes it exclusively
//! before it deletes, in the same round trip. What this means for you:
//!
//! - a write for an owner waits only while a `delete_by_owner` of that same
//!   owner runs (one indexed delete); other owners, anonymous sessions,
//!   reads, touches and the sweep never wait;
//! - no table lock is taken, so VACUUM, ANALYZE and migrations are never
//!   held up;
//! - advisory locks need no privilege, and being transaction-scoped they
//!   work behind PgBouncer in transaction mode;
//! - the locks show in `pg_locks` as `advisory`; each is held for one
//!   statement.
//!
//! The reasons and the alternatives are in the repository's
//! `docs/decisions/0011-postgres-owner-locks.md`.
//!
//! ## Connections: pool sizing and timeouts
//!
//! The store keeps its own small pool of connections instead of a sqlx
//! `PgPool`, because sqlx pings a pooled connection when it is given back
//! and handed out: three round trips per operation instead of one.
//!
//! - **Sizing.** [`max_connections`](PostgresStoreBuilder::max_connections)
//!   (default [`DEFAULT_MAX_CONNECTIONS`]) per store and its clones;
//!   connections open on demand and stay while healthy. Each operation
//!   holds one for a single statement, so a few connections serve many
//!   concurrent requests; raise it when operations report acquire timeouts
//!   under load, and keep `max_connections` × instances below the server's
//!   own `max_connections` (less what other clients need).
//! - **Waiting for a connection.** An operation waits at most
//!   [`acquire_timeout`](PostgresStoreBuilder::acquire_timeout) (default
//!   [`DEFAULT_ACQUIRE_TIMEOUT`]) for a free connection, and as long to open
//!   one, then fails with a retryable [`Error::Backend`].
//! - **Statement timeout.** The server cancels a statement that runs longer
//!   than [`statement_timeout`](PostgresStoreBuilder::statement_timeout)
//!   (default [`DEFAULT_STATEMENT_TIMEOUT`]; typically one stuck behind a
//!   lock someone else holds): a retryable [`Error::Backend`] whose source
//!   is [`PostgresError::StatementTimeout`], told apart from an
//!   administrator's cancel ([`PostgresError::Canceled`]). The setting
//!   travels in the connection's startup packet (no extra round trip), as
//!   `synchronous_commit = off` does when chosen.
//! - **Failures.** After a connection breaks (server restart, failover,
//!   `pg_terminate_backend`), the operations in flight fail with a
//!   retryable [`Error::Backend`], older connections are retired, and the
//!   next operations open fresh ones: the store recovers by itself. As with
//!   any networked store, an operation that failed this way may or may not
//!   have been applied.
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

// The items the docs above link to.
#[cfg(doc)]
use session_core::{Error, SessionStore, validate_owner};

mod builder;
mod error;
mod exec;
mod migrations;
mod pool;
mod row;
mod statements;
mod store;
mod table;
#[cfg(feature = "test-hooks")]
pub mod testing;

pub use builder::{DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT, PostgresStoreBuilder};
pub use error::PostgresError;
pub use migrations::SCHEMA_VERSION;
pub use store::PostgresStore;
pub use table::{MAX_SCHEMA_NAME_LEN, MAX_TABLE_NAME_LEN};
