//! [`Link`]: one multiplexed connection shared by every clone of a store,
//! replaced after it breaks.
//!
//! Why not redis-rs's `ConnectionManager`: it keeps the connection as a
//! shared future behind an `ArcSwap`, and every command clones, polls and
//! drops that future before it is sent. Here a command takes the current
//! connection from under a read lock (a few atomic operations) and sends on
//! it: the same path as a bare `MultiplexedConnection`, which is what the
//! raw client of the benchmarks uses.
//!
//! Reconnecting: a command that fails because the connection broke (I/O
//! error, dropped socket) marks it broken and returns its error; the next
//! command connects again, retrying with a backoff; commands that arrive
//! meanwhile wait for that round and share its outcome rather than each
//! opening a socket or starting a round of their own.

use std::sync::RwLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, RedisError, Value};

/// A connection and its generation, to tell a broken connection from its
/// replacement.
type Current = Option<(u64, MultiplexedConnection)>;

pub(crate) struct Link {
    client: Client,
    config: AsyncConnectionConfig,
    retries: usize,
    min_delay: Duration,
    max_delay: Duration,
    // A std lock: it is never held across an await.
    current: RwLock<Current>,
    // Held while connecting, so that one round of attempts serves every
    // waiter: it holds the last generation and the count and outcome of the
    // last failed round.
    connecting: tokio::sync::Mutex<Rounds>,
    // The count of failed rounds, readable without the lock: a waiter that
    // sees it change while it waited shares that round's error instead of
    // starting a round of its own (64 waiters would otherwise wait for 64
    // rounds one after another).
    failed_rounds: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Rounds {
    generation: u64,
    last_error: Option<RedisError>,
}

impl Link {
    /// Connects once (with retries); the error of the last attempt if none
    /// succeeds.
    pub(crate) async fn connect(
        client: Client,
        config: AsyncConnectionConfig,
        retries: usize,
        min_delay: Duration,
        max_delay: Duration,
    ) -> Result<Self, RedisError> {
        let link = Self {
            client,
            config,
            retries,
            min_delay,
            max_delay,
            current: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(Rounds::default()),
            failed_rounds: std::sync::atomic::AtomicU64::new(0),
        };
        link.connection().await?;
        Ok(link)
    }

    fn current(&self) -> Current {
        // A poisoned lock still holds a valid Option: nothing panics while
        // holding it but a clone.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn connection(&self) -> Result<(u64, MultiplexedConnection), RedisError> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let failed_before = self.failed_rounds.load(Ordering::Acquire);
        let mut rounds = self.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        if self.failed_rounds.load(Ordering::Acquire) != failed_before
            && let Some(e) = &rounds.last_error
        {
            return Err(e.clone());
        }
        let mut delay = self.min_delay;
        let mut attempt = 0;
        let connection = loop {
            match self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await
            {
                Ok(c) => break c,
                Err(e) if attempt >= self.retries => {
                    rounds.last_error = Some(e.clone());
                    self.failed_rounds.fetch_add(1, Ordering::Release);
                    return Err(e);
                }
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_delay);
                }
            }
        };
        rounds.generation += 1;
        rounds.last_error = None;
        let c = (rounds.generation, connection);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Sends `cmd` and reads its reply.
    pub(crate) async fn send(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        let (generation, mut connection) = self.connection().await?;
        let result = cmd.query_async::<Value>(&mut connection).await;
        if let Err(e) = &result
            && (e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error())
            && !e.is_timeout()
        {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            if current.as_ref().is_some_and(|(g, _)| *g == generation) {
                *current = None;
            }
        }
        result
    }
}

/// What a store sends on: one server's [`Link`], or a Redis Cluster
/// connection, which keeps a connection to every master, routes each
/// command by its first key and follows MOVED and ASK by itself.
// One per store, behind an Arc: boxing the Link would only add a pointer
// chase to every command on one server.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Conn {
    One(Link),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Conn {
    /// Sends `cmd` and reads its reply.
    pub(crate) async fn send(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self {
            Self::One(link) => link.send(cmd).await,
            // A clone is a handle on the same connections (a channel sender).
            Self::Cluster(c) => cmd.query_async::<Value>(&mut c.clone()).await,
        }
    }
}
