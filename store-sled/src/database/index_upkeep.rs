//! Every sled write of the store, in the order that keeps the indexes a
//! superset of the records and rotation marks: see [`Database::replace`]
//! and [`Database::remove`]. sled recovers a prefix of its log after a
//! crash, so whatever prefix of an operation's writes survives leaves extra
//! index entries at worst, never a record or mark its indexes miss
//! (`tests/interrupted.rs` checks every prefix).

use session_core::{Error, Record, StoreKey, Timestamp};

use super::Database;
use crate::error::backend;
use crate::index_keys::{expiry_key, owner_key};
use crate::record_layout::{Mark, Slot, Stored, encode, encode_mark};

/// Where a rewritten record's expiry-index entry goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Filing {
    /// Keep the entry of the record it replaces when that one is still early
    /// enough (never later than the new expiry): a renewal then writes only
    /// the record, and the sweep moves the entry when it reaches it.
    Keep,
    /// File the record under its own expiry (a new session, a replaced
    /// expired one or mark, a rotated one).
    Fresh,
}

/// Where a stored value (a record or a rotation mark) is filed in the
/// indexes: all that index upkeep needs to know of the value a write
/// replaces or a removal removes.
#[derive(Clone, Copy)]
pub(super) struct Filed<'a> {
    /// Its expiry-index entry is `expiry_key(indexed_at, key)`.
    indexed_at: Timestamp,
    /// Its owner-index entry, if any, is `owner_key(owner, key)`.
    owner: Option<&'a str>,
}

impl<'a> Filed<'a> {
    pub(super) fn of(slot: &'a Slot) -> Self {
        Self {
            indexed_at: slot.indexed_at(),
            owner: slot.owner(),
        }
    }

    pub(super) fn of_session(stored: &'a Stored) -> Self {
        Self {
            indexed_at: stored.indexed_at,
            owner: stored.record.owner.as_deref(),
        }
    }
}

impl Database {
    /// Writes `record` over `old` (where what is stored under the same key
    /// now, as read under the key's stripe, is filed), in the order of
    /// [`replace`](Self::replace).
    ///
    /// Call with the key's stripe held in write mode, and with the gate in
    /// read mode if `record` has an owner that `old` does not have.
    pub(super) fn write_record(&self, record: &Record, old: Option<Filed<'_>>, filing: Filing) -> Result<(), Error> {
        let indexed_at = match old {
            Some(old) if filing == Filing::Keep && old.indexed_at <= record.expires_at => old.indexed_at,
            _ => record.expires_at,
        };
        let new = Filed {
            indexed_at,
            owner: record.owner.as_deref(),
        };
        self.replace(&record.key, &encode(record, indexed_at)?, new, old)
    }

    /// Writes a rotation mark under `key` over `old` (the session rotated
    /// away), filed under its `until`, in the order of
    /// [`replace`](Self::replace). Call with the key's stripe held in write
    /// mode.
    pub(super) fn write_mark(&self, key: &StoreKey, mark: Mark, old: Filed<'_>) -> Result<(), Error> {
        let new = Filed {
            indexed_at: mark.until,
            owner: None,
        };
        self.replace(key, &encode_mark(&mark), new, Some(old))
    }

    /// Stores `value` (filed as `new`) under `key` over `old`, keeping the
    /// indexes a superset of the truth at every step, so that a crash
    /// between two steps leaves only extra entries, never a record or mark
    /// its indexes miss:
    ///
    /// 1. add the entries the new value needs;
    /// 2. write the value (one atomic sled insert: the operation's
    ///    linearization point, and the all-or-nothing point for a crash);
    /// 3. remove the owner entry only the old value needed.
    ///
    /// Expiry entries are never removed here: an entry that no longer matches
    /// its value is dropped by the sweep when its time comes (it is never
    /// later than the expiry it was filed for), which keeps a write on the
    /// request path to the sled writes it cannot avoid.
    fn replace(&self, key: &StoreKey, value: &[u8], new: Filed<'_>, old: Option<Filed<'_>>) -> Result<(), Error> {
        let owner_changed = old.is_none_or(|old| old.owner != new.owner);
        if old.is_none_or(|old| old.indexed_at != new.indexed_at) {
            self.add_expiry_entry(new.indexed_at, key)?;
        }
        if let Some(owner) = new.owner.filter(|_| owner_changed) {
            self.add_owner_entry(owner, key)?;
        }
        self.may_write()?;
        self.records.insert(key.as_bytes(), value).map_err(backend)?;
        if let Some(owner) = old.and_then(|old| old.owner).filter(|_| owner_changed) {
            self.remove_owner_entry(owner, key)?;
        }
        Ok(())
    }

    /// Removes the record or mark under `key`, filed as `old` (as read under
    /// the key's stripe, held in write mode): the value first, then its owner
    /// entry, for the same reason as in [`replace`](Self::replace). Its
    /// expiry entry is left to the sweep, like every expiry entry.
    pub(super) fn remove(&self, key: &StoreKey, old: Filed<'_>) -> Result<(), Error> {
        self.may_write()?;
        self.records.remove(key.as_bytes()).map_err(backend)?;
        if let Some(owner) = old.owner {
            self.remove_owner_entry(owner, key)?;
        }
        Ok(())
    }

    /// Removes whatever is stored under `key` without decoding it (it may be
    /// damaged). Its index entries cannot be found without the record; the
    /// owner operations and the sweep drop them when they meet them.
    pub(super) fn remove_undecoded(&self, key: &StoreKey) -> Result<(), Error> {
        tracing::warn!(key = %key.short(), "removing a damaged sled record");
        self.may_write()?;
        self.records.remove(key.as_bytes()).map(drop).map_err(backend)
    }

    fn add_expiry_entry(&self, at: Timestamp, key: &StoreKey) -> Result<(), Error> {
        self.may_write()?;
        self.expiry
            .insert(expiry_key(at, key), &[][..])
            .map(drop)
            .map_err(backend)
    }

    /// Drops an expiry entry: only the sweep does, once past its time.
    pub(super) fn remove_expiry_entry(&self, at: Timestamp, key: &StoreKey) -> Result<(), Error> {
        self.may_write()?;
        self.expiry.remove(expiry_key(at, key)).map(drop).map_err(backend)
    }

    /// Drops an expiry-index key that is not of this crate's shape.
    pub(super) fn remove_malformed_expiry_entry(&self, entry: &[u8]) -> Result<(), Error> {
        self.may_write()?;
        self.expiry.remove(entry).map(drop).map_err(backend)
    }

    fn add_owner_entry(&self, owner: &str, key: &StoreKey) -> Result<(), Error> {
        self.may_write()?;
        self.owners
            .insert(owner_key(owner, key)?, &[][..])
            .map(drop)
            .map_err(backend)
    }

    /// Drops an owner entry: the old owner's after a write, or a leftover an
    /// owner operation meets.
    pub(super) fn remove_owner_entry(&self, owner: &str, key: &StoreKey) -> Result<(), Error> {
        self.may_write()?;
        self.owners.remove(owner_key(owner, key)?).map(drop).map_err(backend)
    }
}
