//! [`CountingStore`]: a store wrapper that counts every call and can play
//! a store that is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use session_core::{Error, Overwrite, OwnedSession, Record, SessionStore, StoreKey, Timestamp, Update, async_trait};

/// How many times each store operation was called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // one field per `SessionStore` method, named after it
pub struct Calls {
    pub create: u64,
    pub load: u64,
    pub update: u64,
    pub overwrite: u64,
    pub touch: u64,
    pub rotate: u64,
    pub was_rotated: u64,
    pub delete: u64,
    pub list_by_owner: u64,
    pub delete_by_owner: u64,
    pub delete_expired: u64,
}

impl Calls {
    /// All calls together.
    pub fn total(&self) -> u64 {
        self.create
            + self.load
            + self.update
            + self.overwrite
            + self.touch
            + self.rotate
            + self.was_rotated
            + self.delete
            + self.list_by_owner
            + self.delete_by_owner
            + self.delete_expired
    }
}

/// Which calls a [`CountingStore`] fails (with a transient backend error),
/// to play a store that is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failing {
    /// None: the store works.
    Nothing,
    /// Every call.
    Everything,
    /// Calls that write (`create`, `update`, `overwrite`, `touch`, `rotate`,
    /// the deletes); reads work.
    Writes,
}

#[derive(Default)]
struct Counters([AtomicU64; 11]);

/// Wraps a store, counts every call by operation, and fails calls on
/// demand. The kit proves the layer's store calls per request with it.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{SessionStore, StoreKey, Timestamp};
/// use session_tower::testkit::{CountingStore, Failing};
/// use store_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = CountingStore::new(Arc::new(MemoryStore::new()));
/// let key = StoreKey::from_bytes([1; 32]);
/// assert!(store.load(&key, Timestamp::now()).await.expect("works").is_none());
/// assert_eq!(store.calls().load, 1);
/// store.set_failing(Failing::Everything);
/// assert!(store.load(&key, Timestamp::now()).await.is_err());
/// # }
/// ```
pub struct CountingStore<S: ?Sized> {
    inner: Arc<S>,
    counters: Counters,
    failing: AtomicU8,
}

const CREATE: usize = 0;
const LOAD: usize = 1;
const UPDATE: usize = 2;
const OVERWRITE: usize = 3;
const TOUCH: usize = 4;
const ROTATE: usize = 5;
const WAS_ROTATED: usize = 6;
const DELETE: usize = 7;
const LIST: usize = 8;
const DELETE_BY_OWNER: usize = 9;
const DELETE_EXPIRED: usize = 10;

impl<S: SessionStore + ?Sized> CountingStore<S> {
    /// Wraps `inner`, counting from zero, failing nothing.
    pub fn new(inner: Arc<S>) -> Self {
        Self {
            inner,
            counters: Counters::default(),
            failing: AtomicU8::new(0),
        }
    }

    /// The store underneath.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// The calls since creation or the last [`reset`](Self::reset).
    pub fn calls(&self) -> Calls {
        let c = |i: usize| self.counters.0[i].load(Ordering::SeqCst);
        Calls {
            create: c(CREATE),
            load: c(LOAD),
            update: c(UPDATE),
            overwrite: c(OVERWRITE),
            touch: c(TOUCH),
            rotate: c(ROTATE),
            was_rotated: c(WAS_ROTATED),
            delete: c(DELETE),
            list_by_owner: c(LIST),
            delete_by_owner: c(DELETE_BY_OWNER),
            delete_expired: c(DELETE_EXPIRED),
        }
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        for c in &self.counters.0 {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// Which calls fail from now on.
    pub fn set_failing(&self, failing: Failing) {
        let v = match failing {
            Failing::Nothing => 0,
            Failing::Everything => 1,
            Failing::Writes => 2,
        };
        self.failing.store(v, Ordering::SeqCst);
    }

    fn enter(&self, op: usize, writes: bool) -> Result<(), Error> {
        self.counters.0[op].fetch_add(1, Ordering::SeqCst);
        match self.failing.load(Ordering::SeqCst) {
            1 => Err(Error::backend("the test store is down", true)),
            2 if writes => Err(Error::backend("the test store refuses writes", true)),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for CountingStore<S> {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        self.enter(CREATE, true)?;
        self.inner.create(record, now).await
    }
    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.enter(LOAD, false)?;
        self.inner.load(key, now).await
    }
    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        self.enter(UPDATE, true)?;
        self.inner.update(key, update, now).await
    }
    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        self.enter(OVERWRITE, true)?;
        self.inner.overwrite(key, write, now).await
    }
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        self.enter(TOUCH, true)?;
        self.inner.touch(key, expires_at, now).await
    }
    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        self.enter(ROTATE, true)?;
        self.inner.rotate(old_key, new_key, set_owner, now).await
    }
    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        self.enter(WAS_ROTATED, false)?;
        self.inner.was_rotated(key, now).await
    }
    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        self.enter(DELETE, true)?;
        self.inner.delete(key, now).await
    }
    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        self.enter(LIST, false)?;
        self.inner.list_by_owner(owner, now).await
    }
    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        self.enter(DELETE_BY_OWNER, true)?;
        self.inner.delete_by_owner(owner, now).await
    }
    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        self.enter(DELETE_EXPIRED, true)?;
        self.inner.delete_expired(now, limit).await
    }
    fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
        self.inner.shard_of_key(key)
    }
    fn shard_of_owner(&self, owner: &str) -> Option<u32> {
        self.inner.shard_of_owner(owner)
    }
}
