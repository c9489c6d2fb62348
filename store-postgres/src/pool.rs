//! The store's connection pool: a connection is handed out and taken back
//! without a single extra round trip.
//!
//! Why not sqlx's `PgPool`? In sqlx 0.9 a pooled connection costs up to two
//! pings besides the query: one when it is handed out
//! (`test_before_acquire`, which can be turned off) and one when it is given
//! back (`PoolConnection`'s drop handler always pings; there is no option).
//! Measured here, that is three round trips per operation instead of one. This
//! pool pings never. It relies instead on what sqlx already guarantees of a
//! `PgConnection`: after a server-side error the connection drains to
//! ReadyForQuery by itself, so only a connection whose *transport* failed, or
//! whose operation was cancelled half-way (its future dropped), is unusable,
//! and the pool knows both cases without asking the server.
//!
//! A dead idle connection (the server restarted, a proxy cut it) is found by
//! the operation that uses it, which fails with a transient
//! [`Error::Backend`]. Connections die together far more often than alone
//! (restart, failover, `pg_terminate_backend` of a whole application), so the
//! first such failure retires every connection opened before it: the
//! following operations open fresh ones instead of failing one by one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use session_core::Error;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::{PostgresError, breaks_connection};

pub(crate) struct Pool {
    options: PgConnectOptions,
    // Connections not in use, most recently used last: handing out the last
    // one keeps a few connections hot (with their prepared statements) rather
    // than cycling through all of them.
    // A short `parking_lot` lock: held for one push or pop, never across an
    // `.await`.
    idle: Mutex<Vec<Idle>>,
    // One permit per connection that may exist: bounds the connections opened
    // to the server, and queues callers fairly when all are busy.
    permits: Semaphore,
    acquire_timeout: Duration,
    // Bumped when a connection breaks; connections of an older generation are
    // retired instead of reused (see the module docs).
    generation: AtomicU64,
    closed: AtomicBool,
}

struct Idle {
    conn: PgConnection,
    generation: u64,
}

impl Pool {
    pub(crate) fn new(options: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> Self {
        Self {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(usize::try_from(max_connections).unwrap_or(usize::MAX)),
            acquire_timeout,
            generation: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// A connection for one operation: an idle one, or a new one if none is
    /// idle and fewer than `max_connections` exist. No round trip unless a
    /// connection must be opened.
    pub(crate) async fn acquire(&self) -> Result<Lease<'_>, Error> {
        let permit = match tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is closed only by `close`.
            Ok(Err(_)) => return Err(Error::backend(PostgresError::Closed, false)),
            Err(_) => {
                return Err(Error::backend(
                    PostgresError::AcquireTimeout(self.acquire_timeout),
                    true,
                ));
            }
        };
        let reused = {
            let mut idle = self.idle.lock();
            let current = self.generation.load(Ordering::Acquire);
            // Older generations were retired together with the idle list, so
            // the last entry is current; the filter only guards that invariant.
            idle.pop().filter(|i| i.generation >= current)
        };
        let (conn, generation) = match reused {
            Some(idle) => (idle.conn, idle.generation),
            None => {
                let generation = self.generation.load(Ordering::Acquire);
                let conn = match tokio::time::timeout(self.acquire_timeout, self.options.connect()).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => {
                        let retryable = crate::error::is_transient(&e);
                        return Err(Error::backend(PostgresError::Connect(e), retryable));
                    }
                    Err(_) => {
                        return Err(Error::backend(
                            PostgresError::ConnectTimeout(self.acquire_timeout),
                            true,
                        ));
                    }
                };
                (conn, generation)
            }
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            generation,
            reusable: false,
            _permit: permit,
        })
    }

    /// Retires every connection opened before now: idle ones at once, busy
    /// ones when they are given back.
    fn retire_all(&self) {
        let retired = {
            let mut idle = self.idle.lock();
            self.generation.fetch_add(1, Ordering::AcqRel);
            std::mem::take(&mut *idle)
        };
        // Dropped outside the lock: closing sockets is not free.
        drop(retired);
    }

    /// Refuses new operations and closes the idle connections politely.
    /// Operations in flight finish; their connections are closed when given
    /// back.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock());
        for i in idle {
            // Best effort: the server cleans up after a vanished client too.
            let _ = i.conn.close().await;
        }
    }

    fn give_back(&self, conn: PgConnection, generation: u64) {
        let mut idle = self.idle.lock();
        // Checked under the lock that `retire_all` takes, so a connection of a
        // retired generation can never slip back in.
        if generation >= self.generation.load(Ordering::Acquire) && !self.closed.load(Ordering::Acquire) {
            idle.push(Idle { conn, generation });
        }
    }
}

/// One connection, lent for one operation.
///
/// It goes back to the pool only if [`Lease::settle`] said the operation ran
/// to its end and did not break the transport. A lease dropped before that
/// (the caller's future was cancelled mid-statement) closes its connection:
/// the connection could be half-way through a response, and the only way to
/// know otherwise would be the round trip this pool exists to avoid.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<PgConnection>,
    generation: u64,
    reusable: bool,
    // Released after the connection is back in the idle list (fields drop in
    // declaration order after `Drop::drop`), so the next caller finds it.
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until it is dropped")
    }

    /// Records how the operation ended, which decides the connection's fate.
    pub(crate) fn settle(&mut self, error: Option<&sqlx::Error>) {
        match error {
            Some(e) if breaks_connection(e) => {
                tracing::debug!(error = %e, "PostgreSQL session store: retiring connections after a broken one");
                self.reusable = false;
                self.pool.retire_all();
            }
            _ => self.reusable = true,
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // An unusable connection is just dropped: its socket closes, and the
        // server ends the backend (rolling back anything unfinished).
        if let Some(conn) = self.conn.take()
            && self.reusable
        {
            self.pool.give_back(conn, self.generation);
        }
    }
}
