//! The [`SessionStore`] trait: the storage contract every backend implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::id::SESSION_ID_BYTES;
use crate::{Error, Overwrite, OwnedSession, Record, SessionId, StoreKey, Timestamp, Update};

/// How long [`rotate`](SessionStore::rotate) keeps a *rotation mark* under
/// the old key (or until the old session would have expired, if sooner).
///
/// Long enough for requests already in flight with the old token to finish;
/// short enough that a browser which never received its new token (a lost
/// login response) is treated as a new visitor again within a minute.
pub const ROTATION_MARK_TTL: Duration = Duration::from_secs(60);

/// Storage for sessions, with exact semantics.
///
/// This trait's documentation is the normative contract: every backend in
/// this workspace, and any third-party one, must behave exactly as written
/// here, and the `conformance` crate checks it (one test per rule, a model of
/// this text, a linearizability checker).
///
/// # Liveness
///
/// - A record is *live* at `now` iff `now < expires_at`. At
///   `now == expires_at` it is expired. `now` always comes from the caller;
///   a store never reads its own clock to judge liveness.
/// - **Expired is absent.** An expired record is indistinguishable from a
///   missing one for every operation, even while it physically exists.
///   Nothing ever brings an expired or deleted session back to life.
/// - **Physical removal is garbage collection.** A server TTL, a sweeper or
///   an eviction may remove a record later than `expires_at`, never earlier
///   by the caller's clock. (A bounded in-memory store may additionally evict
///   live records when full; it documents so.)
///
/// # Versions
///
/// `version` is 1 after [`create`](SessionStore::create) and
/// [`rotate`](SessionStore::rotate) and grows by exactly 1 with every
/// successful [`update`](SessionStore::update) or
/// [`overwrite`](SessionStore::overwrite); [`touch`](SessionStore::touch)
/// never changes it. A store refuses, with [`Error::Corrupt`] and without
/// writing, to move a version past `u64::MAX`.
///
/// # Rotation marks
///
/// A successful `rotate` leaves a *rotation mark* under the old key until
/// `min(old expires_at, now + ROTATION_MARK_TTL)`. The mark is not a session:
/// for every operation but [`was_rotated`](SessionStore::was_rotated) the old
/// key is absent (not live), a `create` or a `rotate` onto it replaces the
/// mark, and a `delete` removes it (returning `false`). It holds no data and
/// no owner. The HTTP layer uses it to tell a request that carried a token
/// rotated a moment ago (by a concurrent login) from one with an unknown or
/// expired token, and so never answers the former with a cookie that would
/// clobber the new one.
///
/// # Owners
///
/// An owner is a string accepted by [`validate_owner`](crate::validate_owner):
/// 1 to [`MAX_OWNER_LEN`](crate::MAX_OWNER_LEN) bytes of UTF-8 without control
/// characters. Every store must accept every such owner and keep any two of
/// them apart (separators, glob and hash-tag characters, quotes, non-ASCII
/// text, the longest ones). Callers (the manager) refuse other strings before
/// calling a store; a store may refuse them too.
///
/// # Atomicity and round trips
///
/// Each operation is atomic and linearizable: it takes effect at one instant
/// between its call and its return. Two `update`s that both expect version
/// *v* cannot both succeed. A `delete` or `rotate` racing an `update` or
/// `touch` either happens before it (the update then gets `NotFound`, the
/// touch `false`) or after it; it never leaves a resurrected record. On a
/// networked server each operation costs one round trip. A backend that
/// cannot promise this everywhere (Redis Cluster, for an owner change across
/// slots) says exactly where, and the conformance suite declares exactly
/// that difference for it.
///
/// # Errors
///
/// Undecodable stored bytes give [`Error::Corrupt`]; server failures give
/// [`Error::Backend`], which says whether a retry may help. No operation
/// panics on any input, stored bytes included, and no error message holds a
/// token. An operation that only *reads* many records
/// ([`list_by_owner`](SessionStore::list_by_owner)) skips damaged ones
/// instead of failing; operations that *end* sessions remove damaged ones.
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
    /// live record has its key. An expired record or a rotation mark under
    /// the key is replaced.
    ///
    /// Errors: [`Error::AlreadyExists`] if a live record has the key (nothing
    /// is written).
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error>;

    /// Reads the record under `key`: `Some` if it is live at `now`, `None`
    /// otherwise (a rotation mark included).
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

    /// Blind write of data, expiry and owner: like [`update`](Self::update)
    /// but whatever the stored version is. Writes only if the record is live
    /// at `now`, so it never brings a session back; the version grows by 1
    /// and the new one is returned. `created_at` is unchanged.
    ///
    /// For callers that keep no version (an adapter for tower-sessions'
    /// `save`). It can overwrite a concurrent write: use `update` wherever
    /// the version is known.
    ///
    /// Errors: [`Error::NotFound`] if no live record has the key (nothing is
    /// written).
    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error>;

    /// Renewal: if the record is live at `now`, sets
    /// `expires_at := max(stored expires_at, expires_at)` and returns `true`;
    /// otherwise returns `false` and writes nothing. Never shortens a session,
    /// never revives one, never changes the version.
    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error>;

    /// Moves a live session to a new key, atomically, and returns the record
    /// now stored under `new_key`: the old record's data, `created_at` and
    /// `expires_at`, version 1, and its owner, or `set_owner` if given (a
    /// login or a user switch: the owner changes in the same step). The old
    /// key is left with a [rotation mark](#rotation-marks).
    ///
    /// The returned record is the one moved, so a caller whose copy of the
    /// session is older (another request wrote meanwhile) continues from what
    /// is stored, never from its stale copy.
    ///
    /// Errors, checked in this order: [`Error::NotFound`] if `old_key` is not
    /// live; [`Error::AlreadyExists`] if `new_key` is live (including
    /// `new_key == old_key`). Nothing changes on error. An expired record or
    /// a rotation mark under `new_key` is replaced.
    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error>;

    /// Whether `key` holds a [rotation mark](#rotation-marks) in force at
    /// `now`: its session was rotated to another key less than
    /// [`ROTATION_MARK_TTL`] ago (and would not have expired yet), and
    /// nothing has been written under `key` since.
    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error>;

    /// Removes whatever is under `key`: a record live or expired, or a
    /// rotation mark. Returns `true` iff a record live at `now` was removed.
    ///
    /// A record too damaged to decode is removed too (a user must always be
    /// able to log out) and counts as not live unless its expiry can still be
    /// read.
    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error>;

    /// The sessions of `owner` that are live at `now`, in no particular order.
    ///
    /// A record of the owner too damaged to read is left out (and logged), so
    /// one damaged record never hides the others from a "your devices" page.
    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error>;

    /// Ends every session of `owner`; returns how many of them were live at
    /// `now`. Expired records of the owner may be removed too (not counted),
    /// and so may damaged ones, as for [`delete`](SessionStore::delete).
    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error>;

    /// Physical sweep: removes up to `limit` records that are expired at
    /// `now` and returns how many it removed. Compare-and-delete: a record
    /// renewed meanwhile (live at `now`) is never removed. Rotation marks no
    /// longer in force may be removed too; they are not counted. A backend
    /// whose server expires records by itself may return 0.
    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error>;

    /// The shard of `key`, on a store that splits its records into shards
    /// and can keep an owner's sessions atomic only within one shard (Redis
    /// Cluster); `None` (the default) on a store that keeps everything
    /// together. Pure and cheap: it reads no I/O, only the key.
    ///
    /// ```
    /// use session_core::{SessionId, SessionStore};
    /// # fn f(store: &dyn SessionStore) -> Result<(), session_core::Error> {
    /// let key = SessionId::generate()?.store_key();
    /// if let Some(shard) = store.shard_of_key(&key) {
    ///     println!("the session would live in shard {shard}");
    /// }
    /// # Ok(()) }
    /// ```
    fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
        let _ = key;
        None
    }

    /// The shard an owned session's key must be in (see
    /// [`shard_of_key`](Self::shard_of_key)), or `None` (the default) if
    /// any key will do.
    ///
    /// On a store that returns `Some`, [`create`](Self::create),
    /// [`update`](Self::update) and [`overwrite`](Self::overwrite) of a
    /// record owned by `owner` whose key is in another shard fail with
    /// [`Error::WrongShard`] and write nothing, and a
    /// [`rotate`](Self::rotate) onto a key in another shard than its
    /// resulting owner's does too. [`mint_id`] makes ids whose key is in a
    /// wanted shard, and [`SessionManager`](crate::SessionManager) uses it
    /// for every id it makes, so an application that goes through the
    /// manager never sees the error. The placement is checked before
    /// anything else, so `WrongShard` comes before `NotFound`, `Conflict` and
    /// `AlreadyExists`; only a `rotate` without `set_owner`, which learns the
    /// owner from the record it moves, gives `NotFound` first when the old key
    /// is not live. A `rotate` that moves a session
    /// between two shards (a login into another owner's shard) may then be
    /// two steps instead of one; the store documents how.
    ///
    /// ```
    /// use session_core::{SessionStore, mint_id};
    /// # fn f(store: &dyn SessionStore) -> Result<(), session_core::Error> {
    /// // An id for a new session of "user-42", wherever this store wants it.
    /// let id = mint_id(store, store.shard_of_owner("user-42"))?;
    /// assert_eq!(store.shard_of_key(&id.store_key()), store.shard_of_owner("user-42"));
    /// # Ok(()) }
    /// ```
    fn shard_of_owner(&self, owner: &str) -> Option<u32> {
        let _ = owner;
        None
    }
}

/// How many candidate ids [`mint_id`] draws before it gives up: far more
/// than any store with a sane number of shards needs (a store of `n`
/// shards needs `n` on average), far fewer than would hang a caller.
const MINT_ATTEMPTS: u32 = 1 << 24;

/// A new session id whose store key is in `shard` of `store` (see
/// [`SessionStore::shard_of_owner`]), or any new id if `shard` is `None`.
///
/// Draws random ids until one fits: `n` draws on average for a store of `n`
/// shards, each a SHA-256 of 32 bytes from a buffer of OS randomness, so
/// every id keeps its full 256 random bits of which the store's shard
/// function sees only the hash.
///
/// Errors: a permanent [`Error::Backend`] if the OS random source fails, or
/// if no id fits after 2^24 draws (a store whose `shard_of_key` never
/// returns `shard`).
///
/// ```
/// use session_core::{SessionStore, mint_id};
/// # fn f(store: &dyn SessionStore) -> Result<(), session_core::Error> {
/// let anywhere = mint_id(store, None)?;
/// # Ok(()) }
/// ```
pub fn mint_id<S: SessionStore + ?Sized>(store: &S, shard: Option<u32>) -> Result<SessionId, Error> {
    let Some(shard) = shard else {
        return SessionId::generate();
    };
    // 32 candidates per call to the OS.
    let mut pool = [0u8; SESSION_ID_BYTES * 32];
    let mut drawn = 0;
    while drawn < MINT_ATTEMPTS {
        getrandom::fill(&mut pool).map_err(|e| Error::backend(format!("the OS random source failed: {e}"), false))?;
        for chunk in pool.chunks_exact(SESSION_ID_BYTES) {
            let mut bytes = [0u8; SESSION_ID_BYTES];
            bytes.copy_from_slice(chunk);
            let id = SessionId::from_bytes(bytes);
            if store.shard_of_key(&id.store_key()) == Some(shard) {
                return Ok(id);
            }
        }
        drawn += 32;
    }
    Err(Error::backend(
        format!("no session id fits shard {shard} of this store after {MINT_ATTEMPTS} draws"),
        false,
    ))
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

    fn overwrite<'s, 'k, 'f>(&'s self, key: &'k StoreKey, write: Overwrite, now: Timestamp) -> StoreFuture<'f, u64>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).overwrite(key, write, now)
    }

    fn touch<'s, 'k, 'f>(&'s self, key: &'k StoreKey, expires_at: Timestamp, now: Timestamp) -> StoreFuture<'f, bool>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).touch(key, expires_at, now)
    }

    fn rotate<'s, 'o, 'n, 'w, 'f>(
        &'s self,
        old_key: &'o StoreKey,
        new_key: &'n StoreKey,
        set_owner: Option<&'w str>,
        now: Timestamp,
    ) -> StoreFuture<'f, Record>
    where
        's: 'f,
        'o: 'f,
        'n: 'f,
        'w: 'f,
        Self: 'f,
    {
        (**self).rotate(old_key, new_key, set_owner, now)
    }

    fn was_rotated<'s, 'k, 'f>(&'s self, key: &'k StoreKey, now: Timestamp) -> StoreFuture<'f, bool>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        (**self).was_rotated(key, now)
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

    fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
        (**self).shard_of_key(key)
    }

    fn shard_of_owner(&self, owner: &str) -> Option<u32> {
        (**self).shard_of_owner(owner)
    }
}
