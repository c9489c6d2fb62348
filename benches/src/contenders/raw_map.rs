//! The physical limit of an in-process store: a sharded
//! `parking_lot::Mutex<HashMap>` (the structure `MemoryStore` is built on)
//! doing one get or insert of the same `Bytes` payload, with no expiry
//! index, no versions, no owner index.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use session_core::{StoreKey, Timestamp};

use crate::clock::BenchClock;
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// As many shards as `MemoryStore` uses at its default capacity.
const SHARDS: usize = 64;

/// Keys are uniform bytes already; like `MemoryStore`, fold two words
/// instead of running SipHash.
#[derive(Default)]
struct KeyHasher(u64);

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

/// The value: the payload and the expiry (so `touch` has something to write
/// and `load` something to check, as any session store must).
type Shard = HashMap<StoreKey, (Bytes, Timestamp), BuildHasherDefault<KeyHasher>>;

/// The raw sharded map.
pub struct RawMap {
    id: ContenderId,
    shards: Box<[Mutex<Shard>]>,
    clock: BenchClock,
}

impl RawMap {
    /// An empty map.
    pub fn new() -> Self {
        RawMap {
            id: ContenderId {
                backend: Backend::Memory,
                role: Role::Raw,
            },
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            clock: BenchClock::new(),
        }
    }

    fn shard(&self, key: &StoreKey) -> &Mutex<Shard> {
        &self.shards[usize::from(key.as_bytes()[0]) & (SHARDS - 1)]
    }
}

impl Default for RawMap {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Contender for RawMap {
    fn id(&self) -> &ContenderId {
        &self.id
    }

    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError> {
        for key in keys {
            self.create(key, payload).await?;
        }
        Ok(())
    }

    async fn create(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        self.shard(key)
            .lock()
            .insert(*key, (payload.clone(), self.clock.expiry()));
        Ok(())
    }

    async fn load(&self, key: &StoreKey) -> Result<bool, BenchError> {
        let now = self.clock.now();
        let found = self
            .shard(key)
            .lock()
            .get(key)
            .filter(|(_, expires_at)| now < *expires_at)
            .map(|(data, _)| data.clone());
        Ok(found.is_some())
    }

    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError> {
        self.shard(key)
            .lock()
            .insert(*key, (payload.clone(), self.clock.expiry()));
        Ok(expected_version + 1)
    }

    async fn touch(&self, key: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        let renewal = self.clock.renewal();
        if let Some((_, expires_at)) = self.shard(key).lock().get_mut(key) {
            *expires_at = renewal;
        }
        Ok(())
    }

    async fn rotate(&self, old: &StoreKey, new: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        let value = self.shard(old).lock().remove(old);
        if let Some(value) = value {
            self.shard(new).lock().insert(*new, value);
        }
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BenchError> {
        self.shard(key).lock().remove(key);
        Ok(())
    }
}
