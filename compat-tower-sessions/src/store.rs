//! [`TowerStore`]: the four operations of a tower-sessions store, each one
//! call of the wrapped [`SessionStore`], written once for every supported
//! tower-sessions version (the trait impls in `versions.rs` only convert
//! types).

use std::fmt;
use std::sync::Arc;

use session_core::{Clock, Error, Overwrite, Record, SessionStore, SystemClock, Timestamp};
use time::OffsetDateTime;

use crate::format::{self, Data};
use crate::key::store_key_of;

/// How many fresh ids `create` tries before it gives up. A 128-bit random id
/// collides with a live one essentially never; a second collision in a row
/// means the random source or the store is broken, and looping forever
/// would hide it.
pub const CREATE_ATTEMPTS: u32 = 8;

/// How many expired records one `delete_expired` call of the wrapped store
/// may remove; tower's `delete_expired` repeats it until a call removes fewer.
pub const SWEEP_BATCH: usize = 1_000;

/// Any [`SessionStore`] of this workspace as a tower-sessions store.
///
/// It implements `tower_sessions_core::SessionStore` and `ExpiredDeletion`
/// of every tower-sessions version whose feature is on (`tower-sessions-0.14`,
/// the default, and `tower-sessions-0.15`), so it goes wherever a
/// tower-sessions store goes: `SessionManagerLayer::new(TowerStore::new(store))`.
///
/// What each tower operation does, in one call of the wrapped store (one
/// round trip on a networked server):
///
/// | tower | wrapped store | notes |
/// |---|---|---|
/// | `create` | `create` | atomic; on [`Error::AlreadyExists`] picks a new id and tries again (up to [`CREATE_ATTEMPTS`]) |
/// | `save` | `overwrite` | writes only a live session: a session deleted (logged out) or expired meanwhile stays gone, and `save` returns `Ok` |
/// | `load` | `load` | `None` for an expired session, even one still stored |
/// | `delete` | `delete` | |
/// | `delete_expired` | `delete_expired` in batches of [`SWEEP_BATCH`] | nothing to do where the server expires records itself (Redis) |
///
/// The clock is the wall clock unless given ([`TowerStore::with_clock`]):
/// tower's own stores read it too, since tower's trait passes no time.
pub struct TowerStore<S, C = SystemClock> {
    // Behind an `Arc` so the adapter is cheap to clone (axum-login's
    // examples clone the store for a deletion task) whatever `S` is.
    store: Arc<S>,
    clock: Arc<C>,
}

impl<S: SessionStore> TowerStore<S> {
    /// Wraps `store`, judging expiry by the wall clock.
    pub fn new(store: S) -> Self {
        Self::with_clock(store, SystemClock)
    }
}

impl<S: SessionStore, C: Clock> TowerStore<S, C> {
    /// Wraps `store`, judging expiry by `clock` (a
    /// [`ManualClock`](session_core::ManualClock) in tests).
    pub fn with_clock(store: S, clock: C) -> Self {
        Self {
            store: Arc::new(store),
            clock: Arc::new(clock),
        }
    }

    /// The wrapped store.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// tower's `create`: inserts a new session under `id`, or under a fresh
    /// id from `fresh_id` (written back to `id`) if a live session has it.
    pub(crate) async fn create_parts(
        &self,
        id: &mut i128,
        data: &Data,
        expiry: OffsetDateTime,
        fresh_id: impl Fn() -> i128 + Send,
    ) -> Result<(), Error> {
        // Encoded once: the bytes do not depend on the id.
        let bytes = format::encode(data, expiry)?;
        let expires_at = format::expires_at(expiry);
        for _ in 0..CREATE_ATTEMPTS {
            let now = self.now();
            let record = Record {
                key: store_key_of(*id),
                version: 1,
                data: bytes.clone(),
                created_at: now,
                expires_at,
                owner: None,
            };
            match self.store.create(record, now).await {
                Err(Error::AlreadyExists) => *id = fresh_id(),
                done => return done,
            }
        }
        Err(Error::backend(
            format!("tower create: {CREATE_ATTEMPTS} fresh session ids in a row were all taken"),
            false,
        ))
    }

    /// tower's `save`: a blind write of a live session; nothing if the
    /// session is no longer live.
    pub(crate) async fn save_parts(&self, id: i128, data: &Data, expiry: OffsetDateTime) -> Result<(), Error> {
        let write = Overwrite {
            data: format::encode(data, expiry)?,
            expires_at: format::expires_at(expiry),
            owner: None,
        };
        match self.store.overwrite(&store_key_of(id), write, self.now()).await {
            // Logged out or expired since this request loaded it: writing
            // would bring it back. tower's middleware answers 500 to a failed
            // save, so this is not an error: the browser's next request
            // simply finds no session.
            Ok(_) | Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// tower's `load`: the live session under `id`, decoded.
    pub(crate) async fn load_parts(&self, id: i128) -> Result<Option<(Data, OffsetDateTime)>, Error> {
        let now = self.now();
        let Some(record) = self.store.load(&store_key_of(id), now).await? else {
            return Ok(None);
        };
        let (data, expiry) = format::decode(&record.data)?;
        // The store judged `expires_at`; this judges what was saved, so a
        // record whose two expiries disagree (written by another program)
        // is never returned past tower's deadline either.
        if !format::expires_at(expiry).is_live_at(now) {
            return Ok(None);
        }
        Ok(Some((data, expiry)))
    }

    /// tower's `delete`.
    pub(crate) async fn delete_parts(&self, id: i128) -> Result<(), Error> {
        self.store.delete(&store_key_of(id), self.now()).await.map(drop)
    }

    /// tower's `delete_expired`: sweeps until a batch comes back short. `now`
    /// is fixed at the start, so the sweep ends: each batch removes records
    /// already expired then, of which there are finitely many.
    pub(crate) async fn delete_expired_parts(&self) -> Result<(), Error> {
        let now = self.now();
        while self.store.delete_expired(now, SWEEP_BATCH).await? >= SWEEP_BATCH as u64 {}
        Ok(())
    }
}

impl<S, C> Clone for TowerStore<S, C> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
        }
    }
}

/// tower's store trait requires `Debug`; this names the wrapped store's type
/// and nothing it holds.
impl<S, C> fmt::Debug for TowerStore<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerStore")
            .field("store", &std::any::type_name::<S>())
            .finish_non_exhaustive()
    }
}
