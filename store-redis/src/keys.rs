//! The key layout: where a session, an owner index and an owner's deletion
//! receipt live in Redis.
//!
//! ```text
//! <prefix>s:{<64 hex digits of the StoreKey>}   string: a session, a rotation mark or a deletion receipt
//! <prefix>o:{<owner>}                           sorted set: an owner's sessions
//! <prefix>d:{<owner>}                           string: the receipt of the owner's last delete_by_owner
//! ```
//!
//! The braces are Redis Cluster hash tags: a session's slot depends only on
//! its store key, an owner's index and receipt only on the owner, so they
//! share a slot. Prefixes never collide, even when one extends another
//! (`a` and `a:b`, or `a` and `as:`): a prefix holds no brace, so the first
//! `{` of every name stands exactly two bytes after the prefix, which fixes
//! where the prefix ends; the kind letter before it and the fixed text
//! around the tag then make every name one store's and one thing's only.
//! The scripts build the same names (`session_key` and `key` in
//! `lua/index.lua`); the two must agree.

use session_core::{ConfigError, Error, StoreKey};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The names of one store's keys.
#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    /// A layout under `prefix`, which must not contain braces: they would
    /// move the hash tag and make names of two prefixes collide.
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

    /// The session key as bytes, built without formatting machinery: this
    /// runs on every operation.
    pub(crate) fn session(&self, key: &StoreKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 68);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b"s:{");
        for b in key.as_bytes() {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        out.push(b'}');
        out
    }

    /// The 64 hex digits inside a name from [`session`](Self::session),
    /// which the scripts store in owner indexes.
    pub(crate) fn hex_of<'a>(&self, session_key: &'a [u8]) -> &'a [u8] {
        &session_key[self.prefix.len() + 3..self.prefix.len() + 67]
    }

    pub(crate) fn owner_index(&self, owner: &str) -> String {
        format!("{}o:{{{}}}", self.prefix, owner)
    }

    pub(crate) fn owner_receipt(&self, owner: &str) -> String {
        format!("{}d:{{{}}}", self.prefix, owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_name_holds_the_hex_key_in_its_tag() {
        let keys = KeyLayout::new("p:".to_owned()).expect("no braces");
        let key = StoreKey::from_bytes([0xab; 32]);
        let name = keys.session(&key);
        assert_eq!(name, format!("p:s:{{{}}}", key.to_hex()).into_bytes());
        assert_eq!(keys.hex_of(&name), key.to_hex().as_bytes());
    }
}
