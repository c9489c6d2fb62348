//! One shard: a map of records, a map of rotation marks, and the indexes that
//! keep eviction, sweeping and owner queries free of full scans.
//!
//! Invariants, kept by `insert`, `remove`, `add_mark` and `remove_mark` (the
//! only places that add or remove records and marks):
//!
//! - every record in `records` has exactly one entry `(indexed_at, key)` in
//!   `anonymous_by_expiry` (no owner) or `owned_by_expiry` (an owner), its
//!   `indexed_at` never later than its `expires_at`, and one entry in
//!   `by_owner[owner]` if it has an owner; no index holds anything else.
//!   Every other method goes through those, or changes `expires_at` through
//!   `set_expiry` and the owner through a re-insert;
//! - every mark in `marks` has exactly one entry `(until, key)` in
//!   `marks_by_until`; a key holds a record or a mark, never both.
//!
//! An entry may be early: a renewal (the most frequent write) only moves a
//! record's `expires_at` later and leaves its entry where it is, so it costs
//! no index change. Eviction and the sweep read the expiry indexes from the
//! front, and move an early entry they meet there to its record's
//! `expires_at` before acting on it ([`settle`]); the first entry is then
//! exact, and, as no entry is later than its record's expiry, the soonest.
//!
//! Records and marks together never exceed the shard's capacity. When a full
//! shard must take one more, `insert` evicts, in this order, whatever is
//! least worth keeping: an expired record or a mark no longer in force, then
//! a rotation mark (it only protects a cookie for a minute), then the
//! anonymous session closest to its end, and an owned (logged-in) session
//! only when no anonymous one is left. A flood of anonymous sessions
//! (unauthenticated traffic) therefore evicts only anonymous sessions.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use session_core::{Bytes, Error, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, StoreKey, Timestamp, Update};

/// A stored record without its key (the map key holds it).
pub(crate) struct Entry {
    pub(crate) version: u64,
    pub(crate) data: Bytes,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    /// Where its expiry-index entry is filed: `expires_at` when filed, and
    /// earlier after a renewal (see the module docs).
    pub(crate) indexed_at: Timestamp,
    // Arc<str>: the owner index shares the same allocation.
    pub(crate) owner: Option<Arc<str>>,
}

impl Entry {
    pub(crate) fn from_record(r: Record) -> Self {
        Self {
            version: 1,
            data: r.data,
            created_at: r.created_at,
            expires_at: r.expires_at,
            indexed_at: r.expires_at,
            owner: r.owner.map(Arc::from),
        }
    }

    pub(crate) fn to_record(&self, key: StoreKey) -> Record {
        Record {
            key,
            version: self.version,
            // A reference-count increment, not a copy of the payload.
            data: self.data.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            owner: self.owner.as_deref().map(str::to_owned),
        }
    }
}

/// Keys are SHA-256 outputs, already uniform: hashing them again with SipHash
/// would cost more than the lookup. Not exposed to attacker-chosen keys: a
/// client chooses its token, never the hash of it.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(2) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }
}

type ExpiryIndex = BTreeSet<(Timestamp, StoreKey)>;

/// Moves `entry`'s expiry to `expires_at`. Later (a renewal) leaves its
/// expiry-index entry where it is; earlier than where it is filed moves the
/// entry too, in the index it is in (`owned` if it has an owner, else
/// `anonymous`), so that no entry is later than its record's expiry. Takes
/// the indexes and the entry apart from the shard, so a write finds its
/// record once.
fn set_expiry(
    anonymous: &mut ExpiryIndex,
    owned: &mut ExpiryIndex,
    key: &StoreKey,
    entry: &mut Entry,
    expires_at: Timestamp,
) {
    if expires_at < entry.indexed_at {
        let index = if entry.owner.is_some() { owned } else { anonymous };
        index.remove(&(entry.indexed_at, *key));
        index.insert((expires_at, *key));
        entry.indexed_at = expires_at;
    }
    entry.expires_at = expires_at;
}

/// The first entry of `index` once it is exact: every early entry met at
/// the front (its record renewed since it was filed) is moved to its
/// record's `expires_at` first. That first entry is then the soonest expiry
/// of the index, since no entry is later than its record's. Each move is
/// the deferred index change of a renewal, so the work is bounded by the
/// renewals made since.
fn settle(index: &mut ExpiryIndex, records: &mut KeyMap<Entry>) -> Option<(Timestamp, StoreKey)> {
    loop {
        let (at, key) = *index.first()?;
        match records.get_mut(&key) {
            Some(entry) if entry.expires_at > at => {
                index.pop_first();
                index.insert((entry.expires_at, key));
                entry.indexed_at = entry.expires_at;
            }
            Some(_) => return Some((at, key)),
            // No record: the invariant says this cannot be; drop the entry
            // rather than evict or count a record that is not there.
            None => {
                index.pop_first();
            }
        }
    }
}

type KeyMap<V> = HashMap<StoreKey, V, BuildHasherDefault<KeyHasher>>;
type KeySet = HashSet<StoreKey, BuildHasherDefault<KeyHasher>>;

pub(crate) struct Shard {
    records: KeyMap<Entry>,
    // Two expiry indexes, so eviction can prefer anonymous sessions.
    anonymous_by_expiry: ExpiryIndex,
    owned_by_expiry: ExpiryIndex,
    by_owner: HashMap<Arc<str>, KeySet>,
    // Rotation marks: the instant each stops being in force.
    marks: KeyMap<Timestamp>,
    marks_by_until: ExpiryIndex,
    capacity: usize,
}

impl Shard {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            records: KeyMap::default(),
            anonymous_by_expiry: BTreeSet::new(),
            owned_by_expiry: BTreeSet::new(),
            by_owner: HashMap::new(),
            marks: KeyMap::default(),
            marks_by_until: BTreeSet::new(),
            capacity,
        }
    }

    /// Records held (live or not yet reclaimed); marks are not counted.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Records and marks held: what the capacity bounds.
    fn held(&self) -> usize {
        self.records.len() + self.marks.len()
    }

    pub(crate) fn live(&self, key: &StoreKey, now: Timestamp) -> Option<&Entry> {
        self.records.get(key).filter(|e| e.expires_at.is_live_at(now))
    }

    fn expiry_index(&mut self, owned: bool) -> &mut ExpiryIndex {
        if owned {
            &mut self.owned_by_expiry
        } else {
            &mut self.anonymous_by_expiry
        }
    }

    /// Inserts (or replaces) `key`, removing a mark under it, and evicting
    /// first if the shard is full (see the module docs for the order).
    pub(crate) fn insert(&mut self, key: StoreKey, mut entry: Entry, now: Timestamp) {
        self.remove(&key);
        self.remove_mark(&key);
        if self.held() >= self.capacity {
            self.evict_one(now);
        }
        let owned = entry.owner.is_some();
        // Filed fresh, at its own expiry.
        entry.indexed_at = entry.expires_at;
        self.expiry_index(owned).insert((entry.indexed_at, key));
        if let Some(owner) = &entry.owner {
            self.by_owner.entry(Arc::clone(owner)).or_default().insert(key);
        }
        self.records.insert(key, entry);
    }

    /// Removes the one record or mark least worth keeping.
    fn evict_one(&mut self, now: Timestamp) {
        let anonymous = settle(&mut self.anonymous_by_expiry, &mut self.records);
        let owned = settle(&mut self.owned_by_expiry, &mut self.records);
        let mark = self.marks_by_until.first().copied();
        // The soonest of all, if it has already ended: reclaiming it costs
        // nobody anything.
        let soonest = [anonymous, owned, mark].into_iter().flatten().min();
        if let Some((_, key)) = soonest.filter(|(at, _)| !at.is_live_at(now)) {
            if self.remove(&key).is_none() {
                self.remove_mark(&key);
            }
            return;
        }
        if let Some((_, key)) = mark {
            self.remove_mark(&key);
        } else if let Some((_, key)) = anonymous.or(owned) {
            self.remove(&key);
        }
    }

    pub(crate) fn remove(&mut self, key: &StoreKey) -> Option<Entry> {
        let entry = self.records.remove(key)?;
        let owned = entry.owner.is_some();
        self.expiry_index(owned).remove(&(entry.indexed_at, *key));
        if let Some(owner) = &entry.owner {
            self.unindex_owner(owner, key);
        }
        Some(entry)
    }

    fn add_mark(&mut self, key: StoreKey, until: Timestamp, now: Timestamp) {
        self.remove_mark(&key);
        if self.held() >= self.capacity {
            self.evict_one(now);
        }
        self.marks.insert(key, until);
        self.marks_by_until.insert((until, key));
    }

    fn remove_mark(&mut self, key: &StoreKey) -> bool {
        match self.marks.remove(key) {
            Some(until) => {
                self.marks_by_until.remove(&(until, *key));
                true
            }
            None => false,
        }
    }

    /// Removes the record or mark under `key`; whether a live record was
    /// removed.
    pub(crate) fn delete(&mut self, key: &StoreKey, now: Timestamp) -> bool {
        self.remove_mark(key);
        self.remove(key).is_some_and(|e| e.expires_at.is_live_at(now))
    }

    pub(crate) fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> bool {
        self.marks.get(key).is_some_and(|until| until.is_live_at(now))
    }

    fn unindex_owner(&mut self, owner: &Arc<str>, key: &StoreKey) {
        if let Some(keys) = self.by_owner.get_mut(owner) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    pub(crate) fn update(&mut self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        let write = Overwrite {
            data: update.data,
            expires_at: update.expires_at,
            owner: update.owner,
        };
        self.write(key, write, Some(update.expected_version), now)
    }

    pub(crate) fn overwrite(&mut self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        self.write(key, write, None, now)
    }

    /// Writes a live record's new contents and version, if its version is
    /// `expected_version` (when given). One lookup of the record on the
    /// usual path (same owner): every request's write goes through here.
    fn write(
        &mut self,
        key: &StoreKey,
        write: Overwrite,
        expected_version: Option<u64>,
        now: Timestamp,
    ) -> Result<u64, Error> {
        let entry = self
            .records
            .get_mut(key)
            .filter(|e| e.expires_at.is_live_at(now))
            .ok_or(Error::NotFound)?;
        if let Some(expected) = expected_version
            && entry.version != expected
        {
            return Err(Error::Conflict { current: entry.version });
        }
        let version = entry
            .version
            .checked_add(1)
            .ok_or_else(|| Error::Corrupt(format!("memory record {}: version at its maximum", key.short())))?;
        if entry.owner.as_deref() == write.owner.as_deref() {
            set_expiry(
                &mut self.anonymous_by_expiry,
                &mut self.owned_by_expiry,
                key,
                entry,
                write.expires_at,
            );
            entry.version = version;
            entry.data = write.data;
            return Ok(version);
        }
        // Another owner: re-inserting keeps every index right; the record
        // was just removed, so the shard is not full and nothing is evicted.
        let old = self.remove(key).expect("the record was just found in this shard");
        let entry = Entry {
            version,
            data: write.data,
            created_at: old.created_at,
            expires_at: write.expires_at,
            indexed_at: write.expires_at,
            owner: write.owner.map(Arc::from),
        };
        self.insert(*key, entry, now);
        Ok(version)
    }

    pub(crate) fn touch(&mut self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> bool {
        let Some(entry) = self.records.get_mut(key).filter(|e| e.expires_at.is_live_at(now)) else {
            return false;
        };
        if expires_at > entry.expires_at {
            set_expiry(
                &mut self.anonymous_by_expiry,
                &mut self.owned_by_expiry,
                key,
                entry,
                expires_at,
            );
        }
        true
    }

    /// Checks rotate's preconditions, removes the old record and leaves a
    /// rotation mark in its place; returns the record ready to insert under
    /// `new_key` (version 1, `set_owner` applied). `other` is the new key's
    /// shard when it differs from this one.
    pub(crate) fn take_for_rotate(
        &mut self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
        other: Option<&Shard>,
    ) -> Result<Entry, Error> {
        if self.live(old_key, now).is_none() {
            return Err(Error::NotFound);
        }
        let new_shard = other.unwrap_or(self);
        if new_shard.live(new_key, now).is_some() {
            return Err(Error::AlreadyExists);
        }
        let mut entry = self
            .remove(old_key)
            .expect("the record was just found live in this shard");
        let until = entry.expires_at.min(now + ROTATION_MARK_TTL);
        self.add_mark(*old_key, until, now);
        entry.version = 1;
        if let Some(owner) = set_owner {
            entry.owner = Some(Arc::from(owner));
        }
        Ok(entry)
    }

    pub(crate) fn list_owner(&self, owner: &str, now: Timestamp) -> Vec<OwnedSession> {
        let Some(keys) = self.by_owner.get(owner) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| {
                self.live(k, now).map(|e| OwnedSession {
                    key: *k,
                    created_at: e.created_at,
                    expires_at: e.expires_at,
                })
            })
            .collect()
    }

    pub(crate) fn remove_owner(&mut self, owner: &str, now: Timestamp) -> u64 {
        let Some(keys) = self.by_owner.remove(owner) else {
            return 0;
        };
        let mut live = 0;
        for key in keys {
            if let Some(entry) = self.records.remove(&key) {
                self.owned_by_expiry.remove(&(entry.indexed_at, key));
                live += u64::from(entry.expires_at.is_live_at(now));
            }
        }
        live
    }

    /// Removes up to `limit` expired records (soonest first) and every mark
    /// no longer in force; returns how many records it removed.
    pub(crate) fn remove_expired(&mut self, now: Timestamp, limit: usize) -> usize {
        while let Some(&(until, key)) = self.marks_by_until.first() {
            if until.is_live_at(now) {
                break;
            }
            self.remove_mark(&key);
        }
        let mut removed = 0;
        while removed < limit {
            let soonest = [
                settle(&mut self.anonymous_by_expiry, &mut self.records),
                settle(&mut self.owned_by_expiry, &mut self.records),
            ]
            .into_iter()
            .flatten()
            .min();
            match soonest {
                Some((expires_at, key)) if !expires_at.is_live_at(now) => {
                    self.remove(&key);
                    removed += 1;
                }
                _ => break,
            }
        }
        removed
    }
}
