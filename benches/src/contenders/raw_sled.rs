//! The physical limit of an embedded sled store: one sled tree, one
//! `get`/`insert`/`remove` per operation, with a compare-and-swap where the
//! operation needs "only if absent" (`create`) or is a read-modify-write
//! (`update`, a compare-and-set by contract: read the current value, then
//! swap it only if unchanged; `touch`), with the same cache size and flush
//! interval as the `SledStore` it is compared with.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use session_core::StoreKey;

use crate::clock::BenchClock;
use crate::namespace::Namespace;
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// Page cache of every sled contender (ours, raw, peer).
pub const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Flush interval of every sled contender: sled's default, 500 ms. The
/// same durability for all three, so the comparison is of the stores.
pub const SLED_FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Opens a sled database at a fresh temporary directory with the shared
/// settings. For the raw and peer contenders.
pub fn open_sled(namespace: &Namespace) -> Result<sled::Db, BenchError> {
    let Namespace::Directory(path) = namespace else {
        return Err(BenchError("a sled database needs a directory".into()));
    };
    sled::Config::new()
        .path(path)
        .cache_capacity(SLED_CACHE_BYTES)
        .flush_every_ms(Some(SLED_FLUSH_EVERY.as_millis() as u64))
        .open()
        .map_err(|e| BenchError::new("opening sled", e))
}

/// Raw sled.
pub struct RawSled {
    id: ContenderId,
    tree: sled::Tree,
    clock: BenchClock,
    namespace: Namespace,
}

impl RawSled {
    /// A new database in a temporary directory.
    pub fn open() -> Result<Self, BenchError> {
        let namespace = Namespace::temp_directory("raw_sled");
        let db = open_sled(&namespace)?;
        let tree = db.open_tree("sessions").map_err(|e| BenchError::new("sled tree", e))?;
        Ok(RawSled {
            id: ContenderId {
                backend: Backend::Sled,
                role: Role::Raw,
            },
            tree,
            clock: BenchClock::new(),
            namespace,
        })
    }

    /// Value layout: expiry (8 bytes, big endian) then the payload.
    fn value(&self, expires_at: i64, payload: &[u8]) -> Vec<u8> {
        let mut value = Vec::with_capacity(8 + payload.len());
        value.extend_from_slice(&expires_at.to_be_bytes());
        value.extend_from_slice(payload);
        value
    }
}

fn failed(op: &str) -> impl Fn(sled::Error) -> BenchError + '_ {
    move |e| BenchError::new(op, e)
}

#[async_trait]
impl Contender for RawSled {
    fn id(&self) -> &ContenderId {
        &self.id
    }

    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError> {
        // Plain inserts, not `apply_batch`: a batch (like a transaction)
        // switches sled's process-wide lock on for every database in the
        // process for good, which would slow every sled contender after it.
        let value = self.value(self.clock.expiry().as_millis(), payload);
        for key in keys {
            self.tree
                .insert(&key.as_bytes()[..], value.as_slice())
                .map_err(failed("preload"))?;
        }
        Ok(())
    }

    async fn create(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        let value = self.value(self.clock.expiry().as_millis(), payload);
        self.tree
            .compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(value))
            .map_err(failed("create"))?
            .map_err(|_| BenchError("create: the key exists".into()))
    }

    async fn load(&self, key: &StoreKey) -> Result<bool, BenchError> {
        let now = self.clock.now().as_millis();
        let value = self.tree.get(key.as_bytes()).map_err(failed("load"))?;
        Ok(value.is_some_and(|v| v.len() >= 8 && i64::from_be_bytes(v[..8].try_into().unwrap_or([0; 8])) > now))
    }

    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError> {
        // A compare-and-set needs the current value: read it, then swap it
        // only if nobody changed it meanwhile.
        let value = self.value(self.clock.expiry().as_millis(), payload);
        let current = self.tree.get(key.as_bytes()).map_err(failed("update"))?;
        // A lost race (another task changed it meanwhile) is a real outcome
        // of a compare-and-swap, as for `SledStore`, not an error.
        let _swapped = self
            .tree
            .compare_and_swap(key.as_bytes(), current, Some(value))
            .map_err(failed("update"))?;
        Ok(expected_version + 1)
    }

    async fn touch(&self, key: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        let renewal = self.clock.renewal().as_millis().to_be_bytes();
        self.tree
            .update_and_fetch(key.as_bytes(), |old| {
                old.map(|v| {
                    let mut v = v.to_vec();
                    if v.len() >= 8 {
                        v[..8].copy_from_slice(&renewal);
                    }
                    v
                })
            })
            .map_err(failed("touch"))?;
        Ok(())
    }

    async fn rotate(&self, old: &StoreKey, new: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        if let Some(value) = self.tree.remove(old.as_bytes()).map_err(failed("rotate"))? {
            self.tree.insert(new.as_bytes(), value).map_err(failed("rotate"))?;
        }
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BenchError> {
        self.tree.remove(key.as_bytes()).map_err(failed("delete"))?;
        Ok(())
    }

    async fn cleanup(&self) -> Result<(), BenchError> {
        self.namespace.remove().await
    }
}
