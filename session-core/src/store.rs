//! The [`SessionStore`] trait: the storage contract every backend implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{Error, OwnedSession, Record, StoreKey, Timestamp, Update};

/// Storage for sessions, with exact semantics.
///
/// This trait is the contract of section 3 of the design. Every backend in
/// this workspace, and any third-party one, must behave exactly as documented
/// here; the `conformance` crate checks it.
///
/// # Rules shared by every operation
///
/// - **Liveness.** A record is *live* at `now` iff `now < expires_at`. At
///   `now == expires_at` it is expired. `now` always comes from the caller;
///   a store never reads its own clock to judge liveness.
/// - **Expired is absent.** An expired record is indistinguishable from a
///   missing one for every operation, even while it physically exists.
///   Nothing ever brings an expired or deleted session back to life.
/// - **Physical removal is garbage collection.** A server TTL, a sweeper or
///   an eviction may remove a record later than `expires_at`, never earlier
///   by the caller's clock. (A bounded in-memory store may additionally evict
///   live records when full; it documents so.)
/// - **Atomic and linearizable.** Each operation takes effect at one instant
///   between its call and its return. Two `update`s that both expect version
///   *v* cannot both succeed. On a networked server each operation costs one
///   round trip.
/// - **Bad bytes are errors.** Undecodable stored bytes give
///   [`Error::Corrupt`]; server failures give [`Error::Backend`]. No
///   operation panics on any input.
///
/// The trait is object safe: `Arc<dyn SessionStore>` works.
///
/// ```
/// use std::sync::Arc;
/// use session_core::SessionStore;
///
/// fn takes_any_store(_store: Arc<dyn SessionStore>) {}
/// ```
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts `record` with version 1 (whatever `record.version` says) if no
    /// live record has its key. An expired record under the key is replaced.
    ///
    /// Errors: [`Error::AlreadyExists`] if a live record has the key (nothing
    /// is written).
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error>;

    /// Reads the record under `key`: `Some` if it is live at `now`, `None`
    /// otherwise.
    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error>;

    /// Compare-and-swap write of data, expiry and owner.
    ///
    /// Writes only if the record is live at `now` and its version equals
    /// `update.expected_version`; the version then becomes
    /// `expected_version + 1`, which is returned. `created_at` is unchanged.
    ///
    /// Errors: [`Error::NotFound`] if no live record has the key;
    /// [`Error::Conflict`] with the stored version if it differs. Nothing is
    /// written in either case.
    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error>;

    /// Renewal: if the record is live at `now`, sets
    /// `expires_at := max(stored expires_at, expires_at)` and returns `true`;
    /// otherwise returns `false` and writes nothing. Never shortens a session,
    /// never revives one, never changes the version.
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error>;

    /// Moves a live session to a new key, atomically: `new_key` gets the old
    /// record's data, owner, `created_at` and `expires_at` with version 1, and
    /// `old_key` is removed.
    ///
    /// Errors, checked in this order: [`Error::NotFound`] if `old_key` is not
    /// live; [`Error::AlreadyExists`] if `new_key` is live (including
    /// `new_key == old_key`). Nothing changes on error. An expired record
    /// under `new_key` is replaced.
    async fn rotate(&self, old_key: &StoreKey, new_key: &StoreKey, now: Timestamp) -> Result<(), Error>;

    /// Removes the record under `key`, live or expired. Returns `true` iff a
    /// record live at `now` was removed.
    ///
    /// A record too damaged to decode is removed too (a user must always be
    /// able to log out) and counts as not live unless its expiry can still be
    /// read.
    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error>;

    /// The sessions of `owner` that are live at `now`, in no particular order.
    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error>;

    /// Ends every session of `owner`; returns how many of them were live at
    /// `now`. Expired records of the owner may be removed too (not counted),
    /// and so may damaged ones, as for [`delete`](SessionStore::delete).
    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error>;

    /// Physical sweep: removes up to `limit` records that are expired at
    /// `now` and returns how many it removed. Compare-and-delete: a record
    /// renewed meanwhile (live at `now`) is never removed. A backend whose
    /// server expires records by itself may return 0.
    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error>;
}

/// The boxed future every [`SessionStore`] method returns (what
/// `#[async_trait]` expands `async fn` to).
type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// An `Arc` of a store is a store. Written out by hand rather than with
/// `#[async_trait]`, which would wrap the inner store's boxed future in a
/// second box on every call: this forwards the inner future as it is.
impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    fn create<'s, 'f>(&'s self, record: Record, now: Timestamp) -> StoreFuture<'f, ()>
    where
        's: 'f,
        Self: 'f,
    {
        (**self).create(record, now)
    }

    fn load<'s, 'k, 'f>(&'s self, key: &'k StoreKey, now: Timestamp) -> StoreFuture<'f, Option<Record>>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).load(key, now)
    }

    fn update<'s, 'k, 'f>(&'s self, key: &'k StoreKey, update: Update, now: Timestamp) -> StoreFuture<'f, u64>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).update(key, update, now)
    }

    fn touch<'s, 'k, 'f>(&'s self, key: &'k StoreKey, expires_at: Timestamp, now: Timestamp) -> StoreFuture<'f, bool>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).touch(key, expires_at, now)
    }

    fn rotate<'s, 'o, 'n, 'f>(
        &'s self,
        old_key: &'o StoreKey,
        new_key: &'n StoreKey,
        now: Timestamp,
    ) -> StoreFuture<'f, ()>
    where
        's: 'f,
        'o: 'f,
        'n: 'f,
        Self: 'f,
    {
        (**self).rotate(old_key, new_key, now)
    }

    fn delete<'s, 'k, 'f>(&'s self, key: &'k StoreKey, now: Timestamp) -> StoreFuture<'f, bool>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).delete(key, now)
    }

    fn list_by_owner<'s, 'o, 'f>(&'s self, owner: &'o str, now: Timestamp) -> StoreFuture<'f, Vec<OwnedSession>>
    where
        's: 'f,
        'o: 'f,
        Self: 'f,
    {
        (**self).list_by_owner(owner, now)
    }

    fn delete_by_owner<'s, 'o, 'f>(&'s self, owner: &'o str, now: Timestamp) -> StoreFuture<'f, u64>
    where
        's: 'f,
        'o: 'f,
        Self: 'f,
    {
        (**self).delete_by_owner(owner, now)
    }

    fn delete_expired<'s, 'f>(&'s self, now: Timestamp, limit: usize) -> StoreFuture<'f, u64>
    where
        's: 'f,
        Self: 'f,
    {
        (**self).delete_expired(now, limit)
    }
}
