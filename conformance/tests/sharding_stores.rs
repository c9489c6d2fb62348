//! The suite on a store that shards, as a Redis Cluster store does: 16
//! `MemoryStore`s, one per shard, where an owner's sessions live in the
//! owner's shard, a misplaced owned record is refused with `WrongShard`, and
//! a rotate between two shards is two steps (seal the old key, then publish
//! the new one). It passes the whole suite, declaring
//! `atomic_cross_shard_rotate = false`; the same store that publishes before
//! it seals, or that declares its two steps atomic, is caught by the
//! cross-shard rotate rule.

use std::sync::atomic::{AtomicU64, Ordering};

use conformance::rules::races::a_rotate_across_shards_never_shows_two_live_copies;
use conformance::{StoreFactory, Unavailable, fresh_key};
use session_core::{Error, Overwrite, OwnedSession, Record, SessionStore, StoreKey, Timestamp, Update, async_trait};
use store_memory::MemoryStore;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How many shards the store splits its records into.
const SHARDS: u32 = 16;

/// How many loads a rotate across shards waits for between its two steps:
/// both keys read by each of the race rule's two readers, so that they
/// see the state between the steps every time, by count, not by timing.
const LOADS_BETWEEN_STEPS: u64 = 4;

/// How many times a rotate yields, waiting for those loads, before it goes
/// on without them: in the rules that race no reader against it.
const YIELDS_BETWEEN_STEPS: u32 = 10_000;

/// The order of the two steps of a rotate across shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Steps {
    /// Seal the old key (a rotation mark), then publish the new record:
    /// between the two, neither key is live.
    SealThenPublish,
    /// The flaw: publish first, so that for a moment both keys are live.
    PublishThenSeal,
}

struct Sharded {
    /// One store per shard.
    shards: Vec<MemoryStore>,
    /// One lock per shard. A rotate across shards holds both of its shards'
    /// exclusively over its two steps, as a Redis slot runs one script at a
    /// time: what it checks before it moves a record still holds when it
    /// moves it. Every other write or listing holds its shard's shared: the
    /// `MemoryStore` beneath is atomic by itself, and serializing those
    /// writes on a queue would only add contention a real shard does not
    /// have. Loads and `was_rotated` take none: they are what the two steps
    /// expose.
    locks: Vec<RwLock<()>>,
    steps: Steps,
    /// Loads so far, which a rotate across shards waits on between its steps.
    loads: AtomicU64,
}

impl Sharded {
    fn new(steps: Steps) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| MemoryStore::builder().max_sessions(100_000).build())
                .collect(),
            locks: (0..SHARDS).map(|_| RwLock::new(())).collect(),
            steps,
            loads: AtomicU64::new(0),
        }
    }

    fn key_shard(key: &StoreKey) -> u32 {
        u32::from(key.as_bytes()[0]) % SHARDS
    }

    /// FNV-1a of the owner's bytes: deterministic across processes.
    fn owner_shard(owner: &str) -> u32 {
        let hash = owner
            .bytes()
            .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        hash % SHARDS
    }

    fn store(&self, shard: u32) -> &MemoryStore {
        &self.shards[shard as usize]
    }

    async fn lock(&self, shard: u32) -> RwLockReadGuard<'_, ()> {
        self.locks[shard as usize].read().await
    }

    async fn lock_exclusive(&self, shard: u32) -> RwLockWriteGuard<'_, ()> {
        self.locks[shard as usize].write().await
    }

    /// Between a rotate's two steps: until racing readers have loaded
    /// [`LOADS_BETWEEN_STEPS`] times, or [`YIELDS_BETWEEN_STEPS`] yields
    /// when none are racing.
    async fn let_readers_in(&self) {
        let start = self.loads.load(Ordering::SeqCst);
        for _ in 0..YIELDS_BETWEEN_STEPS {
            if self.loads.load(Ordering::SeqCst) - start >= LOADS_BETWEEN_STEPS {
                return;
            }
            tokio::task::yield_now().await;
        }
    }

    /// `WrongShard` unless a record of `owner` may be stored under `key`.
    fn check_place(key: &StoreKey, owner: Option<&str>) -> Result<(), Error> {
        match owner.map(Self::owner_shard) {
            Some(owner_shard) if owner_shard != Self::key_shard(key) => Err(Error::WrongShard {
                key_shard: Self::key_shard(key),
                owner_shard,
            }),
            _ => Ok(()),
        }
    }

    /// A rotate from shard `from` to shard `to`, in two steps.
    async fn rotate_across(
        &self,
        (old_key, from): (&StoreKey, u32),
        (new_key, to): (&StoreKey, u32),
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let (_first, _second) = (
            self.lock_exclusive(from.min(to)).await,
            self.lock_exclusive(from.max(to)).await,
        );
        let Some(old) = self.store(from).load(old_key, now).await? else {
            return Err(Error::NotFound);
        };
        if self.store(to).load(new_key, now).await?.is_some() {
            return Err(Error::AlreadyExists);
        }
        let owner = set_owner.map(str::to_owned).or(old.owner);
        Self::check_place(new_key, owner.as_deref())?;
        let moved = Record {
            key: *new_key,
            version: 1,
            owner,
            ..old
        };
        let publish = self.store(to);
        match self.steps {
            Steps::SealThenPublish => {
                self.seal(from, old_key, now).await?;
                self.let_readers_in().await;
                publish.create(moved.clone(), now).await?;
            }
            Steps::PublishThenSeal => {
                publish.create(moved.clone(), now).await?;
                self.let_readers_in().await;
                self.seal(from, old_key, now).await?;
            }
        }
        Ok(moved)
    }

    /// The first step of a rotate across shards: leaves a rotation mark
    /// under `old_key` by rotating its record to a key no one knows, and
    /// drops it there. The caller holds the shard's lock.
    async fn seal(&self, shard: u32, old_key: &StoreKey, now: Timestamp) -> Result<(), Error> {
        let parked = fresh_key();
        self.store(shard).rotate(old_key, &parked, None, now).await?;
        self.store(shard).delete(&parked, now).await.map(drop)
    }
}

#[async_trait]
impl SessionStore for Sharded {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        Self::check_place(&record.key, record.owner.as_deref())?;
        let shard = Self::key_shard(&record.key);
        let _locked = self.lock(shard).await;
        self.store(shard).create(record, now).await
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.store(Self::key_shard(key)).load(key, now).await
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        Self::check_place(key, update.owner.as_deref())?;
        let shard = Self::key_shard(key);
        let _locked = self.lock(shard).await;
        self.store(shard).update(key, update, now).await
    }

    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        Self::check_place(key, write.owner.as_deref())?;
        let shard = Self::key_shard(key);
        let _locked = self.lock(shard).await;
        self.store(shard).overwrite(key, write, now).await
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        let shard = Self::key_shard(key);
        let _locked = self.lock(shard).await;
        self.store(shard).touch(key, expires_at, now).await
    }

    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let (from, to) = (Self::key_shard(old_key), Self::key_shard(new_key));
        if from != to {
            return self.rotate_across((old_key, from), (new_key, to), set_owner, now).await;
        }
        Self::check_place(new_key, set_owner)?;
        // Without a new owner the record keeps its own, whose shard is this
        // one: every write checked that.
        let _locked = self.lock(from).await;
        self.store(from).rotate(old_key, new_key, set_owner, now).await
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        self.store(Self::key_shard(key)).was_rotated(key, now).await
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let shard = Self::key_shard(key);
        let _locked = self.lock(shard).await;
        self.store(shard).delete(key, now).await
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        let shard = Self::owner_shard(owner);
        let _locked = self.lock(shard).await;
        self.store(shard).list_by_owner(owner, now).await
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        let shard = Self::owner_shard(owner);
        let _locked = self.lock(shard).await;
        self.store(shard).delete_by_owner(owner, now).await
    }

    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        let mut removed = 0;
        for shard in 0..SHARDS {
            let left = limit.saturating_sub(usize::try_from(removed).unwrap_or(usize::MAX));
            if left == 0 {
                break;
            }
            let _locked = self.lock(shard).await;
            removed += self.store(shard).delete_expired(now, left).await?;
        }
        Ok(removed)
    }

    fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
        Some(Self::key_shard(key))
    }

    fn shard_of_owner(&self, owner: &str) -> Option<u32> {
        Some(Self::owner_shard(owner))
    }
}

struct ShardedFactory {
    steps: Steps,
    /// What the factory declares with `atomic_cross_shard_rotate`.
    declares_atomic: bool,
}

/// The store as a Redis Cluster store is built, declared as it must be.
const HONEST: ShardedFactory = ShardedFactory {
    steps: Steps::SealThenPublish,
    declares_atomic: false,
};

#[async_trait]
impl StoreFactory for ShardedFactory {
    type Store = Sharded;

    fn name(&self) -> &'static str {
        "sharded memory"
    }

    async fn make(&self) -> Result<Sharded, Unavailable> {
        Ok(Sharded::new(self.steps))
    }

    fn atomic_cross_shard_rotate(&self) -> bool {
        self.declares_atomic
    }
}

/// Every rule of the suite, against the honest store.
mod suite {
    conformance::suite!(super::HONEST);
}

/// Runs the cross-shard rotate rule against `factory` and returns its
/// failure message, or panics if it passed.
fn cross_shard_rule_fails(factory: ShardedFactory) -> String {
    let outcome = std::panic::catch_unwind(|| {
        conformance::run(
            factory,
            a_rotate_across_shards_never_shows_two_live_copies::<ShardedFactory>,
        );
    });
    let Err(panic) = outcome else {
        panic!("the cross-shard rotate rule passed a store it must catch");
    };
    panic.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn a_rotate_that_publishes_before_it_seals_is_caught() {
    let message = cross_shard_rule_fails(ShardedFactory {
        steps: Steps::PublishThenSeal,
        declares_atomic: false,
    });
    assert!(message.contains("two live copies"), "unexpected failure: {message}");
}

#[test]
fn a_two_step_rotate_declared_atomic_is_caught() {
    let message = cross_shard_rule_fails(ShardedFactory {
        steps: Steps::SealThenPublish,
        declares_atomic: true,
    });
    assert!(message.contains("neither key live"), "unexpected failure: {message}");
}
