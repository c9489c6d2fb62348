//! The consistency checks behind [`SledStore::verify_indexes`] and
//! [`SledStore::leftover_index_entries`]: full scans that check the
//! invariant `index_upkeep` keeps (every record and mark is indexed) and
//! count what it allows (index entries that match nothing).
//!
//! [`SledStore::verify_indexes`]: crate::SledStore::verify_indexes
//! [`SledStore::leftover_index_entries`]: crate::SledStore::leftover_index_entries

use session_core::{Error, StoreKey};

use super::Database;
use crate::error::backend;
use crate::index_keys::{expiry_key, owner_key, parse_expiry_key, parse_owner_key};
use crate::record_layout::{Slot, decode};

impl Database {
    /// See [`SledStore::verify_indexes`](crate::SledStore::verify_indexes).
    pub(crate) fn verify_indexes(&self) -> Result<u64, Error> {
        let corrupt = |why: String| Error::Corrupt(format!("sled index check: {why}"));
        let mut records = 0u64;
        for item in self.records.iter() {
            let (key, bytes) = item.map_err(backend)?;
            let key = StoreKey::from_slice(&key)?;
            let slot = decode(key, &bytes)?;
            // Marks are checked like records but not counted.
            records += u64::from(matches!(slot, Slot::Session(_)));
            if !self
                .expiry
                .contains_key(expiry_key(slot.indexed_at(), &key))
                .map_err(backend)?
            {
                return Err(corrupt(format!("record {} has no expiry entry", key.short())));
            }
            if let Some(owner) = slot.owner()
                && !self.owners.contains_key(owner_key(owner, &key)?).map_err(backend)?
            {
                return Err(corrupt(format!("record {} has no owner entry", key.short())));
            }
        }
        for entry in self.expiry.iter().keys() {
            let entry = entry.map_err(backend)?;
            parse_expiry_key(&entry).map_err(|e| corrupt(e.to_string()))?;
        }
        for entry in self.owners.iter().keys() {
            let entry = entry.map_err(backend)?;
            parse_owner_key(&entry).map_err(|e| corrupt(e.to_string()))?;
        }
        Ok(records)
    }

    /// How many index entries match no record or mark. See
    /// [`SledStore::leftover_index_entries`](crate::SledStore::leftover_index_entries).
    pub(crate) fn leftover_index_entries(&self) -> Result<u64, Error> {
        let mut leftovers = 0u64;
        for entry in self.expiry.iter().keys() {
            let entry = entry.map_err(backend)?;
            let (at, key) = parse_expiry_key(&entry)?;
            let matches = matches!(self.get(&key), Ok(Some(s)) if s.indexed_at() == at);
            leftovers += u64::from(!matches);
        }
        for entry in self.owners.iter().keys() {
            let entry = entry.map_err(backend)?;
            // An old generation counter is not an entry.
            let Some((owner, key)) = parse_owner_key(&entry)? else {
                continue;
            };
            // A mark owns nothing, so an entry pointing at one is a leftover.
            let matches = matches!(self.get(&key), Ok(Some(s)) if s.owner() == Some(owner));
            leftovers += u64::from(!matches);
        }
        Ok(leftovers)
    }
}
