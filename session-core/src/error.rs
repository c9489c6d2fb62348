//! The one error type of the contract.

use std::error::Error as StdError;
use std::fmt;

/// Everything that can go wrong with a session operation.
///
/// Messages name what failed and never include a session token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not a well-formed session id (or store key). Raised before
    /// any store call.
    #[error("malformed session id")]
    InvalidId,
    /// No live session has this key (it never existed, expired or was deleted).
    #[error("no live session with this key")]
    NotFound,
    /// A live session already has this key.
    #[error("a live session already exists with this key")]
    AlreadyExists,
    /// Compare-and-swap failed: the stored version is `current`, not the one
    /// the writer loaded. Reload and retry.
    #[error("version conflict: the stored session is at version {current}")]
    Conflict {
        /// The version the store holds now.
        current: u64,
    },
    /// The manager gave up on a read-modify-write after this many conflicts in
    /// a row.
    #[error("gave up after {attempts} attempts that all lost a version conflict")]
    Contended {
        /// How many attempts were made.
        attempts: u32,
    },
    /// The encoded session data is larger than the configured limit. Nothing
    /// was written.
    #[error("session data is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// Stored bytes could not be decoded: a damaged record, a foreign value
    /// under a session key, or data written by an unknown format version.
    #[error("corrupt session record: {0}")]
    Corrupt(String),
    /// An application value could not be serialized into the session (its
    /// `Serialize` implementation failed). Nothing was stored; this is a bug
    /// or a limit of the value's type, not damaged storage.
    #[error("cannot serialize a session value: {0}")]
    Serialize(String),
    /// An owner the contract does not accept (see
    /// [`validate_owner`](crate::validate_owner)). Raised before any store
    /// call; the reason says what is wrong.
    #[error("invalid session owner: {0}")]
    InvalidOwner(String),
    /// The record's key is in another shard than the one its owner's
    /// sessions must be in, on a store that splits records into shards (see
    /// [`SessionStore::shard_of_owner`](crate::SessionStore::shard_of_owner)).
    /// Nothing was written. Make ids with [`mint_id`](crate::mint_id), as the
    /// manager does; a change of owner goes through `rotate`.
    #[error(
        "the session key is in shard {key_shard}, but its owner's sessions are in shard {owner_shard}; mint the id with session_core::mint_id"
    )]
    WrongShard {
        /// The key's shard.
        key_shard: u32,
        /// The shard the owner's sessions are in.
        owner_shard: u32,
    },
    /// A configuration that cannot work (a manager's timeouts, a store's key
    /// prefix, table name or directory), refused when the manager or store
    /// is built, before it writes anything or serves any operation.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The storage backend failed: connection, timeout, server error.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Error {
    /// A failure of the storage backend (connection, timeout, server error)
    /// wrapping its cause; `retryable` says whether the same operation may
    /// succeed if tried again. Every backend builds its `Backend` errors
    /// with this.
    ///
    /// ```
    /// use session_core::Error;
    ///
    /// let e = Error::backend("connection refused", true);
    /// assert!(e.is_retryable());
    /// ```
    pub fn backend(source: impl Into<Box<dyn StdError + Send + Sync>>, retryable: bool) -> Self {
        Error::Backend(BackendError::new(source, retryable))
    }

    /// Whether retrying the same operation may succeed: true for transient
    /// backend failures and for [`Error::Conflict`] after a reload.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Backend(e) => e.is_retryable(),
            Error::Conflict { .. } | Error::Contended { .. } => true,
            _ => false,
        }
    }
}

/// A configuration refused when a manager or store is built: which setting,
/// and what is wrong with it.
///
/// ```
/// use session_core::{Config, ConfigError, Error};
///
/// let config = Config { idle_timeout: std::time::Duration::ZERO, ..Config::default() };
/// match config.validate() {
///     Err(Error::Config(e)) => assert_eq!(e.setting(), "idle_timeout"),
///     other => panic!("a zero idle timeout was accepted: {other:?}"),
/// }
/// # let _ = ConfigError::new("x", "y");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    setting: String,
    problem: String,
}

impl ConfigError {
    /// A refused `setting` (its name as the builder or struct spells it) and
    /// what is wrong with it.
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }

    /// The setting, as its builder method or field is named.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

/// A failure of the storage backend, with its cause.
pub struct BackendError {
    source: Box<dyn StdError + Send + Sync>,
    retryable: bool,
}

impl BackendError {
    /// Wraps a backend's error; `retryable` says whether the same operation
    /// may succeed if tried again.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>, retryable: bool) -> Self {
        Self {
            source: source.into(),
            retryable,
        }
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendError")
            .field("source", &self.source)
            .field("retryable", &self.retryable)
            .finish()
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retryable { "transient" } else { "permanent" };
        write!(f, "session store backend error ({kind}): {}", self.source)
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}
