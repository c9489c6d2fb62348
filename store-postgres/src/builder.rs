//! [`PostgresStoreBuilder`]: where the store's table, connections, timeouts
//! and durability are chosen.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use session_core::{ConfigError, Error};
use sqlx::postgres::PgConnectOptions;

use crate::pool::Pool;
use crate::store::PostgresStore;
use crate::table::Table;
use crate::table::TableName;

/// Default number of connections the store opens at most.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// Default wait for a free connection, and for opening one.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default statement timeout: far above any healthy operation (one indexed
/// row), short enough that a stuck lock fails a request instead of hanging it.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Configures a [`PostgresStore`].
///
/// Nothing is checked against the server here; [`build`](Self::build) and
/// [`connect`](Self::connect) validate the configuration (an invalid schema
/// or table name is refused there, before any SQL is built).
///
/// ```
/// use std::time::Duration;
/// use store_postgres::PostgresStore;
///
/// let store = PostgresStore::builder()
///     .url("postgres://app@db.internal/app")
///     .schema("auth")
///     .table("web_sessions")
///     .max_connections(20)
///     .statement_timeout(Duration::from_secs(2))
///     .build()?; // no connection yet: opened on first use
/// assert_eq!(store.table(), "auth.web_sessions");
///
/// let refused = PostgresStore::builder()
///     .url("postgres://app@db.internal/app")
///     .table("sessions; DROP TABLE users")
///     .build();
/// assert!(refused.is_err());
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresStoreBuilder {
    url: Option<String>,
    options: Option<PgConnectOptions>,
    schema: String,
    table: String,
    max_connections: u32,
    acquire_timeout: Duration,
    statement_timeout: Option<Duration>,
    synchronous_commit: bool,
    migrate_on_connect: bool,
    application_name: String,
}

impl Default for PostgresStoreBuilder {
    fn default() -> Self {
        Self {
            url: None,
            options: None,
            schema: "public".to_owned(),
            table: "sessions".to_owned(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            synchronous_commit: true,
            migrate_on_connect: false,
            application_name: "store-postgres".to_owned(),
        }
    }
}

impl PostgresStoreBuilder {
    /// The server, as a URL: `postgres://user:password@host:port/database`,
    /// with libpq-style parameters such as `?sslmode=require`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self.options = None;
        self
    }

    /// The server, as sqlx connect options (instead of a URL), for settings a
    /// URL cannot carry, such as certificates held in memory.
    pub fn connect_options(mut self, options: PgConnectOptions) -> Self {
        self.options = Some(options);
        self.url = None;
        self
    }

    /// The schema of the table; created by [`PostgresStore::migrate`] if
    /// missing. Default `public`. Must match `[a-z_][a-z0-9_]{0,62}` and not
    /// start with `pg_`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The table. Default `sessions`. Must match `[a-z_][a-z0-9_]{0,47}`
    /// (48 characters at most, so that the names derived from it, such as
    /// `<table>_migrations`, fit PostgreSQL's 63-byte identifiers).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The most connections the store opens (at least 1). Default 10.
    /// Connections are opened on demand and kept while healthy.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// How long an operation waits for a free connection, and how long
    /// opening a connection may take, before failing with a transient
    /// [`Error::Backend`]. Default 5 s.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The server-side `statement_timeout` of the store's connections: a
    /// statement running longer (typically waiting on a lock held by someone
    /// else) is canceled and the operation fails with a transient
    /// [`Error::Backend`] whose source is
    /// [`PostgresError::StatementTimeout`](crate::PostgresError::StatementTimeout).
    /// Default 5 s; `None` (or zero) uses the server's setting.
    pub fn statement_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.statement_timeout = timeout.into().filter(|t| !t.is_zero());
        self
    }

    /// The durability trade-off. `true` (the default): an operation returns
    /// after its commit is flushed to disk, so an acknowledged write survives
    /// a server crash. `false` sets `synchronous_commit = off` for the store's
    /// connections only: commits return before the flush, which is several
    /// times faster on slow disks, and a server crash (not a clean restart)
    /// may lose the writes of roughly the last `3 × wal_writer_delay` (600 ms
    /// by default). Nothing is ever corrupted or half-applied either way.
    /// For sessions this may be acceptable: the loss is a few logins or
    /// renewals; it is still off by default.
    pub fn synchronous_commit(mut self, on: bool) -> Self {
        self.synchronous_commit = on;
        self
    }

    /// Whether [`connect`](Self::connect) also runs the migrations. Default
    /// `false`: call [`PostgresStore::migrate`] yourself (at deployment, or
    /// at startup) when the application's role may not change the schema.
    pub fn migrate_on_connect(mut self, on: bool) -> Self {
        self.migrate_on_connect = on;
        self
    }

    /// The `application_name` the connections report to the server (seen in
    /// `pg_stat_activity`), unless the connect options set one. Default
    /// `store-postgres`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Validates the configuration and makes the store without connecting:
    /// connections are opened by the first operations.
    ///
    /// Errors: [`Error::Config`] naming the setting (`schema`, `table`,
    /// `url`, `max_connections`) and what is wrong with it.
    pub fn build(self) -> Result<PostgresStore, Error> {
        let name = TableName::new(&self.schema, &self.table)?;
        if self.max_connections == 0 {
            return Err(ConfigError::new("max_connections", "must be at least 1").into());
        }
        let mut options = match (self.options, self.url) {
            (Some(options), _) => options,
            (None, Some(url)) => PgConnectOptions::from_str(&url)
                // sqlx's message names what it could not parse, never the
                // URL itself, which may hold a password.
                .map_err(|e| ConfigError::new("url", format!("not a PostgreSQL URL: {e}")))?,
            (None, None) => {
                return Err(ConfigError::new("url", "no PostgreSQL URL or connect options were given").into());
            }
        };
        if options.get_application_name().is_none() {
            options = options.application_name(&self.application_name);
        }
        // Session settings travel in the startup packet: they cost no round
        // trip, unlike a `SET` after connecting.
        let mut settings: Vec<(&str, String)> = Vec::new();
        if let Some(timeout) = self.statement_timeout {
            // Rounded up: a sub-millisecond timeout must not become 0 (off).
            let ms = timeout.as_millis().max(1);
            settings.push(("statement_timeout", format!("{ms}ms")));
        }
        if !self.synchronous_commit {
            settings.push(("synchronous_commit", "off".to_owned()));
        }
        if !settings.is_empty() {
            options = options.options(settings);
        }
        let pool = Arc::new(Pool::new(options, self.max_connections, self.acquire_timeout));
        Ok(PostgresStore {
            pool,
            table: Arc::new(Table::new(name)),
            statement_timeout: self.statement_timeout,
        })
    }

    /// Like [`build`](Self::build), then opens one connection to check that
    /// the server is reachable, and runs the migrations if
    /// [`migrate_on_connect`](Self::migrate_on_connect) is set.
    pub async fn connect(self) -> Result<PostgresStore, Error> {
        let migrate = self.migrate_on_connect;
        let store = self.build()?;
        if migrate {
            store.migrate().await?;
        } else {
            store.ping().await?;
        }
        Ok(store)
    }
}
