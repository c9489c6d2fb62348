//! The in-process locks that make each operation atomic.
//!
//! sled allows one process per database, so every reader and writer of a
//! store's trees is in this process and goes through these locks:
//!
//! - **stripes**: 256 reader-writer locks, one per first byte of the store
//!   key (keys are SHA-256 hashes, so they spread evenly). An operation on a
//!   key holds that key's stripe: `load` and `was_rotated` in read mode,
//!   every write in write mode, for the whole read-check-write sequence.
//!   Operations on several keys (`rotate`, the owner operations) take their
//!   stripes in ascending order, each once, so they never deadlock with
//!   each other.
//! - **gate**: one reader-writer lock over the owner index. Every operation
//!   that can *add* an owner entry (`create`, `update`, `overwrite`,
//!   `rotate`) holds it in read mode; `list_by_owner` and `delete_by_owner`
//!   hold it in write mode while they scan the owner's entries and lock
//!   those keys, so no session can join the owner (or move to another key)
//!   between their scan and their reads. The gate is always taken before
//!   any stripe.
//!
//! All of these are `parking_lot` locks held only inside synchronous code,
//! never across an `.await`.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use session_core::StoreKey;

/// Number of stripes: one per value of a key's first byte.
const STRIPES: usize = 256;

/// The store's locks.
pub(crate) struct Locks {
    gate: RwLock<()>,
    stripes: Box<[RwLock<()>]>,
}

impl Default for Locks {
    fn default() -> Self {
        Self {
            gate: RwLock::new(()),
            stripes: (0..STRIPES).map(|_| RwLock::new(())).collect(),
        }
    }
}

/// Write guards over a set of stripes, released together.
pub(crate) struct Held<'a> {
    _guards: Vec<RwLockWriteGuard<'a, ()>>,
}

/// Read guards over a set of stripes, released together.
pub(crate) struct HeldForReading<'a> {
    _guards: Vec<RwLockReadGuard<'a, ()>>,
}

impl Locks {
    fn stripe(key: &StoreKey) -> usize {
        usize::from(key.as_bytes()[0])
    }

    /// The gate in read mode: for operations that may add an owner entry.
    pub(crate) fn adding_owner_entries(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read()
    }

    /// The gate in write mode: for the owner scans.
    pub(crate) fn scanning_owner_entries(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write()
    }

    /// `key`'s stripe in read mode.
    pub(crate) fn read(&self, key: &StoreKey) -> RwLockReadGuard<'_, ()> {
        self.stripes[Self::stripe(key)].read()
    }

    /// `key`'s stripe in write mode.
    pub(crate) fn write(&self, key: &StoreKey) -> RwLockWriteGuard<'_, ()> {
        self.stripes[Self::stripe(key)].write()
    }

    /// The stripes of all `keys` in write mode, in ascending order.
    pub(crate) fn write_all<'k>(&self, keys: impl IntoIterator<Item = &'k StoreKey>) -> Held<'_> {
        Held {
            _guards: Self::ordered(keys).map(|i| self.stripes[i].write()).collect(),
        }
    }

    /// The stripes of all `keys` in read mode, in ascending order.
    pub(crate) fn read_all<'k>(&self, keys: impl IntoIterator<Item = &'k StoreKey>) -> HeldForReading<'_> {
        HeldForReading {
            _guards: Self::ordered(keys).map(|i| self.stripes[i].read()).collect(),
        }
    }

    fn ordered<'k>(keys: impl IntoIterator<Item = &'k StoreKey>) -> impl Iterator<Item = usize> {
        let mut wanted = [false; STRIPES];
        for key in keys {
            wanted[Self::stripe(key)] = true;
        }
        (0..STRIPES).filter(move |&i| wanted[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_keys_on_one_stripe_lock_it_once() {
        let locks = Locks::default();
        let a = StoreKey::from_bytes([7; 32]);
        let mut b = [7; 32];
        b[31] = 8;
        let b = StoreKey::from_bytes(b);
        let c = StoreKey::from_bytes([1; 32]);
        // Taking the same stripe twice would deadlock; this returns.
        let held = locks.write_all([&a, &b, &c]);
        assert_eq!(held._guards.len(), 2);
        drop(held);
        let read = locks.read_all([&a, &b]);
        assert_eq!(read._guards.len(), 1);
    }
}
