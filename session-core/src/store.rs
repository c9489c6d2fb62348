//! The [`SessionStore`] trait: the storage contract every backend implements.

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

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        (**self).create(record, now).await
    }
    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        (**self).load(key, now).await
    }
    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        (**self).update(key, update, now).await
    }
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        (**self).touch(key, expires_at, now).await
    }
    async fn rotate(&self, old_key: &StoreKey, new_key: &StoreKey, now: Timestamp) -> Result<(), Error> {
        (**self).rotate(old_key, new_key, now).await
    }
    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        (**self).delete(key, now).await
    }
    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        (**self).list_by_owner(owner, now).await
    }
    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        (**self).delete_by_owner(owner, now).await
    }
    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        (**self).delete_expired(now, limit).await
    }
}
