//! Per-session turns for writers in one process.
//!
//! Saves are compare-and-swap, so correctness never depends on this: two
//! processes sharing a store still race, conflict and re-apply. But 64
//! requests of one process incrementing one session at once would mostly
//! lose their races and burn their retries; taking turns per session makes
//! a conflict the exception (one re-apply after a write of another process
//! or of a request that loaded earlier).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use session_core::StoreKey;

/// A lock per session key, created on demand and removed when unused.
#[derive(Default)]
pub(crate) struct KeyLocks {
    // A std mutex: held only to look up or drop an entry, never across an
    // await. The per-key tokio mutex is held across the save's store calls.
    map: Mutex<HashMap<StoreKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds `key`'s turn until dropped.
pub(crate) struct Turn {
    locks: Arc<KeyLocks>,
    key: StoreKey,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyLocks {
    pub(crate) async fn turn(self: &Arc<Self>, key: StoreKey) -> Turn {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(map.entry(key).or_default())
        };
        let guard = Arc::clone(&lock).lock_owned().await;
        Turn {
            locks: Arc::clone(self),
            key,
            lock,
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // New handles to an entry are only made under the map lock, so if
        // the map and this turn hold the only two, nobody waits for it.
        if map
            .get(&self.key)
            .is_some_and(|l| Arc::ptr_eq(l, &self.lock) && Arc::strong_count(l) == 2)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_go_away_when_nobody_holds_or_waits() {
        let locks = Arc::new(KeyLocks::default());
        let key = StoreKey::from_bytes([1; 32]);
        let first = locks.turn(key).await;
        let waiter = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move { drop(locks.turn(key).await) })
        };
        tokio::task::yield_now().await;
        drop(first);
        waiter.await.expect("the waiter got its turn");
        assert_eq!(locks.len(), 0);
    }
}
