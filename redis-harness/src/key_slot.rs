//! Which of the 16384 slots a key lives in, as Redis Cluster computes it
//! (cluster spec, "Keys distribution model"), so a test can pick keys that
//! land on a given node or in a given slot without asking the server.

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The slot of `key`: CRC16-XMODEM of its hash tag (or of the whole key),
/// modulo 16384.
///
/// The hash tag is what stands between the first `{` and the first `}` after
/// it, if that is not empty; otherwise (no `{`, no `}` after it, or `{}`) the
/// whole key is hashed. So `{user1}.a` and `{user1}.b` share a slot, while
/// `{}x` and `x` do not.
///
/// ```
/// use redis_harness::key_slot;
///
/// assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
/// assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
/// assert!(key_slot(b"anything") < 16384);
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag(key)) % SLOTS
}

/// The part of `key` that is hashed.
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let after = &key[open + 1..];
    match after.iter().position(|&b| b == b'}') {
        Some(len) if len > 0 => &after[..len],
        _ => key,
    }
}

/// CRC16 with polynomial 0x1021, initial value 0, no reflection: the variant
/// Redis calls CRC16-CCITT in `crc16.c` (better known as XMODEM). Bit by bit
/// rather than with a table: tests hash a few thousand keys at most.
fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_check_value_of_xmodem() {
        // The standard check input of CRC catalogues, and the value Redis's
        // crc16.c documents for it.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(crc16_xmodem(b""), 0);
    }

    #[test]
    fn a_non_empty_tag_is_hashed_alone() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
    }

    #[test]
    fn without_a_non_empty_tag_the_whole_key_is_hashed() {
        for key in [&b"foo"[..], b"foo{}{bar}", b"{}", b"{", b"}{", b"foo{bar", b""] {
            assert_eq!(hash_tag(key), key, "{:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn known_slots() {
        // Values from CLUSTER KEYSLOT on Redis 7.0.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
    }
}
