//! The key layout: where a session, an owner index and an owner's deletion
//! receipt live in Redis.
//!
//! One server:
//!
//! ```text
//! <prefix>s:{<64 hex digits of the StoreKey>}   string: a session, a rotation mark or a deletion receipt
//! <prefix>o:{<owner>}                           sorted set: an owner's sessions
//! <prefix>d:{<owner>}                           string: the receipt of the owner's last delete_by_owner
//! ```
//!
//! Redis Cluster, where every key a function touches must be declared and
//! lie in one slot: records are split into [`SHARDS`] shards, each one hash
//! tag `{ttt}` (three hex digits), so one slot. A session's shard is the top
//! 10 bits of its store key; an owner's, the top 10 bits of the FNV-1a hash
//! of the owner. The manager mints an owned session's id so that both agree
//! (`session_core::mint_id`), so an owner's sessions, its index and its
//! receipt share one slot and every operation on them is one function.
//!
//! ```text
//! <prefix>s:{ttt}<64 hex digits>   string: as on one server
//! <prefix>i:{ttt}                  sorted set: the shard's index, members owner "\0" hex, scored 0
//! <prefix>e:{ttt}                  sorted set: the same members, scored by expires_at
//! <prefix>d:{ttt}<owner>           string: the receipt of the owner's last delete_by_owner
//! ```
//!
//! The braces are hash tags. Prefixes never collide, even when one extends
//! another (`a` and `a:b`, or `a` and `as:`): a prefix holds no brace, so the
//! first `{` of every name stands exactly two bytes after the prefix, which
//! fixes where the prefix ends; the kind letter before it and the fixed text
//! around the tag then make every name one store's and one thing's only.
//! On one server the scripts build the same names (`session_key` and `key`
//! in `lua/index.lua`); the two must agree. On a cluster they build none.

use session_core::{ConfigError, Error, StoreKey};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// How many shards a store on a cluster splits its records into: one hash
/// tag, so one slot, each. Enough to spread over any practical number of
/// masters; few enough that minting an id into a shard takes about a
/// thousand draws (well under a millisecond).
pub const SHARDS: u32 = 1024;

/// The names of one store's keys.
#[derive(Debug, Clone)]
pub(crate) struct KeyLayout {
    prefix: String,
    cluster: bool,
}

/// The shard of a store key on a cluster: its top 10 bits.
pub(crate) fn shard_of_key(key: &StoreKey) -> u32 {
    let b = key.as_bytes();
    (u32::from(b[0]) << 2) | (u32::from(b[1]) >> 6)
}

/// The shard of an owner on a cluster: the top 10 bits of the 64-bit FNV-1a
/// hash of its bytes (stable across processes and versions: it is part of
/// the layout).
pub(crate) fn shard_of_owner(owner: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u32::try_from(h >> 54).expect("10 bits")
}

fn push_tag(out: &mut Vec<u8>, shard: u32) {
    out.push(b'{');
    for shift in [8, 4, 0] {
        out.push(HEX[usize::try_from((shard >> shift) & 0xf).expect("4 bits")]);
    }
    out.push(b'}');
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
        Ok(Self { prefix, cluster: false })
    }

    /// The same layout for a cluster: sharded names (see the module docs).
    pub(crate) fn for_cluster(mut self) -> Self {
        self.cluster = true;
        self
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The session key as bytes, built without formatting machinery: this
    /// runs on every operation.
    pub(crate) fn session(&self, key: &StoreKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 73);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b"s:");
        if self.cluster {
            push_tag(&mut out, shard_of_key(key));
        } else {
            out.push(b'{');
        }
        for b in key.as_bytes() {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        if !self.cluster {
            out.push(b'}');
        }
        out
    }

    /// The 64 hex digits inside a name from [`session`](Self::session),
    /// which the scripts store in owner indexes.
    pub(crate) fn hex_of<'a>(&self, session_key: &'a [u8]) -> &'a [u8] {
        let start = self.prefix.len() + if self.cluster { 7 } else { 3 };
        &session_key[start..start + 64]
    }

    /// On one server, the owner's index; on a cluster, the `byowner` set of
    /// the owner's shard.
    pub(crate) fn owner_index(&self, owner: &str) -> String {
        if self.cluster {
            return self.shard_set(b'i', shard_of_owner(owner));
        }
        format!("{}o:{{{}}}", self.prefix, owner)
    }

    pub(crate) fn owner_receipt(&self, owner: &str) -> String {
        if self.cluster {
            let mut out = self.shard_set(b'd', shard_of_owner(owner));
            out.push_str(owner);
            return out;
        }
        format!("{}d:{{{}}}", self.prefix, owner)
    }

    /// `<prefix><kind>:{ttt}`: one of a shard's keys on a cluster.
    pub(crate) fn shard_set(&self, kind: u8, shard: u32) -> String {
        let mut out = Vec::with_capacity(self.prefix.len() + 7);
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(kind);
        out.push(b':');
        push_tag(&mut out, shard);
        String::from_utf8(out).expect("a prefix is UTF-8 and the rest is ASCII")
    }

    /// A shard's owner index on a cluster: its `byowner` and `byexpiry` sets.
    pub(crate) fn shard_index(&self, shard: u32) -> [String; 2] {
        [self.shard_set(b'i', shard), self.shard_set(b'e', shard)]
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

    #[test]
    fn on_a_cluster_a_session_name_carries_its_shard_tag() {
        let keys = KeyLayout::new("p:".to_owned()).expect("no braces").for_cluster();
        let key = StoreKey::from_bytes([0xab; 32]);
        // 0xab 0xab: top 10 bits 1010101110 = 0x2ae.
        assert_eq!(shard_of_key(&key), 0x2ae);
        let name = keys.session(&key);
        assert_eq!(name, format!("p:s:{{2ae}}{}", key.to_hex()).into_bytes());
        assert_eq!(keys.hex_of(&name), key.to_hex().as_bytes());
        let owner_shard = shard_of_owner("ada");
        assert!(owner_shard < SHARDS);
        assert_eq!(keys.owner_index("ada"), keys.shard_index(owner_shard)[0]);
        assert_eq!(keys.owner_receipt("ada"), format!("p:d:{{{owner_shard:03x}}}ada"));
    }
}
