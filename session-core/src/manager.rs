//! [`SessionManager`]: timeouts, renewal, optimistic concurrency, rotation
//! and the owner index on top of any [`SessionStore`].

use std::sync::Arc;
use std::time::Duration;

use crate::{
    Clock, Error, OwnedSession, Record, SessionData, SessionId, SessionStore, StoreKey, SystemClock, Timestamp, Update,
};

/// Timeouts and limits of a [`SessionManager`].
///
/// A session is live until `min(last activity + idle_timeout, created_at +
/// absolute_timeout)`. Nothing (renewal, saving, rotation) extends the
/// absolute deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long a session lives without activity. Default: 30 minutes.
    pub idle_timeout: Duration,
    /// How long a session lives at most, whatever the activity. Default: 12 hours.
    pub absolute_timeout: Duration,
    /// A load renews the session (one `touch` write) only when less than this
    /// much idle time remains, so read-mostly traffic does not turn into
    /// write traffic. Default: half the idle timeout (15 minutes).
    pub renewal_threshold: Duration,
    /// The largest encoded session data accepted, in bytes; larger data gives
    /// [`Error::TooLarge`] before anything is written. Default: 256 KiB.
    pub max_data_bytes: usize,
    /// How many attempts [`SessionManager::update_with`] makes before giving
    /// up with [`Error::Contended`]. Default: 16.
    pub max_update_attempts: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            renewal_threshold: Duration::from_secs(15 * 60),
            max_data_bytes: 256 * 1024,
            max_update_attempts: 16,
        }
    }
}

/// A session as the application holds it during a request.
///
/// Changes to [`Session::data_mut`] and [`Session::set_owner`] are kept in
/// memory until [`SessionManager::save`].
#[derive(Debug, Clone)]
pub struct Session {
    id: SessionId,
    key: StoreKey,
    version: u64,
    data: SessionData,
    created_at: Timestamp,
    expires_at: Timestamp,
    owner: Option<String>,
    dirty: bool,
}

impl Session {
    /// The token to hand to the browser.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The store key (safe to show and log).
    pub fn key(&self) -> StoreKey {
        self.key
    }

    /// The stored version this copy is based on.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The data.
    pub fn data(&self) -> &SessionData {
        &self.data
    }

    /// The data, for changing; marks the session as needing a save.
    pub fn data_mut(&mut self) -> &mut SessionData {
        self.dirty = true;
        &mut self.data
    }

    /// When the session was created (rotation keeps it).
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// When the session expires unless renewed.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// The owner, if any.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Sets or clears the owner (for example after login); saved by
    /// [`SessionManager::save`].
    pub fn set_owner(&mut self, owner: Option<String>) {
        if self.owner != owner {
            self.owner = owner;
            self.dirty = true;
        }
    }

    /// Whether there are unsaved changes.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
}

/// One session of an owner, for a "your devices" page: named by its store
/// key, which is a hash and not a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The store key; pass it to [`SessionManager::destroy_owned`] to end it.
    pub key: StoreKey,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it expires unless renewed.
    pub expires_at: Timestamp,
}

impl From<OwnedSession> for SessionInfo {
    fn from(s: OwnedSession) -> Self {
        Self {
            key: s.key,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

/// What an application uses: sessions with timeouts, renewal, optimistic
/// concurrency, rotation and the owner index, on any [`SessionStore`].
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Config, SessionManager};
/// use store_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::Error> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default());
/// let session = manager.create(Some("user-7".into())).await?;
///
/// // Many requests may increment at once: update_with reloads and retries.
/// let n = manager
///     .update_with(session.id(), |data| {
///         let n = data.get::<u64>("visits")?.unwrap_or(0) + 1;
///         data.insert("visits", &n)?;
///         Ok(n)
///     })
///     .await?;
/// assert_eq!(n, 1);
///
/// assert_eq!(manager.list_owner("user-7").await?.len(), 1);
/// assert_eq!(manager.destroy_owner("user-7").await?, 1);
/// assert!(manager.load(session.id()).await?.is_none());
/// # Ok(())
/// # }
/// ```
pub struct SessionManager<S: SessionStore + ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    config: Config,
}

impl<S: SessionStore + ?Sized> Clone for SessionManager<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            config: self.config.clone(),
        }
    }
}

impl<S: SessionStore + ?Sized> std::fmt::Debug for SessionManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore + ?Sized> SessionManager<S> {
    /// A manager on `store` using the system clock.
    pub fn new(store: Arc<S>, config: Config) -> Self {
        Self::with_clock(store, config, Arc::new(SystemClock))
    }

    /// A manager on `store` reading time from `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(store: Arc<S>, config: Config, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock, config }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn absolute_deadline(&self, created_at: Timestamp) -> Timestamp {
        created_at + self.config.absolute_timeout
    }

    /// The expiry that activity at `now` earns: the idle deadline, capped by
    /// the absolute one.
    fn renewed_expiry(&self, created_at: Timestamp, now: Timestamp) -> Timestamp {
        (now + self.config.idle_timeout).min(self.absolute_deadline(created_at))
    }

    fn encode_checked(&self, data: &SessionData) -> Result<bytes::Bytes, Error> {
        let bytes = data.encode();
        if bytes.len() > self.config.max_data_bytes {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit: self.config.max_data_bytes,
            });
        }
        Ok(bytes)
    }

    /// Creates and stores a new empty session, optionally owned by `owner`.
    pub async fn create(&self, owner: Option<String>) -> Result<Session, Error> {
        self.create_with(SessionData::new(), owner).await
    }

    /// Creates and stores a new session holding `data`.
    ///
    /// Errors: [`Error::TooLarge`] if the encoded data exceeds
    /// [`Config::max_data_bytes`] (nothing is written).
    pub async fn create_with(&self, data: SessionData, owner: Option<String>) -> Result<Session, Error> {
        let bytes = self.encode_checked(&data)?;
        let now = self.clock.now();
        let id = SessionId::generate()?;
        let key = id.store_key();
        let expires_at = self.renewed_expiry(now, now);
        let record = Record {
            key,
            version: 1,
            data: bytes,
            created_at: now,
            expires_at,
            owner: owner.clone(),
        };
        self.store.create(record, now).await?;
        tracing::debug!(key = %key.short(), "session created");
        Ok(Session {
            id,
            key,
            version: 1,
            data,
            created_at: now,
            expires_at,
            owner,
            dirty: false,
        })
    }

    /// Parses a token (for example a cookie value) and loads its session.
    /// A malformed token is [`Error::InvalidId`], before any store call.
    pub async fn load_str(&self, token: &str) -> Result<Option<Session>, Error> {
        let id = SessionId::parse(token)?;
        self.load(&id).await
    }

    /// Loads a live session; `None` if it is unknown, expired or deleted.
    /// Never creates a record.
    ///
    /// Renews the session (one `touch`) only when less than
    /// [`Config::renewal_threshold`] of idle time remains and the absolute
    /// deadline leaves room.
    pub async fn load(&self, id: &SessionId) -> Result<Option<Session>, Error> {
        let key = id.store_key();
        let now = self.clock.now();
        let Some(record) = self.store.load(&key, now).await? else {
            return Ok(None);
        };
        let data = SessionData::decode(&record.data)?;
        let mut expires_at = record.expires_at;
        let renewed = self.renewed_expiry(record.created_at, now);
        if now.until(record.expires_at) < self.config.renewal_threshold && renewed > record.expires_at {
            if !self.store.touch(&key, renewed, now).await? {
                // Deleted or rotated away between the load and the touch.
                return Ok(None);
            }
            tracing::trace!(key = %key.short(), "session renewed");
            expires_at = renewed;
        }
        Ok(Some(Session {
            id: id.clone(),
            key,
            version: record.version,
            data,
            created_at: record.created_at,
            expires_at,
            owner: record.owner,
            dirty: false,
        }))
    }

    /// Writes the session's data and owner if the stored version is still
    /// the one it was loaded at, and renews its idle deadline.
    ///
    /// Errors: [`Error::Conflict`] if another writer saved first (reload and
    /// redo, or use [`SessionManager::update_with`]); [`Error::NotFound`] if
    /// it expired or was destroyed; [`Error::TooLarge`] (nothing written).
    pub async fn save(&self, session: &mut Session) -> Result<(), Error> {
        let data = self.encode_checked(&session.data)?;
        let now = self.clock.now();
        let expires_at = self.renewed_expiry(session.created_at, now);
        let update = Update {
            expected_version: session.version,
            data,
            expires_at,
            owner: session.owner.clone(),
        };
        session.version = self.store.update(&session.key, update, now).await?;
        session.expires_at = expires_at;
        session.dirty = false;
        Ok(())
    }

    /// Read-modify-write with optimistic concurrency: loads the session,
    /// applies `f` to its data, saves, and on [`Error::Conflict`] reloads and
    /// tries again, up to [`Config::max_update_attempts`] times, then fails
    /// with [`Error::Contended`]. `f` may run several times; it must not have
    /// side effects outside the data.
    ///
    /// Errors: [`Error::NotFound`] if the session is not live; whatever `f`
    /// returns.
    pub async fn update_with<T, F>(&self, id: &SessionId, mut f: F) -> Result<T, Error>
    where
        F: FnMut(&mut SessionData) -> Result<T, Error> + Send,
        T: Send,
    {
        let attempts = self.config.max_update_attempts.max(1);
        for _ in 0..attempts {
            let Some(mut session) = self.load(id).await? else {
                return Err(Error::NotFound);
            };
            let out = f(session.data_mut())?;
            match self.save(&mut session).await {
                Ok(()) => return Ok(out),
                Err(Error::Conflict { current }) => {
                    tracing::debug!(key = %session.key.short(), current, "update_with lost a version race; retrying");
                }
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(key = %id.store_key().short(), attempts, "update_with gave up under contention");
        Err(Error::Contended { attempts })
    }

    /// Gives the session a new id (do this after login or any privilege
    /// change), saving pending changes first. The old id stops working at
    /// once; data, owner, `created_at` and the absolute deadline carry over.
    ///
    /// Errors: [`Error::NotFound`] if the session is not live; the errors of
    /// [`SessionManager::save`] if it had pending changes.
    pub async fn rotate(&self, session: &mut Session) -> Result<(), Error> {
        if session.dirty {
            self.save(session).await?;
        }
        let new_id = SessionId::generate()?;
        let new_key = new_id.store_key();
        self.store.rotate(&session.key, &new_key, self.clock.now()).await?;
        tracing::debug!(old = %session.key.short(), new = %new_key.short(), "session rotated");
        session.id = new_id;
        session.key = new_key;
        session.version = 1;
        Ok(())
    }

    /// Ends a session (logout). Returns whether it was live.
    pub async fn destroy(&self, id: &SessionId) -> Result<bool, Error> {
        self.store.delete(&id.store_key(), self.clock.now()).await
    }

    /// Ends every session of `owner` (for example after a password change);
    /// returns how many were live.
    pub async fn destroy_owner(&self, owner: &str) -> Result<u64, Error> {
        self.store.delete_by_owner(owner, self.clock.now()).await
    }

    /// The live sessions of `owner`, oldest first.
    pub async fn list_owner(&self, owner: &str) -> Result<Vec<SessionInfo>, Error> {
        let mut list: Vec<SessionInfo> = self
            .store
            .list_by_owner(owner, self.clock.now())
            .await?
            .into_iter()
            .map(SessionInfo::from)
            .collect();
        list.sort_by_key(|s| (s.created_at, s.key));
        Ok(list)
    }

    /// Ends one session of `owner`, named by its store key (as listed by
    /// [`SessionManager::list_owner`]). Returns `false`, deleting nothing, if
    /// that key is not a live session of `owner`, so a user can only end
    /// their own sessions.
    pub async fn destroy_owned(&self, owner: &str, key: &StoreKey) -> Result<bool, Error> {
        let now = self.clock.now();
        match self.store.load(key, now).await? {
            Some(record) if record.owner.as_deref() == Some(owner) => self.store.delete(key, now).await,
            _ => Ok(false),
        }
    }
}
