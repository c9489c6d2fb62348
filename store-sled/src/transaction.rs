//! The three trees as one transaction sees them, with the few writes that
//! keep the indexes in step with the records.
//!
//! Invariant (checked by [`SledStore::verify_indexes`](crate::SledStore::verify_indexes)):
//! every record has exactly one expiry entry `(expires_at, key)` and, if it
//! has an owner, exactly one owner entry `(owner, key)`; the indexes hold
//! nothing else. [`TxTrees::put`] and [`TxTrees::remove`] are the only code
//! that writes a record, and they write its index entries in the same
//! transaction, so sled commits all of it or none of it, also across a crash.

use session_core::{Error, Record, StoreKey};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::index_keys::{expiry_key, owner_key, owner_prefix, parse_generation};
use crate::record_layout::{decode, encode};

/// What a transaction closure returns: our own errors travel through
/// `ConflictableTransactionError::Abort`, which also discards every write.
pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<Error>>;

/// Aborts the transaction with `e`.
pub(crate) fn abort<T>(e: Error) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Lifts a contract error (a corrupt value, an oversized owner) into an abort.
pub(crate) trait OrAbort<T> {
    fn or_abort(self) -> TxResult<T>;
}

impl<T> OrAbort<T> for Result<T, Error> {
    fn or_abort(self) -> TxResult<T> {
        self.map_err(ConflictableTransactionError::Abort)
    }
}

/// The transactional views of the three trees.
pub(crate) struct TxTrees<'a> {
    pub(crate) records: &'a TransactionalTree,
    pub(crate) expiry: &'a TransactionalTree,
    pub(crate) owners: &'a TransactionalTree,
}

impl TxTrees<'_> {
    /// The record under `key`, live or not; undecodable bytes abort with
    /// [`Error::Corrupt`].
    pub(crate) fn get(&self, key: &StoreKey) -> TxResult<Option<Record>> {
        match self.records.get(key.as_bytes())? {
            None => Ok(None),
            Some(bytes) => decode(*key, &bytes).map(Some).or_abort(),
        }
    }

    /// Writes `record`, replacing `old` (the record currently under the same
    /// key, as read in this transaction), and moves its index entries.
    pub(crate) fn put(&self, record: &Record, old: Option<&Record>) -> TxResult<()> {
        let key = &record.key;
        if let Some(old) = old {
            if old.expires_at != record.expires_at {
                self.expiry.remove(&expiry_key(old.expires_at, key)[..])?;
            }
            if let Some(owner) = old.owner.as_ref().filter(|_| old.owner != record.owner) {
                self.unindex_owner(owner, key)?;
            }
        }
        self.records.insert(&key.as_bytes()[..], encode(record).or_abort()?)?;
        // An unchanged expiry keeps its entry (the invariant says `old` has
        // exactly that one): rewriting it would only cost a write.
        if old.is_none_or(|old| old.expires_at != record.expires_at) {
            self.expiry.insert(&expiry_key(record.expires_at, key)[..], &[][..])?;
        }
        if let Some(owner) = record
            .owner
            .as_ref()
            .filter(|_| old.is_none_or(|old| old.owner != record.owner))
        {
            self.owners.insert(owner_key(owner, key).or_abort()?, &[][..])?;
            self.bump_generation(owner)?;
        }
        Ok(())
    }

    /// Removes `record` (as read in this transaction) and its index entries.
    pub(crate) fn remove(&self, record: &Record) -> TxResult<()> {
        let key = &record.key;
        self.records.remove(&key.as_bytes()[..])?;
        self.expiry.remove(&expiry_key(record.expires_at, key)[..])?;
        if let Some(owner) = &record.owner {
            self.unindex_owner(owner, key)?;
        }
        Ok(())
    }

    /// Removes whatever is stored under `key` without decoding it (it may be
    /// damaged), and its owner entry if the caller knows the owner. The
    /// expiry entry cannot be found without the record; the sweep drops such
    /// orphans when their time comes.
    pub(crate) fn remove_undecoded(&self, key: &StoreKey, owner: Option<&str>) -> TxResult<()> {
        self.records.remove(&key.as_bytes()[..])?;
        if let Some(owner) = owner {
            self.unindex_owner(owner, key)?;
        }
        Ok(())
    }

    pub(crate) fn unindex_owner(&self, owner: &str, key: &StoreKey) -> TxResult<()> {
        self.owners.remove(owner_key(owner, key).or_abort()?)?;
        self.bump_generation(owner)
    }

    /// The owner's generation counter (see `index_keys`).
    pub(crate) fn generation(&self, owner: &str) -> TxResult<u64> {
        let current = self.owners.get(owner_prefix(owner).or_abort()?)?;
        parse_generation(current.as_deref()).or_abort()
    }

    fn bump_generation(&self, owner: &str) -> TxResult<()> {
        let next = self.generation(owner)?.wrapping_add(1);
        self.owners
            .insert(owner_prefix(owner).or_abort()?, &next.to_be_bytes()[..])?;
        Ok(())
    }
}
