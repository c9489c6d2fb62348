//! The operations of the contract, each atomic under the store's locks (see
//! `locks` for which locks each takes, and in what order) and each writing
//! through `index_upkeep`. `SledStore` maps the `SessionStore` trait onto
//! these and acknowledges their writes.

use session_core::{Error, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, StoreKey, Timestamp};

use super::Database;
use super::index_upkeep::{Filed, Filing};
use crate::error::backend;
use crate::index_keys::{owner_prefix, parse_owner_key};
use crate::record_layout::{Mark, Slot};

impl Database {
    pub(crate) fn create(&self, record: &Record, now: Timestamp) -> Result<(), Error> {
        let record = Record {
            version: 1,
            ..record.clone()
        };
        let _gate = record.owner.is_some().then(|| self.locks.adding_owner_entries());
        let _stripe = self.locks.write(&record.key);
        let old = self.get(&record.key)?;
        if old.as_ref().is_some_and(|old| old.is_live_session(now)) {
            return Err(Error::AlreadyExists);
        }
        // An expired record or a rotation mark is replaced.
        self.write_record(&record, old.as_ref().map(Filed::of), Filing::Fresh)
    }

    pub(crate) fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        let _stripe = self.locks.read(key);
        Ok(self.live_session(key, now)?.map(|s| s.record))
    }

    /// `update` (`expected_version` given) and `overwrite` (none): writes
    /// `write` over the live session under `key` and returns its new version.
    pub(crate) fn write_live(
        &self,
        key: &StoreKey,
        expected_version: Option<u64>,
        write: Overwrite,
        now: Timestamp,
    ) -> Result<u64, Error> {
        let _gate = write.owner.is_some().then(|| self.locks.adding_owner_entries());
        let _stripe = self.locks.write(key);
        let Some(old) = self.live_session(key, now)? else {
            return Err(Error::NotFound);
        };
        if let Some(expected) = expected_version
            && old.record.version != expected
        {
            return Err(Error::Conflict {
                current: old.record.version,
            });
        }
        // Only a damaged record can be at the maximum: refuse, write nothing.
        let Some(version) = old.record.version.checked_add(1) else {
            return Err(Error::Corrupt(format!(
                "sled record {}: version at its maximum",
                key.short()
            )));
        };
        let new = Record {
            key: *key,
            version,
            data: write.data,
            created_at: old.record.created_at,
            expires_at: write.expires_at,
            owner: write.owner,
        };
        self.write_record(&new, Some(Filed::of_session(&old)), Filing::Keep)?;
        Ok(version)
    }

    /// Returns (live, wrote).
    pub(crate) fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<(bool, bool), Error> {
        let _stripe = self.locks.write(key);
        let Some(old) = self.live_session(key, now)? else {
            return Ok((false, false));
        };
        if expires_at <= old.record.expires_at {
            return Ok((true, false));
        }
        let new = Record {
            expires_at,
            ..old.record.clone()
        };
        self.write_record(&new, Some(Filed::of_session(&old)), Filing::Keep)?;
        Ok((true, true))
    }

    /// Writes the moved record under the new key first and replaces the old
    /// one with a rotation mark second: a crash in between leaves the
    /// session under both keys (and no mark), as if the rotation had not
    /// happened, plus a copy under a key nobody was given (it expires and is
    /// swept like any other). Owner entries follow the write order of
    /// `replace`: the new owner's entry (`set_owner`, or the old owner) is
    /// added before the moved record is written, the old owner's entry
    /// removed after the mark is.
    pub(crate) fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let _gate = self.locks.adding_owner_entries();
        let _stripes = self.locks.write_all([old_key, new_key]);
        let Some(old) = self.live_session(old_key, now)? else {
            return Err(Error::NotFound);
        };
        let taken = self.get(new_key)?;
        if old_key == new_key || taken.as_ref().is_some_and(|s| s.is_live_session(now)) {
            return Err(Error::AlreadyExists);
        }
        let moved = Record {
            key: *new_key,
            version: 1,
            data: old.record.data.clone(),
            created_at: old.record.created_at,
            expires_at: old.record.expires_at,
            owner: set_owner.map(str::to_owned).or_else(|| old.record.owner.clone()),
        };
        // An expired record or a rotation mark under the new key is replaced.
        self.write_record(&moved, taken.as_ref().map(Filed::of), Filing::Fresh)?;
        let mark = Mark {
            until: old.record.expires_at.min(now + ROTATION_MARK_TTL),
        };
        self.write_mark(old_key, mark, Filed::of_session(&old))?;
        Ok(moved)
    }

    pub(crate) fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let _stripe = self.locks.read(key);
        Ok(matches!(self.get(key)?, Some(Slot::Mark(mark)) if mark.until.is_live_at(now)))
    }

    /// Returns (was live, wrote). Removes a record or a mark alike. Removing
    /// needs no decoding: a damaged record is removed too (reported as not
    /// live), so a session can always be ended.
    pub(crate) fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<(bool, bool), Error> {
        let _stripe = self.locks.write(key);
        match self.get(key) {
            Ok(None) => Ok((false, false)),
            Ok(Some(old)) => {
                self.remove(key, Filed::of(&old))?;
                Ok((old.is_live_session(now), true))
            }
            Err(Error::Corrupt(_)) => {
                self.remove_undecoded(key)?;
                Ok((false, true))
            }
            Err(e) => Err(e),
        }
    }

    /// The owner's live sessions at one instant: with the gate in write mode
    /// no session can join the owner or move to another key, and with the
    /// listed keys' stripes held no listed record can change, while the
    /// records are read.
    ///
    /// A damaged record is left out and logged (by its key's prefix, never
    /// its bytes): one unreadable record must not hide the owner's other
    /// sessions from a "your devices" page. Ending it is `delete_by_owner`'s
    /// job; a read never writes.
    pub(crate) fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        let _gate = self.locks.scanning_owner_entries();
        let keys = self.owner_keys(owner)?;
        let _stripes = self.locks.read_all(&keys);
        let mut live = Vec::with_capacity(keys.len());
        for key in &keys {
            let session = match self.live_session(key, now) {
                Ok(session) => session,
                Err(Error::Corrupt(e)) => {
                    tracing::warn!(key = %key.short(), error = %e, "sled list_by_owner skipped a damaged record");
                    continue;
                }
                Err(e) => return Err(e),
            };
            // A leftover entry (its record is gone, has another owner or is
            // a rotation mark now) is skipped; `delete_by_owner` removes such
            // entries.
            if let Some(r) = session.map(|s| s.record).filter(|r| r.owner.as_deref() == Some(owner)) {
                live.push(OwnedSession {
                    key: r.key,
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                });
            }
        }
        Ok(live)
    }

    /// Returns (live removed, wrote). Atomic like `list_by_owner`. Like
    /// `delete`, removes damaged records too (not counted), and drops
    /// leftover entries: ending every session of an owner must not stop at
    /// one unreadable record.
    pub(crate) fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<(u64, bool), Error> {
        let _gate = self.locks.scanning_owner_entries();
        let keys = self.owner_keys(owner)?;
        let _stripes = self.locks.write_all(&keys);
        let mut live = 0;
        for key in &keys {
            match self.get(key) {
                Ok(Some(Slot::Session(stored))) if stored.record.owner.as_deref() == Some(owner) => {
                    self.remove(key, Filed::of_session(&stored))?;
                    live += u64::from(stored.record.is_live_at(now));
                }
                Err(Error::Corrupt(_)) => {
                    self.remove_undecoded(key)?;
                    self.remove_owner_entry(owner, key)?;
                }
                Err(e) => return Err(e),
                // A leftover entry: its record is gone, has another owner, or
                // is a rotation mark now (which owns nothing and stays).
                Ok(_) => self.remove_owner_entry(owner, key)?,
            }
        }
        Ok((live, !keys.is_empty()))
    }

    /// The keys the owner index lists for `owner`. Call with the gate held in
    /// write mode, so that the list is complete until it is released.
    fn owner_keys(&self, owner: &str) -> Result<Vec<StoreKey>, Error> {
        let prefix = owner_prefix(owner)?;
        let mut keys = Vec::new();
        for entry in self.owners.scan_prefix(&prefix).keys() {
            let entry = entry.map_err(backend)?;
            // Anything else under the prefix (an old generation counter, a
            // malformed entry) is not one of the owner's sessions.
            if let Ok(Some((_, key))) = parse_owner_key(&entry) {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}
