//! Turning what the scripts answer into the contract's values. Every reply
//! is decoded by hand from [`Value`]: a shape no script of this crate gives
//! becomes a non-retryable backend error ([`error::impossible`]), a damaged
//! record [`Error::Corrupt`], never a panic.

use redis::Value;
use session_core::{Error, OwnedSession, Record, StoreKey};

use crate::error::impossible;
use crate::record::{self, HEADER_LEN};

/// An integer reply.
pub(crate) fn int(what: &str, value: &Value) -> Result<i64, Error> {
    match value {
        Value::Int(n) => Ok(*n),
        other => Err(impossible(what, other)),
    }
}

/// A 0/1 reply.
pub(crate) fn flag(what: &str, value: &Value) -> Result<bool, Error> {
    match value {
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        other => Err(impossible(what, other)),
    }
}

fn version(value: &Value) -> Result<u64, Error> {
    match value {
        Value::BulkString(b) => <[u8; 8]>::try_from(b.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| impossible("an 8-byte version", value)),
        other => Err(impossible("an 8-byte version", other)),
    }
}

/// The reply of the `update`/`overwrite` script: `{1, version}`,
/// `{2, current}` or 0.
pub(crate) fn written(value: &Value, compare: bool) -> Result<u64, Error> {
    match value {
        Value::Int(0) => Err(Error::NotFound),
        Value::Array(items) => match items.as_slice() {
            [Value::Int(1), v] => version(v),
            [Value::Int(2), v] if compare => Err(Error::Conflict { current: version(v)? }),
            _ => Err(impossible("a write result", value)),
        },
        other => Err(impossible("a write result", other)),
    }
}

/// The reply of `rotate`: 1 (the old key is not live), 2 (the new key is
/// live), or the new record as stored.
pub(crate) fn moved_record(value: Value, key: StoreKey) -> Result<Record, Error> {
    match value {
        Value::Int(1) => Err(Error::NotFound),
        Value::Int(2) => Err(Error::AlreadyExists),
        Value::BulkString(bytes) => {
            record::session(key, bytes)?.ok_or_else(|| Error::Corrupt("rotate returned no session".to_owned()))
        }
        other => Err(impossible("a moved record", &other)),
    }
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

fn text<'a>(what: &str, value: &'a Value) -> Result<&'a str, Error> {
    match value {
        Value::BulkString(b) => std::str::from_utf8(b).map_err(|_| impossible(what, value)),
        other => Err(impossible(what, other)),
    }
}

fn array<'a>(what: &str, value: &'a Value) -> Result<&'a [Value], Error> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(impossible(what, other)),
    }
}

/// The reply of `list_by_owner`: `{[hex, header, ...], [hex, reason, ...]}`,
/// the live sessions and the records skipped as damaged. An entry that does
/// not decode (an index entry that is not a store key) is skipped too: one
/// bad entry must not hide the owner's other sessions.
pub(crate) fn owner_listing(value: &Value) -> Result<(Vec<OwnedSession>, Vec<Skipped>), Error> {
    let [listed, damaged] = array("an owner listing", value)? else {
        return Err(impossible("an owner listing of two arrays", value));
    };
    let listed = array("the listed sessions", listed)?;
    let damaged = array("the skipped sessions", damaged)?;
    if !listed.len().is_multiple_of(2) || !damaged.len().is_multiple_of(2) {
        return Err(impossible("an owner listing of pairs", value));
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
    let mut sessions = Vec::with_capacity(listed.len() / 2);
    for p in listed.chunks_exact(2) {
        let header = match &p[1] {
            Value::BulkString(b) if b.len() == HEADER_LEN => record::header(b, false),
            other => Err(impossible("a record header", other)),
        };
        match (entry_key(&p[0]), header) {
            (Some(key), Ok(h)) => sessions.push(OwnedSession {
                key,
                created_at: h.created_at,
                expires_at: h.expires_at,
            }),
            (key, Err(e)) => skipped.push(Skipped {
                key,
                reason: e.to_string(),
            }),
            (None, Ok(_)) => skipped.push(Skipped {
                key: None,
                reason: "the owner index holds a malformed store key".to_owned(),
            }),
        }
    }
    Ok((sessions, skipped))
}

/// On a cluster, an owner's function that met undeclared session keys
/// answers `{'again', {hex, ...}}`: the store keys to declare. `None` for
/// any other reply.
pub(crate) fn again(value: &Value) -> Result<Option<Vec<StoreKey>>, Error> {
    let Value::Array(items) = value else { return Ok(None) };
    match items.as_slice() {
        [Value::BulkString(tag), hexes] if tag.as_slice() == b"again" => {
            let hexes = array("the undeclared keys", hexes)?;
            let mut keys = Vec::with_capacity(hexes.len());
            for h in hexes {
                let key = text("an undeclared key", h)
                    .ok()
                    .and_then(|s| StoreKey::from_hex(s).ok())
                    .ok_or_else(|| impossible("a hex store key", h))?;
                keys.push(key);
            }
            Ok(Some(keys))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Timestamp;

    fn bulk(b: &[u8]) -> Value {
        Value::BulkString(b.to_vec())
    }

    #[test]
    fn write_replies_decode_without_panics() {
        let v = bulk(&7u64.to_be_bytes());
        assert_eq!(
            written(&Value::Array(vec![Value::Int(1), v.clone()]), true).ok(),
            Some(7)
        );
        assert!(matches!(
            written(&Value::Array(vec![Value::Int(2), v.clone()]), true),
            Err(Error::Conflict { current: 7 })
        ));
        assert!(matches!(written(&Value::Int(0), false), Err(Error::NotFound)));
        for bad in [
            Value::Array(vec![Value::Int(2), v]),
            Value::Array(vec![Value::Int(1), bulk(b"7")]),
            Value::Array(vec![]),
            Value::Nil,
        ] {
            assert!(matches!(written(&bad, false), Err(Error::Backend(_))), "{bad:?}");
        }
    }

    #[test]
    fn rotate_replies_decode_without_panics() {
        let key = StoreKey::from_bytes([1; 32]);
        assert!(matches!(moved_record(Value::Int(1), key), Err(Error::NotFound)));
        assert!(matches!(moved_record(Value::Int(2), key), Err(Error::AlreadyExists)));
        let t = Timestamp::from_millis;
        let stored = record::encode(1, t(-5), t(7), &[0; 16], Some("ann"), b"d").expect("encodes");
        let r = moved_record(Value::BulkString(stored), key).expect("a moved record");
        assert_eq!(
            (r.version, r.owner.as_deref(), r.data.as_ref()),
            (1, Some("ann"), &b"d"[..])
        );
        assert!(matches!(moved_record(bulk(b"S"), key), Err(Error::Corrupt(_))));
        assert!(matches!(moved_record(Value::Int(3), key), Err(Error::Backend(_))));
    }

    #[test]
    fn an_owner_listing_skips_what_it_cannot_decode() {
        let t = Timestamp::from_millis;
        let header = record::encode(1, t(1), t(2), &[0; 16], None, b"").expect("encodes");
        let hex = "cd".repeat(32);
        let listing = Value::Array(vec![
            Value::Array(vec![bulk(hex.as_bytes()), bulk(&header), bulk(b"zz"), bulk(&header)]),
            Value::Array(vec![bulk("ef".repeat(32).as_bytes()), bulk(b"the version is 0")]),
        ]);
        let (sessions, skipped) = owner_listing(&listing).expect("a listing");
        assert_eq!(sessions.len(), 1);
        assert_eq!((sessions[0].key.to_hex(), sessions[0].expires_at), (hex, t(2)));
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[0].reason, "the version is 0");
        assert_eq!(skipped[1].key, None);
        for bad in [
            Value::Int(1),
            Value::Array(vec![Value::Array(vec![])]),
            Value::Array(vec![Value::Array(vec![bulk(b"a")]), Value::Array(vec![])]),
        ] {
            assert!(owner_listing(&bad).is_err());
        }
    }
}
