//! One shard: a map of records plus the two indexes that keep eviction,
//! sweeping and owner queries free of full scans.
//!
//! Invariant, kept by `insert` and `remove` (the only places that add or
//! remove records): every record in `records` has exactly one entry
//! `(expires_at, key)` in `by_expiry`, and one entry in `by_owner[owner]` if
//! it has an owner; neither index holds anything else. Every other method
//! goes through those two, or changes `expires_at` through `set_expiry`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use session_core::{Bytes, Error, OwnedSession, Record, StoreKey, Timestamp, Update};

/// A stored record without its key (the map key holds it).
pub(crate) struct Entry {
    pub(crate) version: u64,
    pub(crate) data: Bytes,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
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

type KeyMap<V> = HashMap<StoreKey, V, BuildHasherDefault<KeyHasher>>;
type KeySet = HashSet<StoreKey, BuildHasherDefault<KeyHasher>>;

pub(crate) struct Shard {
    records: KeyMap<Entry>,
    by_expiry: BTreeSet<(Timestamp, StoreKey)>,
    by_owner: HashMap<Arc<str>, KeySet>,
    capacity: usize,
}

impl Shard {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            records: KeyMap::default(),
            by_expiry: BTreeSet::new(),
            by_owner: HashMap::new(),
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn live(&self, key: &StoreKey, now: Timestamp) -> Option<&Entry> {
        self.records.get(key).filter(|e| e.expires_at.is_live_at(now))
    }

    /// Inserts (or replaces) `key`, evicting the soonest-expiring record first
    /// if the shard is full.
    pub(crate) fn insert(&mut self, key: StoreKey, entry: Entry) {
        self.remove(&key);
        if self.records.len() >= self.capacity
            && let Some(&(_, victim)) = self.by_expiry.first()
        {
            self.remove(&victim);
        }
        self.by_expiry.insert((entry.expires_at, key));
        if let Some(owner) = &entry.owner {
            self.by_owner.entry(Arc::clone(owner)).or_default().insert(key);
        }
        self.records.insert(key, entry);
    }

    pub(crate) fn remove(&mut self, key: &StoreKey) -> Option<Entry> {
        let entry = self.records.remove(key)?;
        self.by_expiry.remove(&(entry.expires_at, *key));
        if let Some(owner) = &entry.owner {
            self.unindex_owner(owner, key);
        }
        Some(entry)
    }

    fn unindex_owner(&mut self, owner: &Arc<str>, key: &StoreKey) {
        if let Some(keys) = self.by_owner.get_mut(owner) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    fn set_expiry(&mut self, key: &StoreKey, expires_at: Timestamp) {
        if let Some(entry) = self.records.get_mut(key)
            && entry.expires_at != expires_at
        {
            self.by_expiry.remove(&(entry.expires_at, *key));
            self.by_expiry.insert((expires_at, *key));
            entry.expires_at = expires_at;
        }
    }

    pub(crate) fn update(&mut self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        let entry = self.live(key, now).ok_or(Error::NotFound)?;
        if entry.version != update.expected_version {
            return Err(Error::Conflict { current: entry.version });
        }
        let version = entry.version + 1;
        let owner_changed = entry.owner.as_deref() != update.owner.as_deref();
        if owner_changed {
            // Re-inserting keeps both indexes right; the shard is not full of
            // anything new, so it cannot evict.
            let old = self.remove(key).expect("the record was just found live in this shard");
            let entry = Entry {
                version,
                data: update.data,
                created_at: old.created_at,
                expires_at: update.expires_at,
                owner: update.owner.map(Arc::from),
            };
            self.insert(*key, entry);
        } else {
            self.set_expiry(key, update.expires_at);
            if let Some(entry) = self.records.get_mut(key) {
                entry.version = version;
                entry.data = update.data;
            }
        }
        Ok(version)
    }

    pub(crate) fn touch(&mut self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> bool {
        match self.live(key, now) {
            Some(entry) => {
                if expires_at > entry.expires_at {
                    self.set_expiry(key, expires_at);
                }
                true
            }
            None => false,
        }
    }

    /// Checks rotate's preconditions and removes the old record, returning it
    /// ready to insert under `new_key`. `other` is the new key's shard when it
    /// differs from this one.
    pub(crate) fn take_for_rotate(
        &mut self,
        old_key: &StoreKey,
        new_key: &StoreKey,
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
        entry.version = 1;
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
                self.by_expiry.remove(&(entry.expires_at, key));
                live += u64::from(entry.expires_at.is_live_at(now));
            }
        }
        live
    }

    pub(crate) fn remove_expired(&mut self, now: Timestamp, limit: usize) -> usize {
        let mut removed = 0;
        while removed < limit {
            match self.by_expiry.first() {
                Some(&(expires_at, key)) if !expires_at.is_live_at(now) => {
                    self.remove(&key);
                    removed += 1;
                }
                _ => break,
            }
        }
        removed
    }

    pub(crate) fn overwrite_data(&mut self, key: &StoreKey, data: Bytes) -> bool {
        match self.records.get_mut(key) {
            Some(entry) => {
                entry.data = data;
                true
            }
            None => false,
        }
    }
}
