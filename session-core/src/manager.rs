//! [`SessionManager`]: timeouts, renewal, optimistic concurrency, rotation
//! and the owner index on top of any [`SessionStore`].

use std::sync::Arc;
use std::time::Duration;

use crate::{
    Clock, ConfigError, Error, OwnedSession, Record, SessionData, SessionId, SessionStore, StoreKey, SystemClock,
    Timestamp, Update, mint_id, validate_owner,
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

impl Config {
    /// Checks that these settings can work, as [`SessionManager::new`] does:
    ///
    /// - `idle_timeout` is at least 1 ms (a zero idle timeout makes every
    ///   session dead on arrival);
    /// - `absolute_timeout` is at least `idle_timeout` (otherwise the idle
    ///   timeout never applies and the configuration says something it does
    ///   not do);
    /// - `renewal_threshold` is at most `idle_timeout` (a larger one would
    ///   renew on every load, turning reads into writes); zero is allowed and
    ///   means loads never renew, only saves do;
    /// - `max_data_bytes` holds at least empty data (2 bytes);
    /// - `max_update_attempts` is at least 1.
    ///
    /// Errors: [`Error::Config`] naming the first setting that fails.
    pub fn validate(&self) -> Result<(), Error> {
        let refuse = |setting: &str, problem: String| Err(Error::Config(ConfigError::new(setting, problem)));
        if self.idle_timeout < Duration::from_millis(1) {
            return refuse(
                "idle_timeout",
                format!(
                    "{:?} would end every session as it is created; use at least 1 ms",
                    self.idle_timeout
                ),
            );
        }
        if self.absolute_timeout < self.idle_timeout {
            return refuse(
                "absolute_timeout",
                format!(
                    "{:?} is shorter than the idle timeout of {:?}",
                    self.absolute_timeout, self.idle_timeout
                ),
            );
        }
        if self.renewal_threshold > self.idle_timeout {
            return refuse(
                "renewal_threshold",
                format!(
                    "{:?} is longer than the idle timeout of {:?}: every load would write",
                    self.renewal_threshold, self.idle_timeout
                ),
            );
        }
        let empty = SessionData::new().encoded_len();
        if self.max_data_bytes < empty {
            return refuse(
                "max_data_bytes",
                format!(
                    "{} bytes cannot hold even empty data ({empty} bytes)",
                    self.max_data_bytes
                ),
            );
        }
        if self.max_update_attempts == 0 {
            return refuse("max_update_attempts", "must be at least 1".to_owned());
        }
        Ok(())
    }
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
    // Set only by `SessionManager::load` when its `touch` moved the deadline.
    renewed: bool,
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

    /// Sets or clears the owner; saved by [`SessionManager::save`]. After a
    /// login, prefer [`SessionManager::rotate_to_owner`], which sets the owner
    /// and gives the session a new id in one step.
    ///
    /// Errors: [`Error::InvalidOwner`] for an owner the contract does not
    /// accept (see [`validate_owner`](crate::validate_owner)); nothing
    /// changes.
    pub fn set_owner(&mut self, owner: Option<String>) -> Result<(), Error> {
        if let Some(o) = &owner {
            validate_owner(o)?;
        }
        if self.owner != owner {
            self.owner = owner;
            self.dirty = true;
        }
        Ok(())
    }

    /// Whether there are unsaved changes.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether the [`SessionManager::load`] that returned this copy renewed
    /// the session (its one `touch` moved [`expires_at`](Self::expires_at)
    /// later). False for copies from any other call.
    ///
    /// The HTTP layer refreshes a persistent cookie's `Max-Age` when the
    /// deadline moved, and learns from this that a read moved it.
    pub fn renewed_on_load(&self) -> bool {
        self.renewed
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
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default())?;
/// let mut session = manager.create(None).await?;
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
/// // Login: a new id and an owner in one step; the data carries over.
/// manager.rotate_to_owner(&mut session, "user-7").await?;
/// assert_eq!(session.data().get::<u64>("visits")?, Some(1));
/// assert_eq!(manager.list_by_owner("user-7").await?.len(), 1);
///
/// // Log out everywhere.
/// assert_eq!(manager.destroy_by_owner("user-7").await?, 1);
/// assert!(manager.load(session.id()).await?.is_none());
/// # Ok(())
/// # }
/// ```
///
/// # Clocks
///
/// The manager reads `now` from its [`Clock`] (the system clock by default)
/// and stores absolute instants, so application servers sharing a store
/// must agree on the time. A server whose clock is *behind* by `d` saves
/// sessions that expire `d` early (its `now + idle_timeout` is in everyone
/// else's past sooner), and sees as live, for `d` longer, sessions the
/// others already treat as expired; a server *ahead* does the opposite. So a
/// session can look expired on one server and live on another for up to the
/// skew. Keep the clocks within a small fraction of the idle timeout (NTP
/// keeps them within milliseconds; a skew of a second is harmless with the
/// default 30-minute timeout, a skew of minutes is not). The stores never
/// read a clock of their own, so the database's clock does not matter; a
/// Redis server's clock only decides when it physically drops an expired
/// record, never whether one is live.
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
    ///
    /// Errors: [`Error::Config`] if `config` cannot work (see
    /// [`Config::validate`]).
    pub fn new(store: Arc<S>, config: Config) -> Result<Self, Error> {
        Self::with_clock(store, config, Arc::new(SystemClock))
    }

    /// A manager on `store` reading time from `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// Errors: [`Error::Config`] if `config` cannot work (see
    /// [`Config::validate`]).
    pub fn with_clock(store: Arc<S>, config: Config, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self { store, clock, config })
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current time by the manager's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn absolute_deadline(&self, created_at: Timestamp) -> Timestamp {
        created_at + self.config.absolute_timeout
    }

    /// The expiry that activity at `now` earns: the idle deadline, capped by
    /// the absolute one.
    fn renewed_expiry(&self, created_at: Timestamp, now: Timestamp) -> Timestamp {
        (now + self.config.idle_timeout).min(self.absolute_deadline(created_at))
    }

    /// Encodes `data`, refusing it first, without encoding, if it is over
    /// the limit.
    fn encode_checked(&self, data: &SessionData) -> Result<bytes::Bytes, Error> {
        let size = data.encoded_len();
        if size > self.config.max_data_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.config.max_data_bytes,
            });
        }
        Ok(data.encode())
    }

    /// Creates and stores a new empty session, optionally owned by `owner`.
    ///
    /// Errors: [`Error::InvalidOwner`] (nothing is written).
    pub async fn create(&self, owner: Option<String>) -> Result<Session, Error> {
        self.create_with(SessionData::new(), owner).await
    }

    /// Creates and stores a new session holding `data`.
    ///
    /// Errors: [`Error::TooLarge`] if the encoded data exceeds
    /// [`Config::max_data_bytes`], [`Error::InvalidOwner`] (nothing is
    /// written in either case).
    pub async fn create_with(&self, data: SessionData, owner: Option<String>) -> Result<Session, Error> {
        if let Some(o) = &owner {
            validate_owner(o)?;
        }
        let bytes = self.encode_checked(&data)?;
        let now = self.clock.now();
        // In the owner's shard on a store that shards (Redis Cluster).
        let id = mint_id(
            &*self.store,
            owner.as_deref().and_then(|o| self.store.shard_of_owner(o)),
        )?;
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
            renewed: false,
        })
    }

    /// Parses a token (for example a cookie value) and loads its session.
    /// A malformed token is [`Error::InvalidId`], before any store call.
    pub async fn load_str(&self, token: &str) -> Result<Option<Session>, Error> {
        let id = SessionId::parse(token)?;
        self.load(&id).await
    }

    /// Loads a live session; `None` if it is unknown, expired, deleted or
    /// rotated away. Never creates a record.
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
        let mut was_renewed = false;
        let renewed = self.renewed_expiry(record.created_at, now);
        if now.until(record.expires_at) < self.config.renewal_threshold && renewed > record.expires_at {
            if !self.store.touch(&key, renewed, now).await? {
                // Deleted or rotated away between the load and the touch.
                return Ok(None);
            }
            tracing::trace!(key = %key.short(), "session renewed");
            expires_at = renewed;
            was_renewed = true;
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
            renewed: was_renewed,
        }))
    }

    /// Whether `id`'s session was rotated to a new id moments ago (less than
    /// [`ROTATION_MARK_TTL`](crate::ROTATION_MARK_TTL)): a request carrying
    /// it overlapped a login. The HTTP layer asks this, for a token whose
    /// session is gone, before it would start a new session and send a
    /// cookie that clobbers the new one.
    pub async fn was_rotated(&self, id: &SessionId) -> Result<bool, Error> {
        self.store.was_rotated(&id.store_key(), self.clock.now()).await
    }

    /// Writes the session's data and owner if the stored version is still
    /// the one it was loaded at, and renews its idle deadline.
    ///
    /// Errors: [`Error::Conflict`] if another writer saved first (reload and
    /// redo, or use [`SessionManager::update_with`]); [`Error::NotFound`] if
    /// it expired, was destroyed or rotated away (nothing is written, so a
    /// save never brings a session back); [`Error::TooLarge`] (nothing
    /// written).
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
        session.renewed = false;
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

    /// Gives the session a new id (do this on any privilege change), saving
    /// pending changes first. The old id stops working at once; data, owner,
    /// `created_at` and the absolute deadline carry over.
    ///
    /// Afterwards `session` is what the store holds under the new id, which
    /// may include writes that other requests made since this copy was
    /// loaded: a stale copy never overwrites them.
    ///
    /// Errors: [`Error::NotFound`] if the session is not live; the errors of
    /// [`SessionManager::save`] if it had pending changes. On
    /// [`Error::Corrupt`] (the moved data does not decode) the rotation has
    /// happened: `session` carries the new id and its old data.
    pub async fn rotate(&self, session: &mut Session) -> Result<(), Error> {
        self.rotate_setting_owner(session, None).await
    }

    /// Login (or a switch to another user): gives the session a new id and
    /// the owner `owner` in one atomic store step, saving pending changes
    /// first, as [`rotate`](Self::rotate) does. Always rotate on
    /// authentication, re-authentication included (OWASP ASVS 7.2.4).
    ///
    /// Errors: those of [`rotate`](Self::rotate), and
    /// [`Error::InvalidOwner`] before anything is written.
    pub async fn rotate_to_owner(&self, session: &mut Session, owner: impl Into<String>) -> Result<(), Error> {
        let owner = owner.into();
        validate_owner(&owner)?;
        self.rotate_setting_owner(session, Some(&owner)).await
    }

    async fn rotate_setting_owner(&self, session: &mut Session, owner: Option<&str>) -> Result<(), Error> {
        if session.dirty {
            self.save(session).await?;
        }
        // The new key goes where the session's owner keeps its sessions
        // (the new owner's shard on a login), or stays in the old key's shard:
        // on a store that shards, a rotate within one shard is one atomic step.
        let shard = match owner.or(session.owner.as_deref()) {
            Some(o) => self.store.shard_of_owner(o),
            None => self.store.shard_of_key(&session.key),
        };
        let new_id = mint_id(&*self.store, shard)?;
        let new_key = new_id.store_key();
        let record = self
            .store
            .rotate(&session.key, &new_key, owner, self.clock.now())
            .await?;
        tracing::debug!(old = %session.key.short(), new = %new_key.short(), "session rotated");
        session.id = new_id;
        session.key = new_key;
        session.version = record.version;
        session.created_at = record.created_at;
        session.expires_at = record.expires_at;
        session.owner = record.owner;
        session.dirty = false;
        session.renewed = false;
        session.data = SessionData::decode(&record.data)?;
        Ok(())
    }

    /// Ends a session (logout). Returns whether it was live.
    pub async fn destroy(&self, id: &SessionId) -> Result<bool, Error> {
        self.store.delete(&id.store_key(), self.clock.now()).await
    }

    /// Ends every session of `owner` ("log out everywhere", after a password
    /// change or when an account is disabled); returns how many were live.
    ///
    /// Errors: [`Error::InvalidOwner`] before any store call.
    pub async fn destroy_by_owner(&self, owner: &str) -> Result<u64, Error> {
        validate_owner(owner)?;
        self.store.delete_by_owner(owner, self.clock.now()).await
    }

    /// The live sessions of `owner`, oldest first, for a "your devices"
    /// page: each is named by its store key, a hash that is safe to show
    /// and is not a credential.
    ///
    /// Errors: [`Error::InvalidOwner`] before any store call.
    pub async fn list_by_owner(&self, owner: &str) -> Result<Vec<OwnedSession>, Error> {
        validate_owner(owner)?;
        let mut list = self.store.list_by_owner(owner, self.clock.now()).await?;
        list.sort_by_key(|s| (s.created_at, s.key));
        Ok(list)
    }

    /// Ends one session of `owner`, named by its store key (as listed by
    /// [`SessionManager::list_by_owner`]). Returns `false`, deleting nothing,
    /// if that key is not a live session of `owner`, so a user can only end
    /// their own sessions.
    ///
    /// Errors: [`Error::InvalidOwner`] before any store call.
    pub async fn destroy_owned(&self, owner: &str, key: &StoreKey) -> Result<bool, Error> {
        validate_owner(owner)?;
        let now = self.clock.now();
        match self.store.load(key, now).await? {
            Some(record) if record.owner.as_deref() == Some(owner) => self.store.delete(key, now).await,
            _ => Ok(false),
        }
    }
}
