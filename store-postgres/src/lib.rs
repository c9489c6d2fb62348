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

pub use builder::{DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT, PostgresStoreBuilder};
pub use error::PostgresError;
pub use migrations::SCHEMA_VERSION;
pub use store::PostgresStore;
pub use table::{MAX_SCHEMA_NAME_LEN, MAX_TABLE_NAME_LEN};
