//! Turning what Redis answers into the contract's values and errors.
//!
//! Every reply (of a script, or of the plain HMGETs of `load` and
//! `was_rotated`) is decoded by hand from [`Value`], so an unexpected shape
//! (a foreign script under our SHA-1, a server bug, a damaged record)
//! becomes [`Error::Corrupt`] and never a panic. `load` validates the record
//! here, as the scripts do in Lua.

use std::fmt;
use std::time::Duration;

use redis::{ErrorKind, RedisError, RetryMethod, ServerErrorKind, Value};
use session_core::{Bytes, Error, OwnedSession, Record, StoreKey, Timestamp};

/// The configured timeouts, for error messages: a timeout names the one
/// that ran out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) response: Duration,
    pub(crate) connection: Duration,
}

/// A backend failure of one operation: its message names the operation and,
/// for a timeout, the configured durations; the redis-rs error is the
/// source. Neither ever holds a key: redis-rs and Redis errors name no keys,
/// and store keys are not tokens anyway.
#[derive(Debug)]
struct Failure {
    message: String,
    source: RedisError,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `300 ms`, or `1.5s` style when not a whole number of milliseconds.
fn duration(d: Duration) -> String {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{d:?}")
    }
}

/// Maps a client or server error of operation `op` (`"load"`, `"update"`,
/// ..., or `"connect"` when building the store). Scripts report damaged
/// records with the error code `CORRUPT`; a `WRONGTYPE` from the server
/// means the same.
pub(crate) fn error(op: &'static str, timeouts: Timeouts, err: RedisError) -> Error {
    match err.code() {
        Some("CORRUPT") => {
            // Redis appends " script: <sha>, on @user_script:<line>." to
            // errors raised in scripts: keep only our reason.
            let detail = err.detail().unwrap_or("damaged session record");
            let reason = detail.split(" script: ").next().unwrap_or(detail);
            return Error::Corrupt(reason.to_owned());
        }
        Some("WRONGTYPE") => {
            return Error::Corrupt("a key holds a value of the wrong type".to_owned());
        }
        _ => {}
    }
    if err.kind() == ErrorKind::UnexpectedReturnType {
        return Error::Corrupt(format!("unexpected reply from Redis: {err}"));
    }
    let transient = match err.kind() {
        // Connection lost, refused or timed out: the next attempt may find
        // the server back (the connection manager reconnects by itself).
        ErrorKind::Io => true,
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => true,
        _ => !matches!(err.retry_method(), RetryMethod::NoRetry),
    };
    let message = if err.is_timeout() && op == "connect" {
        format!(
            "store-redis: `connect` got no connection within the connection timeout of {}",
            duration(timeouts.connection)
        )
    } else if err.is_timeout() {
        // redis-rs reports both timeouts alike: an operation that met a
        // reconnect waits for the connection before it sends anything.
        format!(
            "store-redis: `{op}` got no reply within the response timeout of {} (or no connection within the \
             connection timeout of {})",
            duration(timeouts.response),
            duration(timeouts.connection)
        )
    } else {
        format!("store-redis: `{op}` failed: {err}")
    };
    let failure = Failure { message, source: err };
    if transient {
        Error::backend_transient(failure)
    } else {
        Error::backend_permanent(failure)
    }
}

fn corrupt(what: &str, value: &Value) -> Error {
    // The value may hold session data: name its shape, not its contents.
    let shape = match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) => "a status",
        Value::Okay => "OK",
        _ => "another kind of value",
    };
    Error::Corrupt(format!("expected {what} from Redis, got {shape}"))
}

/// An integer reply.
pub(crate) fn int(value: &Value) -> Result<i64, Error> {
    match value {
        Value::Int(n) => Ok(*n),
        other => Err(corrupt("an integer", other)),
    }
}

fn bytes<'a>(what: &str, value: &'a Value) -> Result<&'a [u8], Error> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.as_bytes()),
        other => Err(corrupt(what, other)),
    }
}

fn text<'a>(what: &str, value: &'a Value) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes(what, value)?).map_err(|_| Error::Corrupt(format!("{what} is not UTF-8")))
}

/// Whether `s` is an integer as this crate writes it: decimal, no sign but
/// `-`, no leading zero, not `-0`. The scripts compare such strings digit by
/// digit, so accepting `007` here would let a load and an update disagree.
fn canonical(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let first = digits.bytes().next();
    digits.bytes().all(|b| b.is_ascii_digit())
        && match first {
            None => false,
            Some(b'0') => s == "0",
            Some(_) => true,
        }
}

/// A decimal `u64` field, such as the version.
pub(crate) fn version(value: &Value) -> Result<u64, Error> {
    let s = text("a version", value)?;
    Some(s)
        .filter(|s| canonical(s))
        .and_then(|s| s.parse().ok())
        .filter(|v| *v >= 1)
        .ok_or_else(|| Error::Corrupt("the version is not a positive integer".to_owned()))
}

/// A decimal `i64` field holding milliseconds.
pub(crate) fn timestamp(what: &str, value: &Value) -> Result<Timestamp, Error> {
    let s = text(what, value)?;
    Some(s)
        .filter(|s| canonical(s))
        .and_then(|s| s.parse().ok())
        .map(Timestamp::from_millis)
        .ok_or_else(|| Error::Corrupt(format!("{what} is not an integer")))
}

fn store_key(value: &Value) -> Result<StoreKey, Error> {
    let s = text("a store key", value)?;
    StoreKey::from_hex(s).map_err(|_| Error::Corrupt("the owner index holds a malformed store key".to_owned()))
}

/// The array a script returns, or `None` for nil.
pub(crate) fn array<'a>(what: &str, value: &'a Value) -> Result<Option<&'a [Value]>, Error> {
    match value {
        // Lua `false` is nil in RESP2 and may be a boolean in RESP3.
        Value::Nil | Value::Boolean(false) => Ok(None),
        Value::Array(items) => Ok(Some(items)),
        other => Err(corrupt(what, other)),
    }
}

/// The fields of a loaded record: version, data, created_at, expires_at,
/// owner (nil when none).
pub(crate) struct Fields {
    pub(crate) version: u64,
    pub(crate) data: Bytes,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) owner: Option<String>,
}

/// The reply to `HMGET key version data created_at expires_at owner`:
/// `None` when every field is nil (no such key, or a hash holding none of
/// the session fields), else the validated fields. The payload is moved out
/// of the reply, not copied.
pub(crate) fn hmget_fields(value: Value) -> Result<Option<Fields>, Error> {
    let items = match value {
        Value::Array(items) => items,
        other => return Err(corrupt("an array of fields", &other)),
    };
    let Ok([version_v, data, created_at, expires_at, owner]) = <[Value; 5]>::try_from(items) else {
        return Err(Error::Corrupt("HMGET of 5 fields returned another count".to_owned()));
    };
    let is_nil = |v: &Value| matches!(v, Value::Nil);
    if [&version_v, &data, &created_at, &expires_at, &owner]
        .into_iter()
        .all(is_nil)
    {
        return Ok(None);
    }
    // Same checks, in the same order, as `parse` in the scripts.
    let version = version(&version_v)?;
    let created_at = timestamp("created_at", &created_at)?;
    let expires_at = timestamp("expires_at", &expires_at)?;
    let data = match data {
        Value::BulkString(b) => Bytes::from(b),
        Value::Nil => return Err(Error::Corrupt("the data field is missing".to_owned())),
        other => return Err(corrupt("the data", &other)),
    };
    let owner = match owner {
        Value::Nil => None,
        other => Some(text("the owner", &other)?.to_owned()),
    };
    Ok(Some(Fields {
        version,
        data,
        created_at,
        expires_at,
        owner,
    }))
}

/// A record of an owner that `list_by_owner` left out because it cannot be
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// The session's key, if the index entry is one.
    pub(crate) key: Option<StoreKey>,
    /// Why it cannot be read: a reason this crate wrote, never stored bytes.
    pub(crate) reason: String,
}

/// The reply of `list_by_owner`: `{[hex, created_at, expires_at, ...],
/// [hex, reason, ...]}`, the live sessions and the records skipped as
/// damaged. A listed triple that does not decode (an index entry that is not
/// a store key) is skipped too, not an error: one bad entry must not hide
/// the owner's other sessions.
pub(crate) fn owner_listing(value: &Value) -> Result<(Vec<OwnedSession>, Vec<Skipped>), Error> {
    let parts = array("an owner listing", value)?.unwrap_or_default();
    let [listed, damaged] = parts else {
        return Err(Error::Corrupt("the owner listing is not a pair of arrays".to_owned()));
    };
    let listed = array("the listed sessions", listed)?.unwrap_or_default();
    let damaged = array("the skipped sessions", damaged)?.unwrap_or_default();
    if !listed.len().is_multiple_of(3) || !damaged.len().is_multiple_of(2) {
        return Err(Error::Corrupt("the owner listing is malformed".to_owned()));
    }
    let entry_key = |v: &Value| {
        text("an owner index entry", v)
            .ok()
            .and_then(|s| StoreKey::from_hex(s).ok())
    };
    let mut skipped: Vec<Skipped> = damaged
        .chunks_exact(2)
        .map(|p| Skipped {
            key: entry_key(&p[0]),
            reason: text("a reason", &p[1]).unwrap_or("unreadable").to_owned(),
        })
        .collect();
    let mut sessions = Vec::with_capacity(listed.len() / 3);
    for t in listed.chunks_exact(3) {
        let session = store_key(&t[0]).and_then(|key| {
            Ok(OwnedSession {
                key,
                created_at: timestamp("created_at", &t[1])?,
                expires_at: timestamp("expires_at", &t[2])?,
            })
        });
        match session {
            Ok(s) => sessions.push(s),
            Err(e) => skipped.push(Skipped {
                key: entry_key(&t[0]),
                reason: e.to_string(),
            }),
        }
    }
    Ok((sessions, skipped))
}

/// The reply of `rotate`: 1 (the old key is not live), 2 (the new key is
/// live), or the moved record `{data, created_at, expires_at, owner}` (the
/// owner nil when none), completed with `key` and version 1.
pub(crate) fn moved_record(value: Value, key: StoreKey) -> Result<Record, Error> {
    let items = match value {
        Value::Int(1) => return Err(Error::NotFound),
        Value::Int(2) => return Err(Error::AlreadyExists),
        Value::Array(items) => items,
        other => return Err(corrupt("a moved record", &other)),
    };
    let mut items = items.into_iter();
    let (Some(data), Some(created_at), Some(expires_at), owner, None) =
        (items.next(), items.next(), items.next(), items.next(), items.next())
    else {
        return Err(Error::Corrupt("rotate returned another count of fields".to_owned()));
    };
    let data = match data {
        Value::BulkString(b) => Bytes::from(b),
        other => return Err(corrupt("the data", &other)),
    };
    Ok(Record {
        key,
        version: 1,
        data,
        created_at: timestamp("created_at", &created_at)?,
        expires_at: timestamp("expires_at", &expires_at)?,
        owner: match owner {
            // Lua reads an absent hash field as false, which Redis returns as
            // nil (RESP2) or false (RESP3).
            None | Some(Value::Nil | Value::Boolean(false)) => None,
            Some(o) => Some(text("the owner", &o)?.to_owned()),
        },
    })
}

/// The fields `was_rotated` asks for: the mark's end, then the five session
/// fields (`load`'s), which a mark has none of.
pub(crate) const MARK_FIELDS: [&str; 6] = ["rotated_until", "version", "data", "created_at", "expires_at", "owner"];

/// The reply to an HMGET of [`MARK_FIELDS`]: the instant the rotation mark
/// stops being in force, or `None` when the key holds no mark (nothing, or
/// a record: any session field present means a record, live or not, which
/// is no mark). A mark whose end is not an integer is corrupt.
pub(crate) fn mark_until(value: &Value) -> Result<Option<Timestamp>, Error> {
    let items = array("an array of fields", value)?.unwrap_or_default();
    let [until, session_fields @ ..] = items else {
        return Err(Error::Corrupt("HMGET of the mark fields returned no field".to_owned()));
    };
    if session_fields.len() != MARK_FIELDS.len() - 1 {
        return Err(Error::Corrupt(
            "HMGET of the mark fields returned another count".to_owned(),
        ));
    }
    if matches!(until, Value::Nil) || session_fields.iter().any(|v| !matches!(v, Value::Nil)) {
        return Ok(None);
    }
    timestamp("the rotation mark's end", until).map(Some)
}

/// The status word of a reply such as `{'ok', version}`.
pub(crate) fn status(items: &[Value]) -> Result<&str, Error> {
    match items.first() {
        Some(v) => text("a status", v),
        None => Err(Error::Corrupt("the script returned an empty array".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_integers_are_accepted() {
        for ok in ["0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808"] {
            assert!(canonical(ok), "{ok}");
        }
        for bad in ["", "-", "-0", "007", "+5", "1e12", " 1", "1 ", "0x10", "--1"] {
            assert!(!canonical(bad), "{bad}");
        }
        assert_eq!(version(&bulk("18446744073709551615")).ok(), Some(u64::MAX));
        assert!(version(&bulk("18446744073709551616")).is_err());
        assert!(version(&bulk("0")).is_err());
        assert!(version(&bulk("01")).is_err());
        assert!(timestamp("t", &bulk("99999999999999999999999")).is_err());
    }

    #[test]
    fn hmget_replies_decode_without_panics() {
        assert!(
            hmget_fields(Value::Array(vec![Value::Nil; 5]))
                .expect("absent")
                .is_none()
        );
        let f = hmget_fields(Value::Array(vec![
            bulk("3"),
            bulk("d"),
            bulk("-5"),
            bulk("7"),
            Value::Nil,
        ]))
        .expect("valid")
        .expect("present");
        assert_eq!(
            (f.version, f.created_at.as_millis(), f.expires_at.as_millis()),
            (3, -5, 7)
        );
        assert_eq!((f.data.as_ref(), f.owner), (&b"d"[..], None));
        for damaged in [
            vec![bulk("1"), Value::Nil, bulk("0"), bulk("1"), Value::Nil],
            vec![Value::Nil, bulk("d"), Value::Nil, Value::Nil, Value::Nil],
            vec![bulk("1"), bulk("d"), bulk("0"), bulk("1e3"), Value::Nil],
            vec![bulk("1"), bulk("d")],
        ] {
            assert!(matches!(hmget_fields(Value::Array(damaged)), Err(Error::Corrupt(_))));
        }
        assert!(matches!(hmget_fields(Value::Int(1)), Err(Error::Corrupt(_))));
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn rotate_replies_decode_without_panics() {
        let key = StoreKey::from_hex(&"ab".repeat(32)).expect("64 hex digits");
        assert!(matches!(moved_record(Value::Int(1), key), Err(Error::NotFound)));
        assert!(matches!(moved_record(Value::Int(2), key), Err(Error::AlreadyExists)));
        let r = moved_record(Value::Array(vec![bulk("d"), bulk("-5"), bulk("7"), bulk("ann")]), key)
            .expect("a moved record");
        assert_eq!((r.key, r.version, r.owner.as_deref()), (key, 1, Some("ann")));
        assert_eq!((r.created_at.as_millis(), r.expires_at.as_millis()), (-5, 7));
        for no_owner in [Value::Nil, Value::Boolean(false)] {
            let r = moved_record(Value::Array(vec![bulk("d"), bulk("1"), bulk("2"), no_owner]), key)
                .expect("a moved record");
            assert_eq!(r.owner, None);
        }
        for bad in [
            Value::Int(0),
            Value::Nil,
            Value::Array(vec![bulk("d"), bulk("1")]),
            Value::Array(vec![bulk("d"), bulk("1"), bulk("2"), bulk("o"), bulk("extra")]),
            Value::Array(vec![Value::Int(3), bulk("1"), bulk("2")]),
            Value::Array(vec![bulk("d"), bulk("x"), bulk("2")]),
        ] {
            assert!(matches!(moved_record(bad, key), Err(Error::Corrupt(_))));
        }
    }

    #[test]
    fn a_mark_is_a_valid_end_and_no_session_field() {
        let fields = |until: Value, rest: [Value; 5]| {
            let mut v = vec![until];
            v.extend(rest);
            Value::Array(v)
        };
        let none = || [Value::Nil, Value::Nil, Value::Nil, Value::Nil, Value::Nil];
        let until = mark_until(&fields(bulk("42"), none())).expect("a mark");
        assert_eq!(until.map(|t| t.as_millis()), Some(42));
        assert_eq!(mark_until(&fields(Value::Nil, none())).expect("nothing"), None);
        let mut record = none();
        record[0] = bulk("1");
        assert_eq!(mark_until(&fields(bulk("42"), record)).expect("a record"), None);
        assert!(matches!(
            mark_until(&fields(bulk("soon"), none())),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            mark_until(&Value::Array(vec![bulk("42")])),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(mark_until(&Value::Int(3)), Err(Error::Corrupt(_))));
    }

    #[test]
    fn an_owner_listing_skips_what_it_cannot_decode() {
        let hex = "cd".repeat(32);
        let listing = Value::Array(vec![
            Value::Array(vec![bulk(&hex), bulk("1"), bulk("2"), bulk("zz"), bulk("1"), bulk("2")]),
            Value::Array(vec![bulk(&"ef".repeat(32)), bulk("the data field is missing")]),
        ]);
        let (sessions, skipped) = owner_listing(&listing).expect("a listing");
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].key.to_hex(), hex);
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[0].key.map(|k| k.to_hex()), Some("ef".repeat(32)));
        assert_eq!(skipped[0].reason, "the data field is missing");
        assert_eq!(skipped[1].key, None);
        for bad in [
            Value::Int(1),
            Value::Array(vec![Value::Array(vec![])]),
            Value::Array(vec![Value::Array(vec![bulk("a")]), Value::Array(vec![])]),
            Value::Array(vec![Value::Array(vec![]), Value::Array(vec![bulk("a")])]),
        ] {
            assert!(matches!(owner_listing(&bad), Err(Error::Corrupt(_))));
        }
    }

    #[test]
    fn durations_read_as_milliseconds() {
        assert_eq!(duration(Duration::from_millis(300)), "300 ms");
        assert_eq!(duration(Duration::from_secs(1)), "1000 ms");
        assert_eq!(duration(Duration::from_micros(1500)), "1.5ms");
    }
}
