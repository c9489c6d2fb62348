//! [`Session`]: the per-request handle a handler uses, and what the layer
//! does with it when the handler is done.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use session_core::{SessionData, StoreKey, Timestamp, validate_owner};
use tokio::sync::Mutex;

use crate::backend::Backend;
use crate::config::SessionConfig;
use crate::csrf;
use crate::locks::KeyLocks;
use crate::token::{Outgoing, Token};
use crate::{CsrfFailure, Error};

/// What every request of one layer shares.
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) config: SessionConfig,
    pub(crate) locks: Arc<KeyLocks>,
}

/// The session of the current request: a cheap handle (clone it freely)
/// that [`SessionLayer`](crate::SessionLayer) puts into the request's
/// extensions; with the `axum` feature it is an extractor.
///
/// Not to be confused with [`session_core::Session`], the manager's copy of
/// a stored session, which this handle keeps inside.
///
/// Nothing is loaded until the first call that needs the session; writes
/// ([`insert`](Self::insert), [`remove`](Self::remove)) are kept and saved
/// by the layer when the handler is done, before the response leaves;
/// [`update`](Self::update), [`save`](Self::save), [`login`](Self::login),
/// [`logout`](Self::logout) and the device calls act on the store at once.
/// Every call returns a `Result`: a store that is down reaches the handler
/// as [`Error::Store`].
///
/// ```
/// use session_tower::Session;
///
/// async fn visit(session: Session) -> Result<String, session_tower::Error> {
///     // One atomic read-modify-write: concurrent requests never lose a visit.
///     let visits = session
///         .update(|data| {
///             let n = data.get::<u64>("visits")?.unwrap_or(0) + 1;
///             data.insert("visits", &n)?;
///             Ok(n)
///         })
///         .await?;
///     let theme: Option<String> = session.get("theme").await?;
///     session.insert("last_page", "/visit").await?; // saved at the end
///     Ok(format!("visit {visits}, theme {theme:?}"))
/// }
/// ```
#[derive(Clone)]
pub struct Session {
    state: Arc<Mutex<State>>,
    // The request's token, outside the lock: the CSRF check reads it.
    token: Arc<Token>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// One of the owner's sessions, for a "your devices" page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// Names the session: a hash of its token, safe to show and to post
    /// back to [`Session::end_device`]; not a credential.
    pub key: StoreKey,
    /// When it was created (kept by rotation, so: when this device logged in
    /// or first visited).
    pub created_at: Timestamp,
    /// When it ends unless renewed.
    pub expires_at: Timestamp,
    /// Whether it is the session of the current request.
    pub current: bool,
}

/// What a request wrote to a key since its copy was loaded: re-applied to a
/// fresh copy after a version conflict. Last write wins per key.
#[derive(Debug, Clone)]
enum Change {
    Set(Vec<u8>),
    Removed,
}

/// Where the request's session stands.
#[derive(Debug)]
enum Slot {
    /// Not looked at yet: no store call made.
    Unloaded,
    /// No live session: none was sent, it was malformed, unknown or
    /// expired, or it ended during this request.
    Absent,
    /// No stored session, but the handler wrote: created at the end.
    Fresh(SessionData),
    /// A stored session: loaded, or created or rotated in this request.
    Live(session_core::Session),
}

/// Which part of the request last moved a live session's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moved {
    /// A load's renewal or a save made by a handler call: a login in
    /// another request may have rotated the session since.
    ByHandler,
    /// The layer's own save at the end, just before the response leaves.
    AtFinish,
}

#[derive(Debug)]
struct State {
    slot: Slot,
    changes: BTreeMap<String, Change>,
    /// The handler (or the CSRF check) looked at the session: `Vary`.
    accessed: bool,
    moved: Option<Moved>,
    /// The session ended in another request during this one: no more
    /// writes, no cookie.
    gone: bool,
    /// This request rotated the request's token away itself (a login).
    rotated_here: bool,
    /// Cache of `was_rotated` for the request's token.
    rotated_elsewhere: Option<bool>,
    /// A logout (or ending the current device) happened in this request.
    destroyed: bool,
    finished: bool,
}

/// The layer's verdict on a finished request.
pub(crate) struct Finish {
    pub(crate) outgoing: Option<Outgoing>,
    pub(crate) error: Option<Error>,
    pub(crate) accessed: bool,
    pub(crate) now: Timestamp,
    pub(crate) logged_out: bool,
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, token: Token) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                slot: Slot::Unloaded,
                changes: BTreeMap::new(),
                accessed: false,
                moved: None,
                gone: false,
                rotated_here: false,
                rotated_elsewhere: None,
                destroyed: false,
                finished: false,
            })),
            token: Arc::new(token),
            shared,
        }
    }

    fn backend(&self) -> &dyn Backend {
        &*self.shared.backend
    }

    /// Reads the value under `key` (loads the session on first use: one
    /// `load`, plus a `touch` when renewal is due). `Ok(None)` if absent or
    /// if there is no session.
    ///
    /// Errors: [`Error::Store`] if the store fails or the value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        Ok(match &st.slot {
            Slot::Live(s) => s.data().get(key)?,
            Slot::Fresh(data) => data.get(key)?,
            Slot::Absent | Slot::Unloaded => None,
        })
    }

    /// Stores `value` under `key`; saved when the handler is done (unless the
    /// response is a 5xx). A request without a session gets a new one, with
    /// a server-minted id, at the end.
    ///
    /// Errors: [`Error::Store`] (the store failed to load, or the value does
    /// not serialize); [`Error::SessionGone`] if the session ended in
    /// another request during this one.
    pub async fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        if st.gone {
            return Err(Error::SessionGone);
        }
        match &mut st.slot {
            Slot::Live(s) => {
                s.data_mut().insert(key, value)?;
                let raw = s.data().get_raw(key).map(<[u8]>::to_vec).unwrap_or_default();
                st.changes.insert(key.to_owned(), Change::Set(raw));
            }
            Slot::Fresh(data) => data.insert(key, value)?,
            Slot::Absent | Slot::Unloaded => {
                let mut data = SessionData::new();
                data.insert(key, value)?;
                st.slot = Slot::Fresh(data);
            }
        }
        Ok(())
    }

    /// Removes `key`; returns whether it was there. Saved like
    /// [`insert`](Self::insert).
    ///
    /// Errors: [`Error::Store`] if the load fails.
    pub async fn remove(&self, key: &str) -> Result<bool, Error> {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        let was = match &mut st.slot {
            Slot::Live(s) => {
                let was = s.data().contains_key(key);
                if was {
                    s.data_mut().remove(key);
                    st.changes.insert(key.to_owned(), Change::Removed);
                }
                was
            }
            Slot::Fresh(data) => data.remove(key),
            Slot::Absent | Slot::Unloaded => false,
        };
        Ok(was)
    }

    /// Atomic read-modify-write of the data, at once: `f` runs on the
    /// current data and the result is saved with a compare-and-swap; if
    /// another request wrote meanwhile, `f` runs again on the fresh data
    /// (so it may run several times: keep side effects out of it). Use it
    /// for counters, carts, anything computed from the previous value: it
    /// cannot lose an increment. A request without a session gets one.
    ///
    /// Uncontended, on a loaded session, it costs one store call (the
    /// save). Pending [`insert`](Self::insert)s of this request are saved
    /// with it.
    ///
    /// Errors: [`Error::SessionGone`] if the session ended meanwhile (or the
    /// request's token was rotated away by a login in another request);
    /// [`Error::Store`] with `Contended` after
    /// [`max_save_attempts`](crate::SessionConfig::max_save_attempts) lost
    /// races, or whatever `f` returns.
    pub async fn update<T, F>(&self, mut f: F) -> Result<T, Error>
    where
        F: FnMut(&mut SessionData) -> Result<T, session_core::Error> + Send,
        T: Send,
    {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        if !matches!(st.slot, Slot::Live(_)) {
            let mut data = self.start_new(&mut st).await?;
            let out = f(&mut data)?;
            self.create(&mut st, data, None).await?;
            return Ok(out);
        }
        self.write_live(&mut st, &mut f).await
    }

    /// Saves this request's pending changes now instead of at the end, so
    /// the handler learns the outcome. A request without a session that
    /// wrote gets its new session now.
    ///
    /// Errors: [`Error::SessionGone`] if the session ended in another
    /// request (nothing was written and no cookie will bring it back), or
    /// if the request carried a token that a concurrent login rotated away
    /// (the writes are dropped: a new session would clobber the login's
    /// cookie); [`Error::Store`].
    pub async fn save(&self) -> Result<(), Error> {
        let mut st = self.state.lock().await;
        self.check_open(&st)?;
        if st.gone {
            return Err(Error::SessionGone);
        }
        match std::mem::replace(&mut st.slot, Slot::Absent) {
            Slot::Live(s) => {
                let pending = s.is_dirty() || !st.changes.is_empty();
                st.slot = Slot::Live(s);
                if pending {
                    self.write_live(&mut st, &mut |_| Ok(())).await?;
                }
                Ok(())
            }
            Slot::Fresh(data) => {
                st.slot = Slot::Fresh(data);
                if self.rotated_elsewhere(&mut st).await? {
                    st.slot = Slot::Absent;
                    return Err(Error::SessionGone);
                }
                let Slot::Fresh(data) = std::mem::replace(&mut st.slot, Slot::Absent) else {
                    unreachable!("the slot was just set to Fresh and the lock is held")
                };
                self.create(&mut st, data, None).await
            }
            other => {
                st.slot = other;
                Ok(())
            }
        }
    }

    /// Gives the session a new id (on any privilege change), keeping its
    /// data, owner and absolute deadline, in one atomic store step; pending
    /// changes are saved first. The new cookie is sent even if the
    /// response turns out a 5xx, since the old id is dead. No-op without a
    /// live session.
    ///
    /// Errors: [`Error::SessionGone`], [`Error::Store`].
    pub async fn rotate(&self) -> Result<(), Error> {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        if !matches!(st.slot, Slot::Live(_)) {
            return Ok(());
        }
        self.flush_pending(&mut st).await?;
        let Slot::Live(s) = &mut st.slot else { return Ok(()) };
        let result = self.backend().rotate(s).await;
        self.after_rotation(&mut st, result)
    }

    /// Login, re-login or a switch to another user: sets the owner and gives
    /// the session a new id in one atomic store step (the data and the
    /// absolute deadline carry over), which also gives it a new CSRF token.
    /// Always call it on authentication, even when the same user logs in
    /// again (OWASP ASVS 7.2.4). A request without a session gets a new one
    /// owned by `owner`.
    ///
    /// From a loaded anonymous session this costs two store calls: the
    /// load (the manager rotates a copy it has read) and the rotation.
    ///
    /// Errors: [`Error::Store`] with `InvalidOwner` before any store call;
    /// [`Error::SessionGone`] if a login in another request rotated this
    /// token away meanwhile (the user is logged in by that one).
    pub async fn login(&self, owner: impl Into<String>) -> Result<(), Error> {
        let owner = owner.into();
        validate_owner(&owner)?;
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        if !matches!(st.slot, Slot::Live(_)) {
            let data = self.start_new(&mut st).await?;
            return self.create(&mut st, data, Some(owner)).await;
        }
        self.flush_pending(&mut st).await?;
        let Slot::Live(s) = &mut st.slot else {
            return Err(Error::SessionGone);
        };
        let result = self.backend().rotate_to_owner(s, owner).await;
        self.after_rotation(&mut st, result)
    }

    /// Logout: ends the session in the store at once (one `delete`, no
    /// load) and sends a removal cookie (and `Clear-Site-Data` if
    /// configured), even if the response turns out a 5xx. Returns whether a
    /// live session was ended.
    ///
    /// Errors: [`Error::Store`] (nothing is assumed ended then).
    pub async fn logout(&self) -> Result<bool, Error> {
        let mut st = self.state.lock().await;
        self.check_open(&st)?;
        st.accessed = true;
        let mut ended = false;
        if let Some(id) = self.token.id()
            && !st.rotated_here
        {
            ended |= self.backend().destroy(id).await?;
        }
        if let Slot::Live(s) = &st.slot
            && Some(s.id()) != self.token.id()
        {
            ended |= self.backend().destroy(s.id()).await?;
        }
        st.slot = Slot::Absent;
        st.changes.clear();
        st.destroyed = true;
        st.moved = None;
        Ok(ended)
    }

    /// The owner (the logged-in user), if any.
    ///
    /// Errors: [`Error::Store`] if the load fails.
    pub async fn owner(&self) -> Result<Option<String>, Error> {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        Ok(match &st.slot {
            Slot::Live(s) => s.owner().map(str::to_owned),
            _ => None,
        })
    }

    /// The store key of the live session (safe to show or log), if any.
    ///
    /// Errors: [`Error::Store`] if the load fails.
    pub async fn store_key(&self) -> Result<Option<StoreKey>, Error> {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        Ok(match &st.slot {
            Slot::Live(s) => Some(s.key()),
            _ => None,
        })
    }

    /// When the live session ends unless renewed, if there is one.
    ///
    /// Errors: [`Error::Store`] if the load fails.
    pub async fn expires_at(&self) -> Result<Option<Timestamp>, Error> {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        Ok(match &st.slot {
            Slot::Live(s) => Some(s.expires_at()),
            _ => None,
        })
    }

    /// The session's CSRF token, for a hidden form field or a
    /// `x-csrf-token` header. A request without a live session gets one now
    /// (one `create`): a login form needs a token before anyone logs in.
    ///
    /// The token is bound to the session id (see [`CsrfLayer`](crate::CsrfLayer)),
    /// so it changes with every rotation, login included.
    ///
    /// Errors: [`Error::SessionGone`] if the request's token was rotated
    /// away by a concurrent login; [`Error::Store`].
    pub async fn csrf_token(&self) -> Result<String, Error> {
        let mut st = self.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        if !matches!(st.slot, Slot::Live(_)) {
            let data = self.start_new(&mut st).await?;
            self.create(&mut st, data, None).await?;
        }
        match &st.slot {
            Slot::Live(s) => Ok(csrf::token_for(s.id())),
            _ => Err(Error::SessionGone),
        }
    }

    /// Checks a submitted CSRF token against the request's session, in
    /// constant time, without a store call; what
    /// [`CsrfLayer`](crate::CsrfLayer) does for every unsafe request.
    ///
    /// Errors: [`Error::Csrf`] saying why.
    pub fn verify_csrf(&self, submitted: &str) -> Result<(), Error> {
        let Some(expected) = self.expected_csrf() else {
            return Err(Error::Csrf(CsrfFailure::NoSession));
        };
        if csrf::matches(&expected, submitted) {
            Ok(())
        } else {
            Err(Error::Csrf(CsrfFailure::Wrong))
        }
    }

    /// The CSRF token this request must carry: the one of the token it sent.
    pub(crate) fn expected_csrf(&self) -> Option<String> {
        if let Ok(mut st) = self.state.try_lock() {
            st.accessed = true;
        }
        self.token.id().map(csrf::token_for)
    }

    pub(crate) fn uses_cookie(&self) -> bool {
        self.shared.config.uses_cookie()
    }

    /// The owner's sessions, oldest first, the current one marked.
    ///
    /// Errors: [`Error::NotLoggedIn`]; [`Error::Store`].
    pub async fn devices(&self) -> Result<Vec<Device>, Error> {
        let mut st = self.state.lock().await;
        let (owner, current) = self.owner_and_key(&mut st).await?;
        let list = self.backend().list_by_owner(&owner).await?;
        Ok(list
            .into_iter()
            .map(|s| Device {
                key: s.key,
                created_at: s.created_at,
                expires_at: s.expires_at,
                current: s.key == current,
            })
            .collect())
    }

    /// Ends one of the owner's sessions, named by its key (from
    /// [`devices`](Self::devices)). A key that is not a live session of this
    /// owner ends nothing (`false`): a user can only end their own
    /// sessions. Ending the current one is a logout.
    ///
    /// Errors: [`Error::NotLoggedIn`]; [`Error::Store`].
    pub async fn end_device(&self, key: &StoreKey) -> Result<bool, Error> {
        let mut st = self.state.lock().await;
        let (owner, current) = self.owner_and_key(&mut st).await?;
        let ended = self.backend().destroy_owned(&owner, key).await?;
        if ended && *key == current {
            st.slot = Slot::Absent;
            st.changes.clear();
            st.destroyed = true;
            st.moved = None;
        }
        Ok(ended)
    }

    /// "Log out everywhere else": ends every session of the owner but the
    /// current one; returns how many. One `list` plus one ended session at a
    /// time, so a device that logs in while this runs may survive it.
    ///
    /// Errors: [`Error::NotLoggedIn`]; [`Error::Store`].
    pub async fn end_other_devices(&self) -> Result<u64, Error> {
        let mut st = self.state.lock().await;
        let (owner, current) = self.owner_and_key(&mut st).await?;
        let mut ended = 0;
        for s in self.backend().list_by_owner(&owner).await? {
            if s.key != current && self.backend().destroy_owned(&owner, &s.key).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// "Log out everywhere": ends every session of the owner, this one
    /// included (a logout, with its removal cookie), in one store call;
    /// returns how many were live.
    ///
    /// Errors: [`Error::NotLoggedIn`]; [`Error::Store`].
    pub async fn end_all_devices(&self) -> Result<u64, Error> {
        let mut st = self.state.lock().await;
        let (owner, _) = self.owner_and_key(&mut st).await?;
        let ended = self.backend().destroy_by_owner(&owner).await?;
        st.slot = Slot::Absent;
        st.changes.clear();
        st.destroyed = true;
        st.moved = None;
        Ok(ended)
    }

    // ----- internals -----

    fn check_open(&self, st: &State) -> Result<(), Error> {
        if st.finished {
            Err(Error::RequestFinished)
        } else {
            Ok(())
        }
    }

    async fn ensure_loaded(&self, st: &mut State) -> Result<(), Error> {
        self.check_open(st)?;
        st.accessed = true;
        if !matches!(st.slot, Slot::Unloaded) {
            return Ok(());
        }
        match &*self.token {
            Token::Valid(id) => match self.backend().load(id).await? {
                Some(s) => {
                    if s.renewed_on_load() {
                        st.moved = Some(Moved::ByHandler);
                    }
                    st.slot = Slot::Live(s);
                }
                None => st.slot = Slot::Absent,
            },
            Token::Malformed => {
                tracing::debug!("malformed session token: treated as no session");
                st.slot = Slot::Absent;
            }
            Token::Missing => st.slot = Slot::Absent,
        }
        Ok(())
    }

    async fn owner_and_key(&self, st: &mut State) -> Result<(String, StoreKey), Error> {
        self.ensure_loaded(st).await?;
        match &st.slot {
            Slot::Live(s) => match s.owner() {
                Some(o) => Ok((o.to_owned(), s.key())),
                None => Err(Error::NotLoggedIn),
            },
            _ => Err(Error::NotLoggedIn),
        }
    }

    /// Whether the request's token was rotated away by a login in another
    /// request moments ago (asked once per request, only when the layer is
    /// about to start a new session or refresh the cookie).
    async fn rotated_elsewhere(&self, st: &mut State) -> Result<bool, Error> {
        if st.rotated_here {
            return Ok(false);
        }
        if let Some(known) = st.rotated_elsewhere {
            return Ok(known);
        }
        let Some(id) = self.token.id() else { return Ok(false) };
        let rotated = self.backend().was_rotated(id).await?;
        st.rotated_elsewhere = Some(rotated);
        Ok(rotated)
    }

    /// The data a new session starts with, after checking that starting one
    /// is allowed: not after the session ended during this request, and not
    /// for a token a concurrent login rotated away (its cookie would clobber
    /// the login's).
    async fn start_new(&self, st: &mut State) -> Result<SessionData, Error> {
        if st.gone || self.rotated_elsewhere(st).await? {
            return Err(Error::SessionGone);
        }
        Ok(match std::mem::replace(&mut st.slot, Slot::Absent) {
            Slot::Fresh(data) => data,
            _ => SessionData::new(),
        })
    }

    async fn create(&self, st: &mut State, data: SessionData, owner: Option<String>) -> Result<(), Error> {
        match self.backend().create_with(data.clone(), owner).await {
            Ok(s) => {
                st.slot = Slot::Live(s);
                st.changes.clear();
                Ok(())
            }
            Err(e) => {
                // Keep the writes for the end-of-request attempt.
                if !data.is_empty() {
                    st.slot = Slot::Fresh(data);
                }
                Err(e.into())
            }
        }
    }

    async fn flush_pending(&self, st: &mut State) -> Result<(), Error> {
        let pending = match &st.slot {
            Slot::Live(s) => s.is_dirty() || !st.changes.is_empty(),
            _ => false,
        };
        if pending {
            self.write_live(st, &mut |_| Ok(())).await?;
        }
        Ok(())
    }

    fn after_rotation(&self, st: &mut State, result: Result<(), session_core::Error>) -> Result<(), Error> {
        match result {
            Ok(()) => {
                st.rotated_here = true;
                st.moved = None;
                Ok(())
            }
            Err(session_core::Error::NotFound) => {
                self.mark_gone(st);
                Err(Error::SessionGone)
            }
            Err(e @ session_core::Error::Corrupt(_)) => {
                // The rotation happened (the copy carries the new id); only
                // the moved data did not decode. The browser must follow.
                st.rotated_here = true;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn mark_gone(&self, st: &mut State) {
        tracing::debug!("the session ended in another request; dropping this request's writes");
        st.slot = Slot::Absent;
        st.changes.clear();
        st.gone = true;
        st.moved = None;
    }

    /// Compare-and-swap save of the live copy after applying `f`; on a
    /// version conflict, reloads, re-applies this request's change log and
    /// `f`, and tries again, bounded. Holds the session's in-process turn.
    async fn write_live<T>(
        &self,
        st: &mut State,
        f: &mut (dyn FnMut(&mut SessionData) -> Result<T, session_core::Error> + Send),
    ) -> Result<T, Error> {
        let Slot::Live(s) = &st.slot else {
            return Err(Error::SessionGone);
        };
        let key = s.key();
        let _turn = self.shared.locks.turn(key).await;
        let attempts = self.shared.config.max_save_attempts;
        for _ in 0..attempts {
            let Slot::Live(s) = &st.slot else {
                return Err(Error::SessionGone);
            };
            let mut working = s.clone();
            let out = f(working.data_mut())?;
            match self.backend().save(&mut working).await {
                Ok(()) => {
                    st.slot = Slot::Live(working);
                    st.changes.clear();
                    st.moved = Some(Moved::ByHandler);
                    return Ok(out);
                }
                Err(session_core::Error::Conflict { current }) => {
                    tracing::debug!(key = %key.short(), current, "save lost a version race; re-applying this request's changes");
                    let id = working.id().clone();
                    match self.backend().load(&id).await? {
                        Some(mut fresh) => {
                            for (k, change) in &st.changes {
                                match change {
                                    Change::Set(raw) => fresh.data_mut().insert_raw(k.clone(), raw.clone()),
                                    Change::Removed => {
                                        fresh.data_mut().remove(k);
                                    }
                                }
                            }
                            st.slot = Slot::Live(fresh);
                        }
                        None => {
                            self.mark_gone(st);
                            return Err(Error::SessionGone);
                        }
                    }
                }
                Err(session_core::Error::NotFound) => {
                    self.mark_gone(st);
                    return Err(Error::SessionGone);
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!(key = %key.short(), attempts, "save gave up under contention");
        Err(session_core::Error::Contended { attempts }.into())
    }

    /// The end of the request: saves what is pending (not on a 5xx) and
    /// decides what the response tells the client. Called once, by the
    /// layer, before the response leaves.
    pub(crate) async fn finish(&self, server_error: bool) -> Finish {
        let mut st = self.state.lock().await;
        let mut error = None;

        // 1. Pending writes.
        match &st.slot {
            Slot::Live(s) if s.is_dirty() || !st.changes.is_empty() => {
                if server_error {
                    tracing::debug!("5xx response: this request's session changes are not saved");
                } else {
                    match self.write_live(&mut st, &mut |_| Ok(())).await {
                        Ok(()) => st.moved = Some(Moved::AtFinish),
                        Err(Error::SessionGone) => {}
                        Err(e) => error = Some(e),
                    }
                }
            }
            Slot::Fresh(_) if server_error => {
                tracing::debug!("5xx response: the new session is not created");
                st.slot = Slot::Absent;
            }
            Slot::Fresh(_) => match self.start_new(&mut st).await {
                Ok(data) => {
                    if let Err(e) = self.create(&mut st, data, None).await {
                        error = Some(e);
                    }
                }
                Err(Error::SessionGone) => {
                    tracing::debug!(
                        "the request's token was rotated away by a concurrent login: its writes are dropped and no cookie is sent"
                    );
                }
                Err(e) => error = Some(e),
            },
            _ => {}
        }

        // 2. What the client must be told.
        let mut outgoing = None;
        if let Slot::Live(s) = &st.slot {
            if Some(s.id()) != self.token.id() {
                outgoing = Some(Outgoing::Issue {
                    id: s.id().clone(),
                    expires_at: s.expires_at(),
                });
            } else if self.shared.config.persistent() && !st.gone {
                let (id, expires_at) = (s.id().clone(), s.expires_at());
                let refresh = match st.moved {
                    None => false,
                    // Our save committed under this id a moment ago.
                    Some(Moved::AtFinish) => true,
                    // A login elsewhere may have rotated it since: never
                    // send a refresh that would put the dead token back.
                    // Asked now, not from the request's cache: the answer
                    // must be as late as possible.
                    Some(Moved::ByHandler) => match self.backend().was_rotated(&id).await {
                        Ok(rotated) => !rotated,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not check for a concurrent rotation; not refreshing the cookie");
                            false
                        }
                    },
                };
                if refresh {
                    outgoing = Some(Outgoing::Refresh { id, expires_at });
                }
            }
        }
        if outgoing.is_none() && st.destroyed {
            outgoing = Some(Outgoing::Remove);
        }
        st.finished = true;
        Finish {
            logged_out: matches!(outgoing, Some(Outgoing::Remove)),
            outgoing,
            error,
            accessed: st.accessed,
            now: self.backend().now(),
        }
    }
}
