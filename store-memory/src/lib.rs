//! # store-memory: sessions in this process's memory
//!
//! [`MemoryStore`] implements the [`SessionStore`] contract in memory. Pick
//! it for a single process (one server, a CLI, a desktop app) and for tests;
//! pick Redis, PostgreSQL or sled when sessions must survive a restart or be
//! shared by several processes.
//!
//! ## Guarantees
//!
//! - **Atomic and linearizable.** Sessions are spread over shards by their
//!   key; each operation holds the lock of the shard(s) it touches for a few
//!   map operations and never across an `.await`, so a short `std`-style
//!   lock (parking_lot) beats an async one. `rotate` locks its two shards in
//!   index order; `list_by_owner` and `delete_by_owner` lock every shard in
//!   index order, so they see one instant. Lock order is always ascending
//!   shard index, so no operation can deadlock another.
//! - **Bounded, and logged-in users come first.** At most
//!   [`MemoryStoreBuilder::max_sessions`] records and rotation marks are
//!   held (default 1,000,000), spread over shards by key. Adding one to a
//!   full shard first evicts, in this order: an expired record (or a
//!   rotation mark no longer in force), then a rotation mark, then the
//!   *anonymous* session (one without an owner) closest to its end, and an
//!   owned (logged-in) session only when the shard holds no anonymous one.
//!   A flood of unauthenticated traffic therefore pushes out only other
//!   anonymous sessions, never a logged-in user, and never grows memory
//!   without bound. Eviction is the one way this store removes a live
//!   session on its own.
//! - **Expired records are reclaimed without scans.** Each shard keeps an
//!   index ordered by expiry; eviction and
//!   [`delete_expired`](SessionStore::delete_expired) take from its front.
//! - **Durability: none.** Everything is lost when the process exits.
//!
//! ```
//! use std::time::Duration;
//! use session_core::{Record, SessionId, SessionStore, Timestamp};
//! use store_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::Error> {
//! let store = MemoryStore::builder().max_sessions(10_000).build();
//! let now = Timestamp::now();
//! let key = SessionId::generate()?.store_key();
//! store
//!     .create(
//!         Record {
//!             key,
//!             version: 1,
//!             data: Default::default(),
//!             created_at: now,
//!             expires_at: now + Duration::from_secs(1800),
//!             owner: None,
//!         },
//!         now,
//!     )
//!     .await?;
//! assert!(store.load(&key, now).await?.is_some());
//! assert!(store.load(&key, now + Duration::from_secs(1800)).await?.is_none());
//! # Ok(())
//! # }
//! ```

mod shard;

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use session_core::{Error, Overwrite, OwnedSession, Record, SessionStore, StoreKey, Timestamp, Update, async_trait};

use shard::{Entry, Shard};

/// Default bound on the number of stored sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 1_000_000;

/// The most shards a store uses; enough that 32 tasks rarely meet on one lock.
const MAX_SHARDS: usize = 64;

/// Sessions per shard below which fewer shards are used, so that small
/// capacities stay exact (eviction works per shard).
const MIN_SESSIONS_PER_SHARD: usize = 1024;

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

/// Configures a [`MemoryStore`].
///
/// ```
/// let store = store_memory::MemoryStore::builder().max_sessions(50_000).build();
/// assert_eq!(store.max_sessions(), 50_000);
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder {
    max_sessions: usize,
}

impl MemoryStoreBuilder {
    /// The most sessions the store holds (at least 1). Default 1,000,000.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n.max(1);
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let shards = (self.max_sessions / MIN_SESSIONS_PER_SHARD).clamp(1, MAX_SHARDS);
        // A power of two, so the shard index is a mask of the key's first byte.
        let shards = if shards.is_power_of_two() {
            shards
        } else {
            shards.next_power_of_two() / 2
        };
        let base = self.max_sessions / shards;
        let extra = self.max_sessions % shards;
        let shards = (0..shards)
            .map(|i| Mutex::new(Shard::new(base + usize::from(i < extra))))
            .collect();
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                max_sessions: self.max_sessions,
            }),
        }
    }
}

impl MemoryStore {
    /// A store bounded at [`DEFAULT_MAX_SESSIONS`].
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder with the defaults.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_sessions: DEFAULT_MAX_SESSIONS,
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
