//! How a tower-sessions record is kept in a [`Record`](session_core::Record)'s
//! opaque `data`: the at-rest format of this crate.
//!
//! ```text
//! byte  0        TOWER_FORMAT_V1
//! bytes 1..17    expiry_date as Unix nanoseconds, i128 little-endian
//! bytes 17..21   expiry_date's UTC offset in seconds, i32 little-endian
//! bytes 21..     the session data (tower's map of JSON values), in the
//!                self-describing binary encoding of `json_value.rs`
//! ```
//!
//! The data map holds `serde_json::Value`s, which only a self-describing
//! format can decode (postcard, session-core's codec, cannot); the expiry is
//! a fixed binary header, exact to the nanosecond and with its offset, so a
//! record comes back `==` to the one saved. The id is not in it: the store
//! knows the session only by the hash of its id.

use std::collections::HashMap;

use session_core::{Bytes, Error, Timestamp};

use crate::json_value;
use time::{OffsetDateTime, UtcOffset};

/// The first byte of every record this crate writes. Far from session-core's
/// own format numbers (1, ...), so that a `SessionManager` reading a tower
/// record, or this crate reading a manager's, refuses it as corrupt instead
/// of misreading it.
pub const TOWER_FORMAT_V1: u8 = 0x74;

/// Bytes before the JSON data: format byte, nanoseconds, offset.
const HEADER_LEN: usize = 1 + 16 + 4;

/// tower-sessions' data map (`tower_sessions_core::session::Data` in both
/// supported versions).
pub(crate) type Data = HashMap<String, serde_json::Value>;

/// Encodes a record's data and exact expiry.
pub(crate) fn encode(data: &Data, expiry: OffsetDateTime) -> Result<Bytes, Error> {
    // Sized exactly: one allocation, which `Bytes` then takes over as it is.
    let mut out = Vec::with_capacity(HEADER_LEN + json_value::encoded_len_map(data));
    out.push(TOWER_FORMAT_V1);
    out.extend_from_slice(&expiry.unix_timestamp_nanos().to_le_bytes());
    out.extend_from_slice(&expiry.offset().whole_seconds().to_le_bytes());
    json_value::encode_map(data, &mut out).map_err(|e| Error::Serialize(format!("tower session data: {e}")))?;
    Ok(Bytes::from(out))
}

/// Decodes what [`encode`] wrote; anything else is [`Error::Corrupt`], never
/// a panic.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Data, OffsetDateTime), Error> {
    let Some((header, data)) = bytes.split_at_checked(HEADER_LEN) else {
        return Err(corrupt(format!("{} bytes, shorter than the header", bytes.len())));
    };
    let (format, rest) = header.split_at(1);
    if format[0] != TOWER_FORMAT_V1 {
        return Err(corrupt(format!("unknown format byte {:#04x}", format[0])));
    }
    let (nanos, offset) = rest.split_at(16);
    let nanos = i128::from_le_bytes(nanos.try_into().map_err(|_| corrupt("short expiry".into()))?);
    let offset = i32::from_le_bytes(offset.try_into().map_err(|_| corrupt("short offset".into()))?);
    let offset = UtcOffset::from_whole_seconds(offset).map_err(|e| corrupt(format!("expiry offset: {e}")))?;
    let expiry = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|e| corrupt(format!("expiry: {e}")))?
        .checked_to_offset(offset)
        .ok_or_else(|| corrupt("expiry out of range in its offset".into()))?;
    let data = json_value::decode_map(data).map_err(|e| corrupt(format!("data: {e}")))?;
    Ok((data, expiry))
}

fn corrupt(what: String) -> Error {
    Error::Corrupt(format!("tower session record: {what}"))
}

/// The `expires_at` the store keeps for a tower expiry: rounded down to the
/// millisecond, so the store never keeps a session live past tower's
/// deadline (at most a millisecond before it). Saturates at the ends of the
/// millisecond range.
pub(crate) fn expires_at(expiry: OffsetDateTime) -> Timestamp {
    // Whole seconds (rounded down, also before the epoch) and the
    // millisecond within the second: the same as the nanoseconds divided
    // with rounding down, without 128-bit division on every request. `time`
    // keeps years within ±999,999, so the product fits an i64 with room to
    // spare; saturating is only a guard.
    let ms = expiry
        .unix_timestamp()
        .saturating_mul(1_000)
        .saturating_add(i64::from(expiry.millisecond()));
    Timestamp::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Data {
        let mut data = Data::new();
        data.insert("user".into(), json!({"id": 7, "name": "Ada", "roles": ["admin"]}));
        data.insert("n".into(), json!(1.5));
        data
    }

    #[test]
    fn data_and_expiry_round_trip_to_the_nanosecond_and_offset() {
        let expiry = OffsetDateTime::from_unix_timestamp_nanos(1_790_000_000_123_456_789)
            .expect("in range")
            .to_offset(UtcOffset::from_hms(5, 30, 15).expect("valid offset"));
        let (back, back_expiry) = decode(&encode(&data(), expiry).expect("encodes")).expect("decodes");
        assert_eq!(back, data());
        assert_eq!(back_expiry, expiry);
        assert_eq!(back_expiry.offset(), expiry.offset());
        assert_eq!(back_expiry.nanosecond(), 123_456_789);
    }

    #[test]
    fn expires_at_rounds_down_never_past_the_deadline() {
        let at = |ns: i128| OffsetDateTime::from_unix_timestamp_nanos(ns).expect("in range");
        assert_eq!(expires_at(at(1_999_999)), Timestamp::from_millis(1));
        assert_eq!(expires_at(at(2_000_000)), Timestamp::from_millis(2));
        // Before the epoch, rounding down is away from zero.
        assert_eq!(expires_at(at(-1)), Timestamp::from_millis(-1));
        assert_eq!(expires_at(at(-1_000_000)), Timestamp::from_millis(-1));
        assert!(expires_at(OffsetDateTime::UNIX_EPOCH.replace_year(9999).expect("year")) > Timestamp::EPOCH);
        // The same as dividing the nanoseconds with rounding down, at every
        // kind of instant, before and after the epoch.
        for ns in [
            0,
            1,
            -1,
            999_999,
            -999_999,
            1_000_000,
            -1_000_001,
            1_790_000_000_123_456_789,
            -62_135_596_800_000_000_001,
            time::PrimitiveDateTime::MAX.assume_utc().unix_timestamp_nanos(),
            time::PrimitiveDateTime::MIN.assume_utc().unix_timestamp_nanos(),
        ] {
            let want = i64::try_from(ns.div_euclid(1_000_000)).expect("fits");
            assert_eq!(expires_at(at(ns)), Timestamp::from_millis(want), "{ns} ns");
        }
    }

    #[test]
    fn every_damaged_record_is_corrupt_never_a_panic() {
        let good = encode(&data(), OffsetDateTime::UNIX_EPOCH).expect("encodes").to_vec();
        // Every truncation, and every single-byte change of the header.
        for len in 0..good.len() {
            assert!(
                matches!(decode(&good[..len]), Err(Error::Corrupt(_))),
                "truncated to {len}"
            );
        }
        let mut out_of_range = good.clone();
        out_of_range[1..17].copy_from_slice(&i128::MAX.to_le_bytes());
        let mut bad_offset = good.clone();
        bad_offset[17..21].copy_from_slice(&i32::MAX.to_le_bytes());
        let mut other_format = good.clone();
        other_format[0] = session_core::FORMAT_V1;
        let mut deep = good[..HEADER_LEN].to_vec();
        deep.extend(std::iter::repeat_n(b'[', 100_000));
        for bad in [
            out_of_range,
            bad_offset,
            other_format,
            deep,
            conformance::FOREIGN_DATA.to_vec(),
        ] {
            assert!(matches!(decode(&bad), Err(Error::Corrupt(_))));
        }
        // Arbitrary bytes: decoding returns, whatever they are.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2_000 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % bytes.len();
                bytes[at] = (seed >> 32) as u8;
            }
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn an_expiry_at_the_edge_of_its_offset_is_refused_not_a_panic() {
        // The latest instant `time` can hold, in an offset that would carry
        // it past year 9999.
        let mut bytes = encode(&Data::new(), OffsetDateTime::UNIX_EPOCH)
            .expect("encodes")
            .to_vec();
        let latest = time::PrimitiveDateTime::MAX.assume_utc().unix_timestamp_nanos();
        bytes[1..17].copy_from_slice(&latest.to_le_bytes());
        bytes[17..21].copy_from_slice(&3600_i32.to_le_bytes());
        assert!(matches!(decode(&bytes), Err(Error::Corrupt(_))));
    }
}
