//! [`MemoryStoreBuilder`]: the bound, and how it is spread over shards.

use crate::MemoryStore;

/// Default bound on the number of stored sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 1_000_000;

/// The most shards a store uses; enough that 32 tasks rarely meet on one lock.
const MAX_SHARDS: usize = 64;

/// Sessions per shard below which fewer shards are used, so that small
/// capacities stay exact (eviction works per shard).
const MIN_SESSIONS_PER_SHARD: usize = 1024;

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
        MemoryStore::with_shard_capacities((0..shards).map(|i| base + usize::from(i < extra)), self.max_sessions)
    }
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}
