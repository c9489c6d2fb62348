//! `delete_expired`: the walk of the expiry index that removes expired
//! records and marks no longer in force, files renewed sessions again, and
//! drops leftover entries. Renewals never move expiry entries themselves
//! (see `index_upkeep`): this walk is what keeps each entry at or before the
//! expiry of the value it serves.

use session_core::{Error, Timestamp};

use super::Database;
use super::index_upkeep::{Filed, Filing};
use crate::error::backend;
use crate::index_keys::{parse_expiry_key, sortable};
use crate::record_layout::Slot;

/// How many expiry-index entries `delete_expired` reads per range scan.
const SWEEP_BATCH: usize = 128;

impl Database {
    /// Walks the expiry index from its start (the soonest entry) up to
    /// `now`, in batches, and handles each entry under its key's stripe:
    ///
    /// - its record is still expired: remove the record and its entries
    ///   (compare-and-delete: a record renewed since the scan stays);
    /// - its record is live (renewed since it was filed): file it again under
    ///   its expiry, so that renewals need not move entries themselves;
    /// - its rotation mark is no longer in force: remove the mark and its
    ///   entry (not counted: a mark is not a session);
    /// - nothing, or a record or mark filed elsewhere: a leftover, dropped;
    /// - a damaged record: skipped (left for `load` to report).
    ///
    /// Returns how many expired records it removed, at most `limit`.
    /// Blocking: call it off the async workers.
    pub(crate) fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        // Every entry filed at or before now sorts at or below this key.
        let mut upper = sortable(now).to_vec();
        upper.extend_from_slice(&[0xff; 32]);
        let mut cursor: Vec<u8> = Vec::new();
        let mut removed: u64 = 0;
        loop {
            if usize::try_from(removed).unwrap_or(usize::MAX) >= limit {
                return Ok(removed);
            }
            let mut batch = Vec::new();
            for entry in self
                .expiry
                .range(cursor.clone()..=upper.clone())
                .keys()
                .take(SWEEP_BATCH)
            {
                batch.push(entry.map_err(backend)?);
            }
            let Some(last) = batch.last() else {
                return Ok(removed);
            };
            // Continue strictly after the last entry seen, so entries skipped
            // below (damaged records) are not read again.
            cursor = last.to_vec();
            cursor.push(0);
            for entry in &batch {
                if usize::try_from(removed).unwrap_or(usize::MAX) >= limit {
                    return Ok(removed);
                }
                removed += u64::from(self.sweep_entry(entry, now)?);
            }
        }
    }

    /// One expiry entry of the sweep; returns whether it removed an expired
    /// record.
    fn sweep_entry(&self, entry: &[u8], now: Timestamp) -> Result<bool, Error> {
        let (at, key) = match parse_expiry_key(entry) {
            Ok(parsed) => parsed,
            Err(e) => {
                // Not an entry this crate writes: it can only be in the way.
                tracing::warn!(error = %e, "sled sweep dropped a malformed expiry entry");
                self.remove_malformed_expiry_entry(entry)?;
                return Ok(false);
            }
        };
        let _stripe = self.locks.write(&key);
        let slot = match self.get(&key) {
            Ok(Some(slot)) => slot,
            Ok(None) => {
                self.remove_expiry_entry(at, &key)?;
                return Ok(false);
            }
            Err(Error::Corrupt(e)) => {
                // Garbage collection must not stall on one damaged record.
                tracing::warn!(error = %e, "sled sweep skipped a damaged record");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if slot.indexed_at() != at {
            self.remove_expiry_entry(at, &key)?;
            return Ok(false);
        }
        let removed = match &slot {
            Slot::Session(stored) if !stored.record.is_live_at(now) => {
                self.remove(&key, Filed::of(&slot))?;
                true
            }
            Slot::Session(stored) => {
                self.write_record(&stored.record, Some(Filed::of(&slot)), Filing::Fresh)?;
                false
            }
            // Compare-and-delete, as for records. A mark is filed under its
            // `until` and the walk stops at `now`, so this is never met; if
            // it were, the entry is the mark's own and must stay.
            Slot::Mark(mark) if mark.until.is_live_at(now) => return Ok(false),
            Slot::Mark(_) => {
                self.remove(&key, Filed::of(&slot))?;
                false
            }
        };
        // Last, like every removal of an entry: after the value it served.
        self.remove_expiry_entry(at, &key)?;
        Ok(removed)
    }
}
