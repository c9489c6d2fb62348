//! The keys of the two index trees. Values are empty.
//!
//! - **expiry** key: `sortable(at) ++ store key` (8 + 32 bytes). Big endian
//!   with the sign bit flipped, so byte order is time order, negative
//!   timestamps included: `delete_expired` reads the tree from its start and
//!   stops at `now`. `at` is the record's `indexed_at` (see
//!   `record_layout`), never later than its expiry, or a rotation mark's
//!   `until`.
//! - **owners** key: `u32 length of owner ++ owner ++ store key`. The length
//!   prefix makes the owner part unambiguous (no separator byte that an owner
//!   could contain), so the entries of one owner are exactly the keys under
//!   the prefix `u32 length ++ owner` that are 32 bytes longer than it.
//!   (Databases written before layout 2 also hold a counter under the bare
//!   prefix, which is skipped.)

use session_core::{Error, StoreKey, Timestamp};

use crate::record_layout::length_prefix;

/// Length of an expiry-index key.
pub(crate) const EXPIRY_KEY_LEN: usize = 8 + 32;

/// Timestamps as bytes whose lexicographic order is numeric order.
pub(crate) fn sortable(t: Timestamp) -> [u8; 8] {
    // Flipping the sign bit maps i64::MIN..=i64::MAX onto 0..=u64::MAX in order.
    ((t.as_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`sortable`].
pub(crate) fn from_sortable(bytes: [u8; 8]) -> Timestamp {
    Timestamp::from_millis((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// `sortable(expires_at) ++ key`.
pub(crate) fn expiry_key(expires_at: Timestamp, key: &StoreKey) -> [u8; EXPIRY_KEY_LEN] {
    let mut out = [0u8; EXPIRY_KEY_LEN];
    out[..8].copy_from_slice(&sortable(expires_at));
    out[8..].copy_from_slice(key.as_bytes());
    out
}

/// Splits an expiry-index key; a foreign shape is [`Error::Corrupt`].
pub(crate) fn parse_expiry_key(bytes: &[u8]) -> Result<(Timestamp, StoreKey), Error> {
    if bytes.len() != EXPIRY_KEY_LEN {
        return Err(Error::Corrupt(format!(
            "sled expiry index entry of {} bytes, expected {EXPIRY_KEY_LEN}",
            bytes.len()
        )));
    }
    let mut at = [0u8; 8];
    at.copy_from_slice(&bytes[..8]);
    Ok((from_sortable(at), StoreKey::from_slice(&bytes[8..])?))
}

/// `u32 length ++ owner`: the prefix of an owner's entries.
pub(crate) fn owner_prefix(owner: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(4 + owner.len() + 32);
    out.extend_from_slice(&length_prefix(owner.len())?);
    out.extend_from_slice(owner.as_bytes());
    Ok(out)
}

/// `u32 length ++ owner ++ key`.
pub(crate) fn owner_key(owner: &str, key: &StoreKey) -> Result<Vec<u8>, Error> {
    let mut out = owner_prefix(owner)?;
    out.extend_from_slice(key.as_bytes());
    Ok(out)
}

/// Splits an owner-index key into its owner and store key. `Ok(None)` for a
/// bare prefix (the generation counter of databases written before layout
/// 2), which is not an entry; any other shape is [`Error::Corrupt`].
pub(crate) fn parse_owner_key(bytes: &[u8]) -> Result<Option<(&str, StoreKey)>, Error> {
    let corrupt = |why: String| Error::Corrupt(format!("sled owner index entry of {} bytes: {why}", bytes.len()));
    let Some((length, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(corrupt("shorter than its length prefix".into()));
    };
    let owner_len = usize::try_from(u32::from_be_bytes(*length)).unwrap_or(usize::MAX);
    let Some((owner, key)) = rest.split_at_checked(owner_len) else {
        return Err(corrupt(format!("shorter than its owner of {owner_len} bytes")));
    };
    let owner = std::str::from_utf8(owner).map_err(|_| corrupt("the owner is not UTF-8".into()))?;
    match key.len() {
        0 => Ok(None),
        32 => Ok(Some((owner, StoreKey::from_slice(key)?))),
        n => Err(corrupt(format!("{n} bytes after the owner, expected a 32-byte key"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_bytes_follow_time_order() {
        let times = [i64::MIN, -1_000, -1, 0, 1, 1_000, i64::MAX];
        for pair in times.windows(2) {
            let (a, b) = (Timestamp::from_millis(pair[0]), Timestamp::from_millis(pair[1]));
            assert!(sortable(a) < sortable(b), "{a} vs {b}");
            assert_eq!(from_sortable(sortable(a)), a);
        }
    }

    #[test]
    fn expiry_keys_round_trip_and_reject_other_shapes() {
        let key = StoreKey::from_bytes([9; 32]);
        let at = Timestamp::from_millis(-77);
        assert_eq!(parse_expiry_key(&expiry_key(at, &key)).expect("own key"), (at, key));
        assert!(parse_expiry_key(&[0; 39]).is_err());
    }

    #[test]
    fn owner_keys_round_trip_and_reject_other_shapes() {
        let key = StoreKey::from_bytes([5; 32]);
        for owner in ["", "ann", "ünïcode"] {
            let entry = owner_key(owner, &key).expect("small owner");
            assert_eq!(parse_owner_key(&entry).expect("own entry"), Some((owner, key)));
            let counter = owner_prefix(owner).expect("small owner");
            assert_eq!(parse_owner_key(&counter).expect("a bare prefix"), None);
        }
        let mut not_utf8 = owner_key("ab", &key).expect("small owner");
        not_utf8[4] = 0xff;
        let too_long = [&owner_key("ab", &key).expect("small owner")[..], &[0]].concat();
        for bad in [
            &[0, 0, 1][..],
            &[0, 0, 0, 9, b'a'],
            &not_utf8,
            &too_long,
            &too_long[..10],
        ] {
            assert!(matches!(parse_owner_key(bad), Err(Error::Corrupt(_))), "{bad:?}");
        }
    }

    #[test]
    fn one_owner_is_never_a_prefix_of_another() {
        let key = StoreKey::from_bytes([1; 32]);
        let a = owner_key("ab", &key).expect("small owner");
        let prefix_b = owner_prefix("a").expect("small owner");
        assert!(!a.starts_with(&prefix_b));
    }
}
