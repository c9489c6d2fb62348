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
//! command connects again, one at a time (the others wait for that attempt
//! rather than each opening a socket), retrying with a backoff.

use std::sync::RwLock;
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
    // Held while connecting, so that one attempt serves every waiter.
    connecting: tokio::sync::Mutex<u64>,
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
            connecting: tokio::sync::Mutex::new(0),
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
        let mut generation = self.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
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
                Err(e) if attempt >= self.retries => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_delay);
                }
            }
        };
        *generation += 1;
        let c = (*generation, connection);
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
