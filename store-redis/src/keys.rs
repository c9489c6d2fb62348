//! The key layout: where a session and an owner index live in Redis.
//!
//! ```text
//! <prefix>{<64 hex digits of the StoreKey>}   hash: one session, or a rotation mark
//! <prefix>owner:{<owner>}                     sorted set: an owner's sessions
//! ```
//!
//! The braces are Redis Cluster hash tags: a session's slot depends only on
//! its store key, an index's slot only on its owner (for an owner without
//! `}`; see the crate docs for the others), so sessions spread over the
//! cluster and each record is one slot. On one server the names are plain
//! binary strings: with the prefix fixed, `owner:{` before and `}` after the
//! owner, two owners always give two names, and an index name never equals
//! a session's (`o` against `{` after the prefix). The scripts build the
//! same names (`session_key` and `key` in the Lua index helpers); the two
//! must agree.

use session_core::{ConfigError, Error, StoreKey};

/// The names of one store's keys.
#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    /// A layout under `prefix`, which must not contain braces: they would
    /// move the hash tag and with it the slot of every key.
    pub(crate) fn new(prefix: String) -> Result<Self, Error> {
        if prefix.contains(['{', '}']) {
            return Err(Error::Config(ConfigError::new(
                "prefix",
                format!("the Redis key prefix {prefix:?} contains a brace, which would break the hash tags"),
            )));
        }
        Ok(Self { prefix })
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn session(&self, key: &StoreKey) -> String {
        format!("{}{{{}}}", self.prefix, key.to_hex())
    }

    pub(crate) fn owner_index(&self, owner: &str) -> String {
        format!("{}owner:{{{}}}", self.prefix, owner)
    }
}
