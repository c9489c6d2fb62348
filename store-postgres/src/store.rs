//! [`PostgresStore`]: the store handle, its table-level tools (migrate,
//! another table on the same connections, drop, close) and the
//! [`SessionStore`] operations, each one statement of the `statements`
//! module sent through `exec`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    Error, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, SessionStore, StoreKey, Timestamp, Update, async_trait,
    validate_owner,
};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, raw_sql};

use crate::builder::PostgresStoreBuilder;
use crate::exec::Failed;
use crate::migrations::{self, SCHEMA_VERSION};
use crate::pool::Pool;
use crate::row;
use crate::table::{Table, TableName};

/// A PostgreSQL session store. Cheap to clone: clones share the connections.
///
/// Made by [`PostgresStore::connect`] or [`PostgresStore::builder`]; see
/// the [crate docs](crate) for its guarantees. Operations are those of
/// [`SessionStore`]; a [`SessionManager`](session_core::SessionManager) is
/// the usual way to call them.
///
/// ```no_run
/// use session_core::{SessionStore, Timestamp};
/// use store_postgres::PostgresStore;
///
/// # async fn run() -> Result<(), session_core::Error> {
/// let store = PostgresStore::connect("postgres://app@db.internal/app").await?;
/// store.migrate().await?;
/// let key = session_core::SessionId::generate()?.store_key();
/// assert!(store.load(&key, Timestamp::now()).await?.is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: Arc<Pool>,
    pub(crate) table: Arc<Table>,
    // Kept to name the timeout in errors, and to tell it from other cancels.
    pub(crate) statement_timeout: Option<Duration>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.table.display)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// A builder with the defaults: table `public.sessions`, 10 connections,
    /// 5 s statement timeout, synchronous commits, no migration at connect.
    ///
    /// ```
    /// use store_postgres::PostgresStore;
    ///
    /// let store = PostgresStore::builder()
    ///     .url("postgres://app@db.internal/app")
    ///     .table("web_sessions")
    ///     .build()?; // validated, not connected yet
    /// assert_eq!(store.table(), "public.web_sessions");
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder::default()
    }

    /// Connects to the server at `url` with every default (table
    /// `public.sessions`): `PostgresStore::builder().url(url).connect().await`.
    /// It opens one connection to check that the server answers and the
    /// credentials are right, and does not migrate: call
    /// [`migrate`](Self::migrate), or use the [`builder`](Self::builder) for
    /// anything else.
    ///
    /// Errors: [`Error::Config`] for a URL that does not parse; a
    /// [`Error::Backend`] when the server cannot be reached (retryable) or
    /// refuses the login.
    ///
    /// ```no_run
    /// use store_postgres::PostgresStore;
    ///
    /// # async fn run() -> Result<(), session_core::Error> {
    /// let store = PostgresStore::connect("postgres://app@db.internal/app").await?;
    /// store.migrate().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: impl Into<String>) -> Result<PostgresStore, Error> {
        Self::builder().url(url).connect().await
    }

    /// Creates or upgrades the table, its indexes and its migrations table,
    /// applying each embedded migration that this table has not seen yet.
    /// Idempotent; concurrent calls are serialized by an advisory lock.
    pub async fn migrate(&self) -> Result<(), Error> {
        self.migrate_up_to(SCHEMA_VERSION).await
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
    ///
    /// ```
    /// use store_postgres::PostgresStore;
    ///
    /// let store = PostgresStore::builder().url("postgres://app@db.internal/app").build()?;
    /// let tenant = store.with_table("tenant_7", "sessions")?;
    /// assert_eq!(tenant.table(), "tenant_7.sessions");
    /// assert!(store.with_table("tenant_7", "Sessions").is_err());
    /// # Ok::<(), session_core::Error>(())
    /// ```
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

    /// Opens (or reuses) one connection, which proves the server is reachable
    /// and the credentials are right.
    pub(crate) async fn ping(&self) -> Result<(), Error> {
        let mut lease = self.pool.acquire().await?;
        lease.settle(None);
        Ok(())
    }
}

/// Hooks for this crate's own tests, behind the `test-hooks` feature (see
/// `Cargo.toml`): hidden from the docs and not part of the API.
#[cfg(feature = "test-hooks")]
impl PostgresStore {
    /// [`migrate`](Self::migrate), stopping after migration `version`: how
    /// this crate's tests make a table of an older schema to upgrade. Not a
    /// stable API; the store's operations need the latest schema.
    #[doc(hidden)]
    pub async fn migrate_up_to_for_tests(&self, version: i64) -> Result<(), Error> {
        self.migrate_up_to(version).await
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
        self.table.sql.seed
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
            Written::Changed => Err(self.impossible(
                "update",
                "a new version: the row holds the expected version, which can grow, yet the write under its lock wrote nothing",
            )),
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
            Written::Changed => Err(self.impossible(
                "overwrite",
                "a new version: the row is live at a version that can grow, yet the write under its lock wrote nothing",
            )),
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
        if let Some(row) = self.fetch_one_or_taken("rotate", || q(&self.table.sql.rotate)).await? {
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
        u64::try_from(live).map_err(|_| self.impossible("delete_by_owner", "a count of at least 0"))
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
