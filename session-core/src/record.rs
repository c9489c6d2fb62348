//! What a store keeps per session, and the arguments and results of the
//! operations that are more than a key.

use bytes::Bytes;

use crate::{StoreKey, Timestamp};

/// A stored session.
///
/// `data` is opaque to the store (the manager encodes it with
/// [`SessionData`](crate::SessionData)); it is [`Bytes`] so that reads hand out
/// cheap clones instead of copying the payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// SHA-256 of the session id.
    pub key: StoreKey,
    /// 1 after `create` and after `rotate`; +1 on every successful `update`
    /// and `overwrite`. `touch` does not change it.
    pub version: u64,
    /// The application's encoded data.
    pub data: Bytes,
    /// When the session was first created; kept by `rotate`.
    pub created_at: Timestamp,
    /// The first instant at which the session is no longer live.
    pub expires_at: Timestamp,
    /// The owner (for example a user id) for the owner index, if any.
    pub owner: Option<String>,
}

impl Record {
    /// Whether the record is live at `now` (`now < expires_at`).
    pub fn is_live_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_live_at(now)
    }
}

/// The new contents that a compare-and-swap [`update`](crate::SessionStore::update)
/// writes if the stored version is still `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Update {
    /// The version the writer loaded.
    pub expected_version: u64,
    /// The new data.
    pub data: Bytes,
    /// The new expiry (set as given: an update may shorten it).
    pub expires_at: Timestamp,
    /// The new owner (`None` removes the session from the owner index).
    pub owner: Option<String>,
}

/// The new contents that a blind [`overwrite`](crate::SessionStore::overwrite)
/// writes, whatever the stored version, if the session is still live.
///
/// For callers that keep no version (a tower-sessions `save`): it can never
/// bring a session back, but it can overwrite a concurrent write. Prefer
/// [`Update`] wherever the version is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Overwrite {
    /// The new data.
    pub data: Bytes,
    /// The new expiry (set as given: it may shorten the session).
    pub expires_at: Timestamp,
    /// The new owner (`None` removes the session from the owner index).
    pub owner: Option<String>,
}

/// One live session of an owner, as [`list_by_owner`](crate::SessionStore::list_by_owner)
/// returns it. The key is a hash, not a credential: safe to show.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnedSession {
    /// The session's store key.
    pub key: StoreKey,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it expires unless renewed.
    pub expires_at: Timestamp,
}
