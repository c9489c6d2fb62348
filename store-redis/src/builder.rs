//! [`RedisStoreBuilder`]: the URL, key prefix, timeouts and reconnect policy.

use std::time::Duration;

use redis::AsyncConnectionConfig;
use session_core::{ConfigError, Error};

use crate::RedisStore;
use crate::connection::{Conn, Link};
use crate::error::{self, Timeouts};
use crate::keys::KeyLayout;

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "session:";

/// Default time to wait for a reply. redis-rs 1.x would use 500 ms, which a
/// busy server or a large `delete_by_owner` can exceed; a session lookup that
/// takes longer than a second is better reported than waited for.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Default time to wait for one connection attempt.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Default number of reconnect attempts after the first one fails, before the
/// waiting operations fail.
pub const DEFAULT_RECONNECT_RETRIES: usize = 2;

/// First delay between reconnect attempts; it doubles per
/// attempt, up to [`MAX_RECONNECT_DELAY`].
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(50);

/// Longest delay between two reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Default number of times the cluster client resends a command after a
/// redirection it cannot follow at once (`TRYAGAIN` during a slot
/// migration, `CLUSTERDOWN` during a failover) or a lost connection.
pub const DEFAULT_CLUSTER_RETRIES: u32 = 8;

/// Default shortest wait before such a resend. redis-rs would wait at least
/// 1.28 s, which turns every `TRYAGAIN` of a slot migration into a
/// second-long stall; a migration step takes milliseconds.
pub const DEFAULT_CLUSTER_MIN_RETRY_WAIT: Duration = Duration::from_millis(10);

/// Default longest wait between two resends.
pub const DEFAULT_CLUSTER_MAX_RETRY_WAIT: Duration = Duration::from_millis(500);

/// Default limit on one operation on a cluster, resends included: long
/// enough to ride out a failover whose node timeout is a few seconds.
pub const DEFAULT_CLUSTER_OPERATION_TIMEOUT: Duration = Duration::from_secs(6);

/// The cluster settings of a builder made by
/// [`RedisStore::cluster_builder`](crate::RedisStore::cluster_builder).
#[derive(Debug, Clone)]
struct ClusterSettings {
    nodes: Vec<String>,
    retries: u32,
    min_retry_wait: Duration,
    max_retry_wait: Duration,
    operation_timeout: Duration,
}

/// Configures and connects a [`RedisStore`].
///
/// ```no_run
/// use std::time::Duration;
/// use store_redis::RedisStore;
///
/// # async fn example() -> Result<(), session_core::Error> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .prefix("myapp:session:")
///     .response_timeout(Duration::from_millis(250))
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    response_timeout: Duration,
    connection_timeout: Duration,
    reconnect_retries: usize,
    ttl_grace: Duration,
    cluster: Option<ClusterSettings>,
}

impl RedisStoreBuilder {
    pub(crate) fn new(url: String) -> Self {
        Self {
            url,
            prefix: DEFAULT_PREFIX.to_owned(),
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            reconnect_retries: DEFAULT_RECONNECT_RETRIES,
            ttl_grace: Duration::ZERO,
            cluster: None,
        }
    }

    pub(crate) fn new_cluster(nodes: Vec<String>) -> Self {
        let mut b = Self::new(String::new());
        b.cluster = Some(ClusterSettings {
            nodes,
            retries: DEFAULT_CLUSTER_RETRIES,
            min_retry_wait: DEFAULT_CLUSTER_MIN_RETRY_WAIT,
            max_retry_wait: DEFAULT_CLUSTER_MAX_RETRY_WAIT,
            operation_timeout: DEFAULT_CLUSTER_OPERATION_TIMEOUT,
        });
        b
    }

    /// On a cluster: how many times a command is resent after `TRYAGAIN`,
    /// `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`, `READONLY` or a lost
    /// connection (default [`DEFAULT_CLUSTER_RETRIES`]), waiting between
    /// `min_wait` and `max_wait` (growing exponentially, jittered; defaults
    /// [`DEFAULT_CLUSTER_MIN_RETRY_WAIT`], [`DEFAULT_CLUSTER_MAX_RETRY_WAIT`]).
    /// `MOVED` and `ASK` are followed at once and do not count. A resent
    /// write is safe: see the crate docs on operation ids. Ignored on one
    /// server.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::cluster_builder(["redis://127.0.0.1:7000"])
    ///     .cluster_retries(4, Duration::from_millis(20), Duration::from_millis(200))
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn cluster_retries(mut self, retries: u32, min_wait: Duration, max_wait: Duration) -> Self {
        if let Some(c) = &mut self.cluster {
            c.retries = retries;
            c.min_retry_wait = min_wait;
            c.max_retry_wait = max_wait.max(min_wait);
        }
        self
    }

    /// On a cluster: the limit on one operation, resends included (default
    /// [`DEFAULT_CLUSTER_OPERATION_TIMEOUT`]); each reply is still awaited
    /// at most [`response_timeout`](Self::response_timeout). Ignored on one
    /// server.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::cluster_builder(["redis://127.0.0.1:7000"])
    ///     .cluster_operation_timeout(std::time::Duration::from_secs(10))
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn cluster_operation_timeout(mut self, timeout: Duration) -> Self {
        if let Some(c) = &mut self.cluster {
            c.operation_timeout = timeout;
        }
        self
    }

    /// The prefix of every key this store writes (default
    /// [`DEFAULT_PREFIX`]). Several applications, or several stores, share
    /// one Redis by using distinct prefixes. It must not contain `{` or `}`
    /// (they would break the hash tags): [`connect`](Self::connect) refuses it
    /// with [`Error::Config`].
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::builder("redis://127.0.0.1:6379")
    ///     .prefix("myapp:session:")
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for the reply to one command before the operation
    /// fails with a transient [`Error::Backend`], whose message names the
    /// operation and this duration. Default [`DEFAULT_RESPONSE_TIMEOUT`].
    /// The operation may still have taken effect on the server: after a
    /// timeout, a write's outcome is unknown.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::builder("redis://127.0.0.1:6379")
    ///     .response_timeout(std::time::Duration::from_millis(250))
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long to wait for one connection attempt (at start and on every
    /// reconnect). Default [`DEFAULT_CONNECTION_TIMEOUT`].
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::builder("redis://127.0.0.1:6379")
    ///     .connection_timeout(std::time::Duration::from_millis(500))
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How many times to retry connecting after a failed attempt, with a
    /// backoff from 50 ms doubling up to 500 ms, before the operations
    /// waiting for the connection fail. Default [`DEFAULT_RECONNECT_RETRIES`].
    /// The next operation after such a failure starts a new round.
    ///
    /// While the server is unreachable an operation therefore fails after at
    /// most about `(retries + 1) × connection_timeout` plus the backoff; when
    /// connected, after at most `response_timeout`.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::builder("redis://127.0.0.1:6379")
    ///     .reconnect_retries(5)
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// Extra time the server keeps a record after its `expires_at` (default
    /// zero). Liveness is always judged by the caller's `now`, so this never
    /// makes a session live longer; it only keeps a Redis whose clock runs
    /// ahead of the application's from removing a record that is still live
    /// by the application's clock.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::builder("redis://127.0.0.1:6379")
    ///     .ttl_grace(std::time::Duration::from_secs(5))
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn ttl_grace(mut self, grace: Duration) -> Self {
        self.ttl_grace = grace;
        self
    }

    /// Connects and returns the store.
    ///
    /// Errors: [`Error::Config`] for a malformed URL or prefix, before any
    /// I/O; a transient [`Error::Backend`] if the server cannot be reached.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::builder("redis://127.0.0.1:6379")
    ///     .prefix("myapp:session:")
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(self) -> Result<RedisStore, Error> {
        let keys = KeyLayout::new(self.prefix)?;
        let timeouts = Timeouts {
            response: self.response_timeout,
            connection: self.connection_timeout,
        };
        let grace_ms = i64::try_from(self.ttl_grace.as_millis()).unwrap_or(i64::MAX);
        if let Some(c) = self.cluster {
            if c.nodes.is_empty() {
                return Err(Error::Config(ConfigError::new(
                    "nodes",
                    "a cluster needs at least one seed node",
                )));
            }
            let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            // Never reads from replicas: a replica may not have the last
            // write yet, and every operation must see it.
            let client = redis::cluster::ClusterClient::builder(c.nodes.iter().map(String::as_str))
                .retries(c.retries)
                .min_retry_wait(ms(c.min_retry_wait))
                .max_retry_wait(ms(c.max_retry_wait))
                .connection_timeout(self.connection_timeout)
                .response_timeout(self.response_timeout)
                .overall_response_timeout(Some(c.operation_timeout))
                .build()
                .map_err(|e| {
                    Error::Config(ConfigError::new(
                        "nodes",
                        format!("not a list of Redis URLs ({})", e.category()),
                    ))
                })?;
            let connection = client
                .get_async_connection()
                .await
                .map_err(|e| error::error("connect", timeouts, e))?;
            return Ok(RedisStore::from_parts(
                Conn::Cluster(connection),
                keys.for_cluster(),
                grace_ms,
                timeouts,
            ));
        }
        // The URL may hold a password: report what is wrong, not the URL.
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| Error::Config(ConfigError::new("url", format!("not a Redis URL ({})", e.category()))))?;
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connection_timeout));
        let connection = Link::connect(
            client,
            config,
            self.reconnect_retries,
            MIN_RECONNECT_DELAY,
            MAX_RECONNECT_DELAY,
        )
        .await
        .map_err(|e| error::error("connect", timeouts, e))?;
        Ok(RedisStore::from_parts(Conn::One(connection), keys, grace_ms, timeouts))
    }
}
