//! [`MemoryStore`]: the sharded map and the contract's operations on it.

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use session_core::{Error, Overwrite, OwnedSession, Record, SessionStore, StoreKey, Timestamp, Update, async_trait};

use crate::builder::MemoryStoreBuilder;
use crate::shard::{Entry, Shard};

/// A bounded in-memory session store. Cheap to clone: clones share the same
/// sessions.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    max_sessions: usize,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.inner.shards.len())
            .field("max_sessions", &self.inner.max_sessions)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store bounded at [`DEFAULT_MAX_SESSIONS`](crate::DEFAULT_MAX_SESSIONS).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder with the defaults.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// A store with one shard per capacity (a power of two of them: the
    /// shard index is a mask of the key's first byte).
    pub(crate) fn with_shard_capacities(capacities: impl Iterator<Item = usize>, max_sessions: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: capacities.map(|c| Mutex::new(Shard::new(c))).collect(),
                max_sessions,
            }),
        }
    }

    /// The configured bound.
    pub fn max_sessions(&self) -> usize {
        self.inner.max_sessions
    }

    /// How many records are held now, live or expired-but-not-yet-reclaimed.
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether no records are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard_index(&self, key: &StoreKey) -> usize {
        // Keys are SHA-256 outputs: any byte is uniformly distributed.
        usize::from(key.as_bytes()[0]) & (self.inner.shards.len() - 1)
    }

    fn shard(&self, key: &StoreKey) -> MutexGuard<'_, Shard> {
        self.inner.shards[self.shard_index(key)].lock()
    }

    fn all_shards(&self) -> Vec<MutexGuard<'_, Shard>> {
        // Ascending index order, like every multi-shard lock, so no deadlock.
        self.inner.shards.iter().map(|s| s.lock()).collect()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        let mut shard = self.shard(&record.key);
        if shard.live(&record.key, now).is_some() {
            return Err(Error::AlreadyExists);
        }
        shard.insert(record.key, Entry::from_record(record), now);
        Ok(())
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        Ok(self.shard(key).live(key, now).map(|e| e.to_record(*key)))
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        self.shard(key).update(key, update, now)
    }

    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        self.shard(key).overwrite(key, write, now)
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        Ok(self.shard(key).touch(key, expires_at, now))
    }

    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let (a, b) = (self.shard_index(old_key), self.shard_index(new_key));
        if a == b {
            let mut shard = self.inner.shards[a].lock();
            let entry = shard.take_for_rotate(old_key, new_key, set_owner, now, None)?;
            let moved = entry.to_record(*new_key);
            shard.insert(*new_key, entry, now);
            return Ok(moved);
        }
        // Two shards: lock in ascending index order.
        let (first, second) = (self.inner.shards[a.min(b)].lock(), self.inner.shards[a.max(b)].lock());
        let (mut old_shard, mut new_shard) = if a < b { (first, second) } else { (second, first) };
        let entry = old_shard.take_for_rotate(old_key, new_key, set_owner, now, Some(&new_shard))?;
        let moved = entry.to_record(*new_key);
        new_shard.insert(*new_key, entry, now);
        Ok(moved)
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        Ok(self.shard(key).was_rotated(key, now))
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        Ok(self.shard(key).delete(key, now))
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        let shards = self.all_shards();
        Ok(shards.iter().flat_map(|s| s.list_owner(owner, now)).collect())
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        let mut shards = self.all_shards();
        Ok(shards.iter_mut().map(|s| s.remove_owner(owner, now)).sum())
    }

    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        let mut removed = 0;
        for shard in self.inner.shards.iter() {
            if removed >= limit {
                break;
            }
            removed += shard.lock().remove_expired(now, limit - removed);
        }
        Ok(removed as u64)
    }
}
