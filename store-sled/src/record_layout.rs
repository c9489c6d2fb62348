//! How a [`Record`], or a rotation mark, is laid out as the value of the
//! `records` tree.
//!
//! A value is one of two kinds, told apart by its first byte (the format
//! byte); all integers are big-endian.
//!
//! A record, version 2 (written):
//!
//! ```text
//! [0]       format byte = 2
//! [1..9]    version      u64
//! [9..17]   created_at   i64 (ms since the epoch)
//! [17..25]  expires_at   i64 (ms since the epoch)
//! [25..33]  indexed_at   i64: where the record's expiry-index entry is
//! [33]      owner flag   0 = none, 1 = some
//! then, if the flag is 1:
//!           owner length u32, owner bytes (UTF-8)
//! then      data length  u32, data bytes
//! ```
//!
//! A record, version 1 (read, never written), lacks `indexed_at`: its entry
//! was always at `expires_at`, which is what decoding reports. `indexed_at` is
//! bookkeeping of this crate (see `database::index_upkeep`), never part of the
//! [`Record`].
//!
//! A rotation mark, version 3 (written; layout 3 adds this kind of value and
//! leaves records as they were in version 2):
//!
//! ```text
//! [0]       format byte = 3
//! [1..9]    until        i64: the mark is in force while now < until
//! ```
//!
//! A mark is always filed in the expiry index under its `until` (so it needs
//! no `indexed_at`): the sweep reaches it as soon as it is no longer in force
//! and removes it. It holds no data and no owner.
//!
//! The key is not stored in the value: it is the tree key. Lengths are
//! explicit and checked against the value's size, so a truncated or padded
//! value is reported as [`Error::Corrupt`] instead of being misread. Decoding
//! never panics: every read goes through [`Reader`], which checks bounds.

use session_core::{Bytes, Error, Record, StoreKey, Timestamp};

/// The first byte of the values of the first layout (read only).
pub(crate) const FORMAT_V1: u8 = 1;
/// The first byte of every record this version writes.
pub(crate) const FORMAT_V2: u8 = 2;
/// The first byte of every rotation mark.
pub(crate) const FORMAT_MARK: u8 = 3;
/// The size of a rotation mark's value.
const MARK_LEN: usize = 1 + 8;

/// A record as stored: the record and where its expiry-index entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) record: Record,
    /// The time under which the expiry index lists this record; never later
    /// than `record.expires_at`.
    pub(crate) indexed_at: Timestamp,
}

/// A rotation mark as stored: not a session (see
/// [`SessionStore`](session_core::SessionStore)'s "Rotation marks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// The mark is in force while `now < until`; also where the expiry
    /// index lists it.
    pub(crate) until: Timestamp,
}

/// Whatever a value of the `records` tree holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A session, live or expired.
    Session(Stored),
    /// A rotation mark, in force or not.
    Mark(Mark),
}

impl Slot {
    /// The session, if this is one and it is live at `now`.
    pub(crate) fn live_session(self, now: Timestamp) -> Option<Stored> {
        match self {
            Slot::Session(s) if s.record.is_live_at(now) => Some(s),
            _ => None,
        }
    }

    /// Whether this is a session live at `now`.
    pub(crate) fn is_live_session(&self, now: Timestamp) -> bool {
        matches!(self, Slot::Session(s) if s.record.is_live_at(now))
    }

    /// The time under which the expiry index lists this value.
    pub(crate) fn indexed_at(&self) -> Timestamp {
        match self {
            Slot::Session(s) => s.indexed_at,
            Slot::Mark(m) => m.until,
        }
    }

    /// The owner the owner index lists this value for (marks have none).
    pub(crate) fn owner(&self) -> Option<&str> {
        match self {
            Slot::Session(s) => s.record.owner.as_deref(),
            Slot::Mark(_) => None,
        }
    }
}

/// Encodes a rotation mark.
pub(crate) fn encode_mark(mark: &Mark) -> [u8; MARK_LEN] {
    let mut out = [0u8; MARK_LEN];
    out[0] = FORMAT_MARK;
    out[1..].copy_from_slice(&mark.until.as_millis().to_be_bytes());
    out
}

/// Encodes `record` with its index position (its key is not included).
pub(crate) fn encode(record: &Record, indexed_at: Timestamp) -> Result<Vec<u8>, Error> {
    let owner_len = record.owner.as_ref().map_or(0, |o| 4 + o.len());
    let mut out = Vec::with_capacity(1 + 8 + 8 + 8 + 8 + 1 + owner_len + 4 + record.data.len());
    out.push(FORMAT_V2);
    out.extend_from_slice(&record.version.to_be_bytes());
    out.extend_from_slice(&record.created_at.as_millis().to_be_bytes());
    out.extend_from_slice(&record.expires_at.as_millis().to_be_bytes());
    out.extend_from_slice(&indexed_at.as_millis().to_be_bytes());
    match &record.owner {
        None => out.push(0),
        Some(owner) => {
            out.push(1);
            out.extend_from_slice(&length_prefix(owner.len())?);
            out.extend_from_slice(owner.as_bytes());
        }
    }
    out.extend_from_slice(&length_prefix(record.data.len())?);
    out.extend_from_slice(&record.data);
    Ok(out)
}

/// A length as the 4 bytes that prefix a field; 4 GiB or more is refused
/// (nothing is written).
pub(crate) fn length_prefix(len: usize) -> Result<[u8; 4], Error> {
    u32::try_from(len).map(u32::to_be_bytes).map_err(|_| Error::TooLarge {
        size: len,
        limit: u32::MAX as usize,
    })
}

/// Decodes the value stored under `key`. Any deviation from the layout is
/// [`Error::Corrupt`], naming the key's short prefix (never a token: keys are
/// hashes).
pub(crate) fn decode(key: StoreKey, bytes: &[u8]) -> Result<Slot, Error> {
    decode_fields(key, bytes).map_err(|why| Error::Corrupt(format!("sled record {}: {why}", key.short())))
}

fn decode_fields(key: StoreKey, bytes: &[u8]) -> Result<Slot, String> {
    let mut r = Reader { bytes };
    let format = r.u8()?;
    match format {
        FORMAT_V1 | FORMAT_V2 => decode_record(key, format, r).map(Slot::Session),
        FORMAT_MARK => {
            let until = Timestamp::from_millis(r.i64()?);
            r.end()?;
            Ok(Slot::Mark(Mark { until }))
        }
        _ => Err(format!("unknown record format {format}")),
    }
}

/// A record's fields after its format byte.
fn decode_record(key: StoreKey, format: u8, mut r: Reader<'_>) -> Result<Stored, String> {
    let version = r.u64()?;
    let created_at = Timestamp::from_millis(r.i64()?);
    let expires_at = Timestamp::from_millis(r.i64()?);
    let indexed_at = match format {
        FORMAT_V1 => expires_at,
        _ => Timestamp::from_millis(r.i64()?),
    };
    if indexed_at > expires_at {
        return Err("indexed after its expiry".to_owned());
    }
    let owner = match r.u8()? {
        0 => None,
        1 => {
            let owner = r.prefixed()?;
            let owner = std::str::from_utf8(owner).map_err(|_| "owner is not UTF-8".to_owned())?;
            Some(owner.to_owned())
        }
        other => return Err(format!("bad owner flag {other}")),
    };
    let data = Bytes::copy_from_slice(r.prefixed()?);
    r.end()?;
    Ok(Stored {
        record: Record {
            key,
            version,
            data,
            created_at,
            expires_at,
            owner,
        },
        indexed_at,
    })
}

/// A cursor that checks every read against the remaining length.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!("truncated: needed {n} more bytes, {} left", self.bytes.len()));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// Checks that nothing follows the last field.
    fn end(&self) -> Result<(), String> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(format!("{n} trailing bytes")),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn prefixed(&mut self) -> Result<&'a [u8], String> {
        let len = u32::from_be_bytes(self.array()?);
        let len = usize::try_from(len).map_err(|_| "length does not fit in memory".to_owned())?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The session a value decodes to; panics on a mark or an error.
    fn session(key: StoreKey, bytes: &[u8]) -> Stored {
        match decode(key, bytes) {
            Ok(Slot::Session(stored)) => stored,
            other => panic!("expected a session, got {other:?}"),
        }
    }

    fn sample(owner: Option<&str>) -> Record {
        Record {
            key: StoreKey::from_bytes([3; 32]),
            version: 42,
            data: Bytes::from_static(b"\x01hello"),
            created_at: Timestamp::from_millis(-5),
            expires_at: Timestamp::from_millis(i64::MAX),
            owner: owner.map(str::to_owned),
        }
    }

    #[test]
    fn round_trips_with_and_without_owner() {
        for owner in [None, Some(""), Some("alice"), Some("ünïcode")] {
            let record = sample(owner);
            let indexed_at = Timestamp::from_millis(7);
            let bytes = encode(&record, indexed_at).expect("small record encodes");
            let stored = session(record.key, &bytes);
            assert_eq!((stored.record, stored.indexed_at), (record, indexed_at));
        }
    }

    #[test]
    fn every_truncation_and_extension_is_corrupt() {
        let record = sample(Some("bob"));
        let bytes = encode(&record, record.expires_at).expect("small record encodes");
        for n in 0..bytes.len() {
            assert!(
                matches!(decode(record.key, &bytes[..n]), Err(Error::Corrupt(_))),
                "prefix {n}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(record.key, &longer), Err(Error::Corrupt(_))));
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let key = StoreKey::from_bytes([0; 32]);
        for garbage in [&b""[..], b"\x00", b"\x02abc", b"\x03", b"\x01", &[0xff; 64], &[1; 64]] {
            assert!(matches!(decode(key, garbage), Err(Error::Corrupt(_))));
        }
        // A huge announced length must not allocate or panic.
        let mut bytes = vec![FORMAT_V1];
        bytes.extend_from_slice(&[0; 24]);
        bytes.push(1);
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(key, &bytes), Err(Error::Corrupt(_))));
    }

    #[test]
    fn the_first_layout_still_reads_with_its_entry_at_the_expiry() {
        let record = sample(Some("dora"));
        let v2 = encode(&record, record.expires_at).expect("encodes");
        // Version 1 is version 2 without the 8 bytes of `indexed_at`.
        let mut v1 = vec![FORMAT_V1];
        v1.extend_from_slice(&v2[1..25]);
        v1.extend_from_slice(&v2[33..]);
        let stored = session(record.key, &v1);
        assert_eq!((stored.record, stored.indexed_at), (record.clone(), record.expires_at));
    }

    #[test]
    fn an_index_position_after_the_expiry_is_corrupt() {
        let record = sample(None);
        let mut record = record;
        record.expires_at = Timestamp::from_millis(10);
        let bytes = encode(&record, Timestamp::from_millis(11)).expect("encodes");
        assert!(matches!(decode(record.key, &bytes), Err(Error::Corrupt(_))));
    }

    #[test]
    fn a_mark_round_trips_and_is_not_a_session() {
        let key = StoreKey::from_bytes([4; 32]);
        let mark = Mark {
            until: Timestamp::from_millis(-3),
        };
        let bytes = encode_mark(&mark);
        let slot = decode(key, &bytes).expect("a mark decodes");
        assert_eq!(slot, Slot::Mark(mark));
        assert_eq!((slot.owner(), slot.indexed_at()), (None, mark.until));
        assert!(!slot.is_live_session(Timestamp::from_millis(i64::MIN)));
        assert_eq!(slot.live_session(Timestamp::from_millis(i64::MIN)), None);
        for n in 0..bytes.len() {
            assert!(matches!(decode(key, &bytes[..n]), Err(Error::Corrupt(_))), "prefix {n}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(matches!(decode(key, &longer), Err(Error::Corrupt(_))));
    }
}
