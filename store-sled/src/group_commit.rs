//! Group commit: how a write is acknowledged under
//! [`FlushPolicy::EveryWrite`] without one `fsync` per writer.
//!
//! A writer takes a [`Ticket`] after its write; whoever holds `flushing`
//! flushes everything written up to then, so writers waiting behind it
//! usually find their ticket already durable. sled's own `flush_async` is
//! not used: it runs flushes on sled's small I/O pool, and with many
//! concurrent writers every pool thread ends up in a flush waiting for a log
//! write queued behind them on the same pool, a deadlock we hit in the
//! conformance suite.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use session_core::Error;

use crate::error::backend;
use crate::flush_policy::FlushPolicy;

/// The flush policy and, under [`FlushPolicy::EveryWrite`], the counters
/// that let concurrent writers share flushes.
pub(crate) struct GroupCommit {
    policy: FlushPolicy,
    /// Writes committed so far, a ticket each.
    committed: AtomicU64,
    /// The highest ticket known to be on disk.
    durable: AtomicU64,
    /// One flush at a time; writers that arrive meanwhile share the next one.
    /// A `std` mutex: it is held across the blocking `fsync`, never across
    /// an `.await`.
    flushing: Mutex<()>,
}

/// A write that must be on disk before it is acknowledged; see
/// [`GroupCommit::wait`].
#[must_use = "a write is acknowledged only once its ticket is durable"]
pub(crate) struct Ticket(u64);

impl GroupCommit {
    pub(crate) fn new(policy: FlushPolicy) -> Self {
        Self {
            policy,
            committed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            flushing: Mutex::new(()),
        }
    }

    pub(crate) fn policy(&self) -> FlushPolicy {
        self.policy
    }

    /// Called after an operation, with whether it wrote anything: the ticket
    /// its acknowledgement must wait for, or `None` if it need not wait (it
    /// wrote nothing, or the policy does not flush every write). The one
    /// place that decides whether a write waits for a flush.
    pub(crate) fn ticket(&self, wrote: bool) -> Option<Ticket> {
        (wrote && self.policy == FlushPolicy::EveryWrite)
            .then(|| Ticket(self.committed.fetch_add(1, Ordering::SeqCst) + 1))
    }

    /// Returns once the write behind `ticket` is on disk, flushing `db`
    /// unless a flush that covers it has already happened. Blocking: an
    /// `fsync`.
    pub(crate) fn wait(&self, Ticket(ticket): Ticket, db: &sled::Db) -> Result<(), Error> {
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // A poisoned lock only means another flush panicked; the counters
        // stay valid, so carry on.
        let _one_flush = self.flushing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let target = self.committed.load(Ordering::SeqCst);
        db.flush().map_err(backend)?;
        self.durable.fetch_max(target, Ordering::SeqCst);
        Ok(())
    }
}
