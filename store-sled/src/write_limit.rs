//! How many more sled writes a store may make: the mechanism behind the
//! `test-hooks` feature's `SledStore::stop_writing_after_for_tests`.
//!
//! sled recovers a prefix of its log after a crash, so a store stopped after
//! *k* writes of an operation, flushed and reopened, holds what a crash
//! after those *k* writes can leave (`tests/interrupted.rs` walks every *k*).
//! Every sled write of the store first calls [`WriteLimit::take_one`].
//! Without the feature the limit is an empty type and that call compiles to
//! nothing: no atomic on the write path.

use session_core::Error;

/// The write budget of a store: unlimited unless a test lowers it.
#[cfg(feature = "test-hooks")]
pub(crate) struct WriteLimit {
    /// Writes left; `u64::MAX` means no limit.
    left: std::sync::atomic::AtomicU64,
}

/// The write budget of a store: always unlimited without `test-hooks`.
#[cfg(not(feature = "test-hooks"))]
pub(crate) struct WriteLimit;

#[cfg(feature = "test-hooks")]
impl WriteLimit {
    pub(crate) fn unlimited() -> Self {
        Self {
            left: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    /// Allows `writes` more sled writes, then refuses every further one.
    pub(crate) fn stop_after(&self, writes: u64) {
        self.left.store(writes, std::sync::atomic::Ordering::SeqCst);
    }

    /// Called before every sled write: counts it, or refuses it with
    /// [`Error::Backend`] once the limit is reached.
    pub(crate) fn take_one(&self) -> Result<(), Error> {
        use std::sync::atomic::Ordering::SeqCst;
        let counted = self.left.fetch_update(SeqCst, SeqCst, |left| match left {
            u64::MAX | 0 => None,
            left => Some(left - 1),
        });
        match counted {
            Err(0) => Err(Error::backend("sled store: writes stopped by a test", false)),
            _ => Ok(()),
        }
    }
}

#[cfg(not(feature = "test-hooks"))]
impl WriteLimit {
    pub(crate) fn unlimited() -> Self {
        Self
    }

    /// Called before every sled write; without `test-hooks`, nothing.
    #[inline(always)]
    pub(crate) fn take_one(&self) -> Result<(), Error> {
        Ok(())
    }
}
