//! The record layout: one Redis string per key, a fixed binary header, then
//! the owner, then the data. `lua/record.lua` reads the same layout; the
//! two must agree.
//!
//! ```text
//! offset  size  field
//!      0     1  kind: b'S' a session, b'M' a rotation mark, b'D' a deletion receipt
//!      1     8  version, u64 big-endian (0 in marks and receipts)
//!      9     8  created_at, i64 big-endian milliseconds
//!     17     8  expires_at, i64 big-endian milliseconds (a mark: the end of the mark)
//!     25    16  the operation id of the write that stored it
//!     41     2  the owner's length in bytes, u16 big-endian (0: no owner)
//!     43     n  the owner (UTF-8), then the data to the end
//! ```
//!
//! Fixed offsets let `load` be one `GET` decoded here without a copy of the
//! data, and let the scripts read only the header (`GETRANGE 0 42`) and
//! change it in place (`SETRANGE`).

use session_core::{Bytes, Error, Record, StoreKey, Timestamp};

/// The header's length in bytes.
pub(crate) const HEADER_LEN: usize = 43;

/// The kind byte of a session record.
pub(crate) const SESSION: u8 = b'S';
/// The kind byte of a rotation mark.
pub(crate) const MARK: u8 = b'M';
/// The kind byte of a deletion receipt.
pub(crate) const RECEIPT: u8 = b'D';

/// An operation id: which write stored a record, so that the same write sent
/// again is recognised.
pub(crate) type OpId = [u8; 16];

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: u8,
    pub(crate) version: u64,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) op: OpId,
    pub(crate) owner_len: usize,
}

fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// Decodes the header at the start of `bytes`, checking every field a reader
/// relies on: the length, the kind, a session's version (1 or more) and that
/// its owner fits in what follows (when `whole`, i.e. `bytes` is the whole
/// value and not only its header).
pub(crate) fn header(bytes: &[u8], whole: bool) -> Result<Header, Error> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::Corrupt("the record is shorter than its header".to_owned()));
    }
    let h = Header {
        kind: bytes[0],
        version: u64::from_be_bytes(array(bytes, 1)),
        created_at: Timestamp::from_millis(i64::from_be_bytes(array(bytes, 9))),
        expires_at: Timestamp::from_millis(i64::from_be_bytes(array(bytes, 17))),
        op: array(bytes, 25),
        owner_len: usize::from(u16::from_be_bytes(array(bytes, 41))),
    };
    match h.kind {
        SESSION => {
            if h.version == 0 {
                return Err(Error::Corrupt("the version is 0".to_owned()));
            }
            if whole && bytes.len() - HEADER_LEN < h.owner_len {
                return Err(Error::Corrupt(
                    "the owner length runs past the end of the record".to_owned(),
                ));
            }
        }
        MARK | RECEIPT => {}
        _ => return Err(Error::Corrupt("the record has an unknown format byte".to_owned())),
    }
    Ok(h)
}

/// The session stored in `value` (a whole string as `GET` returns it):
/// `None` for an empty string, a rotation mark or a deletion receipt. The
/// data is a slice of `value`, not a copy. Liveness is the caller's to judge.
pub(crate) fn session(key: StoreKey, value: Vec<u8>) -> Result<Option<Record>, Error> {
    if value.is_empty() {
        return Ok(None);
    }
    let h = header(&value, true)?;
    if h.kind != SESSION {
        return Ok(None);
    }
    let owner_end = HEADER_LEN + h.owner_len;
    let owner = match h.owner_len {
        0 => None,
        _ => Some(
            std::str::from_utf8(&value[HEADER_LEN..owner_end])
                .map_err(|_| Error::Corrupt("the owner is not UTF-8".to_owned()))?
                .to_owned(),
        ),
    };
    let data = Bytes::from(value).slice(owner_end..);
    Ok(Some(Record {
        key,
        version: h.version,
        data,
        created_at: h.created_at,
        expires_at: h.expires_at,
        owner,
    }))
}

/// A session record: the header (with `version`) then the owner and `data`.
/// The caller has checked the owner's length (at most `MAX_OWNER_LEN`, so it
/// fits the two length bytes).
pub(crate) fn encode(
    version: u64,
    created_at: Timestamp,
    expires_at: Timestamp,
    op: &OpId,
    owner: Option<&str>,
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    // The contract's owners (at most MAX_OWNER_LEN bytes) always fit the
    // 2-byte length; any other is refused before a byte is sent.
    if let Some(owner) = owner {
        session_core::validate_owner(owner)?;
    }
    let owner = owner.unwrap_or("").as_bytes();
    let owner_len = u16::try_from(owner.len())
        .map_err(|_| Error::InvalidOwner(format!("an owner of {} bytes does not fit the record", owner.len())))?;
    let mut out = Vec::with_capacity(HEADER_LEN + owner.len() + data.len());
    out.push(SESSION);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&created_at.as_millis().to_be_bytes());
    out.extend_from_slice(&expires_at.as_millis().to_be_bytes());
    out.extend_from_slice(op);
    out.extend_from_slice(&owner_len.to_be_bytes());
    out.extend_from_slice(owner);
    out.extend_from_slice(data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StoreKey {
        StoreKey::from_hex(&"ab".repeat(32)).expect("64 hex digits")
    }

    #[test]
    fn a_record_decodes_as_it_was_encoded() {
        let t = |ms| Timestamp::from_millis(ms);
        for (owner, data) in [(None, &b""[..]), (Some("ann"), &b"\x01\x02"[..])] {
            let bytes = encode(u64::MAX, t(i64::MIN), t(i64::MAX), &[7; 16], owner, data).expect("encodes");
            let r = session(key(), bytes).expect("decodes").expect("a session");
            assert_eq!(
                (r.version, r.created_at, r.expires_at),
                (u64::MAX, t(i64::MIN), t(i64::MAX))
            );
            assert_eq!((r.owner.as_deref(), r.data.as_ref()), (owner, data));
        }
    }

    #[test]
    fn damaged_bytes_are_corrupt_and_never_panic() {
        let good = encode(
            1,
            Timestamp::from_millis(1),
            Timestamp::from_millis(2),
            &[0; 16],
            Some("ann"),
            b"d",
        )
        .expect("encodes");
        // Every truncation, and every value of every header byte.
        for len in 1..good.len() {
            let _ = session(key(), good[..len].to_vec());
        }
        for i in 0..HEADER_LEN {
            for b in 0..=255u8 {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = session(key(), bad);
            }
        }
        let corrupt = |bytes: Vec<u8>| matches!(session(key(), bytes), Err(Error::Corrupt(_)));
        assert!(corrupt(good[..HEADER_LEN - 1].to_vec()), "truncated header");
        let mut wrong_kind = good.clone();
        wrong_kind[0] = b'X';
        assert!(corrupt(wrong_kind), "wrong format byte");
        let mut long_owner = good.clone();
        long_owner[41..43].copy_from_slice(&100u16.to_be_bytes());
        assert!(corrupt(long_owner), "owner length past the end");
        let mut zero = good.clone();
        zero[1..9].copy_from_slice(&[0; 8]);
        assert!(corrupt(zero), "version 0");
        let mut not_utf8 = good;
        not_utf8[HEADER_LEN] = 0xff;
        assert!(corrupt(not_utf8), "owner not UTF-8");
    }

    #[test]
    fn marks_receipts_and_empty_strings_are_no_session() {
        for kind in [MARK, RECEIPT] {
            let mut bytes = vec![0; HEADER_LEN];
            bytes[0] = kind;
            assert_eq!(session(key(), bytes).expect("valid"), None);
        }
        assert_eq!(session(key(), Vec::new()).expect("valid"), None);
    }
}
