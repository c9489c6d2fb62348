//! How many more sled writes a store may make: the mechanism behind
//! `SledStore::stop_writing_after_for_tests`.
//!
//! sled recovers a prefix of its log after a crash, so a store stopped after
//! *k* writes of an operation, flushed and reopened, holds what a crash
//! after those *k* writes can leave (`tests/interrupted.rs` walks every *k*).
//! Every sled write of the store first calls [`WriteLimit::take_one`].

use std::sync::atomic::{AtomicU64, Ordering};

use session_core::Error;

/// The write budget of a store: unlimited unless a test lowers it.
pub(crate) struct WriteLimit {
    /// Writes left; `u64::MAX` means no limit.
    left: AtomicU64,
}

impl WriteLimit {
    pub(crate) fn unlimited() -> Self {
        Self {
            left: AtomicU64::new(u64::MAX),
        }
    }

    /// Allows `writes` more sled writes, then refuses every further one.
    pub(crate) fn stop_after(&self, writes: u64) {
        self.left.store(writes, Ordering::SeqCst);
    }

    /// Called before every sled write: counts it, or refuses it with
    /// [`Error::Backend`] once the limit is reached. Without a limit, one
    /// atomic load.
    pub(crate) fn take_one(&self) -> Result<(), Error> {
        let counted = self.left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
            u64::MAX | 0 => None,
            left => Some(left - 1),
        });
        match counted {
            Err(0) => Err(Error::backend_permanent("sled store: writes stopped by a test")),
            _ => Ok(()),
        }
    }
}
