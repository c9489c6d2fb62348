//! Turning what Redis answers into the contract's values and errors.
//!
//! Every script reply is decoded by hand from [`Value`], so an unexpected
//! shape (a foreign script under our SHA-1, a server bug, a damaged record)
//! becomes [`Error::Corrupt`] and never a panic.

use redis::{ErrorKind, RedisError, RetryMethod, ServerErrorKind, Value};
use session_core::{Bytes, Error, OwnedSession, StoreKey, Timestamp};

/// Maps a client or server error. Scripts report damaged records with the
/// error code `CORRUPT`; a `WRONGTYPE` from the server means the same.
pub(crate) fn error(err: RedisError) -> Error {
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
    if transient {
        Error::backend_transient(err)
    } else {
        Error::backend_permanent(err)
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
    Error::Corrupt(format!("expected {what} from the script, got {shape}"))
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

/// A decimal `u64` field, such as the version.
pub(crate) fn version(value: &Value) -> Result<u64, Error> {
    let s = text("a version", value)?;
    s.parse()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| Error::Corrupt("the version is not a positive integer".to_owned()))
}

/// A decimal `i64` field holding milliseconds.
pub(crate) fn timestamp(what: &str, value: &Value) -> Result<Timestamp, Error> {
    let s = text(what, value)?;
    s.parse()
        .map(Timestamp::from_millis)
        .map_err(|_| Error::Corrupt(format!("{what} is not an integer")))
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

pub(crate) fn fields(items: &[Value]) -> Result<Fields, Error> {
    let [version_v, data, created_at, expires_at, owner] = items else {
        return Err(Error::Corrupt(format!(
            "a record has 5 fields, the script returned {}",
            items.len()
        )));
    };
    Ok(Fields {
        version: version(version_v)?,
        data: Bytes::copy_from_slice(bytes("the data", data)?),
        created_at: timestamp("created_at", created_at)?,
        expires_at: timestamp("expires_at", expires_at)?,
        owner: match owner {
            Value::Nil | Value::Boolean(false) => None,
            other => Some(text("the owner", other)?.to_owned()),
        },
    })
}

/// Triples of (hex key, created_at, expires_at).
pub(crate) fn owned_sessions(value: &Value) -> Result<Vec<OwnedSession>, Error> {
    let items = array("a list of sessions", value)?.unwrap_or_default();
    if items.len() % 3 != 0 {
        return Err(Error::Corrupt("the session list is not made of triples".to_owned()));
    }
    items
        .chunks_exact(3)
        .map(|t| {
            Ok(OwnedSession {
                key: store_key(&t[0])?,
                created_at: timestamp("created_at", &t[1])?,
                expires_at: timestamp("expires_at", &t[2])?,
            })
        })
        .collect()
}

/// The status word of a reply such as `{'ok', version}`.
pub(crate) fn status(items: &[Value]) -> Result<&str, Error> {
    match items.first() {
        Some(v) => text("a status", v),
        None => Err(Error::Corrupt("the script returned an empty array".to_owned())),
    }
}
