//! Every mapping of a redis-rs or Redis error to [`session_core::Error`],
//! in one place: damaged records ([`Error::Corrupt`]), lost connections and
//! timeouts (retryable [`Error::backend`]), everything else (not retryable),
//! and replies no script of this crate can give.

use std::fmt;
use std::time::Duration;

use redis::{ErrorKind, RedisError, RetryMethod, ServerErrorKind, Value};
use session_core::Error;

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
        let message = format!("store-redis: `{op}` got a reply of an unexpected type: {err}");
        return Error::backend(Failure { message, source: err }, false);
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
    Error::backend(Failure { message, source: err }, transient)
}

/// A reply that no script or command of this crate gives (a foreign script
/// under our SHA-1, a proxy or server bug): a backend error that a retry
/// will not fix. It names the shape, never the contents, which may hold
/// session data.
pub(crate) fn impossible(what: &str, value: &Value) -> Error {
    let shape = match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) => "a status",
        Value::Okay => "OK",
        _ => "another kind of value",
    };
    Error::backend(
        Impossible(format!("store-redis: expected {what} from Redis, got {shape}")),
        false,
    )
}

#[derive(Debug)]
struct Impossible(String);

impl fmt::Display for Impossible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Impossible {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_milliseconds() {
        assert_eq!(duration(Duration::from_millis(300)), "300 ms");
        assert_eq!(duration(Duration::from_secs(1)), "1000 ms");
        assert_eq!(duration(Duration::from_micros(1500)), "1.5ms");
    }

    #[test]
    fn impossible_replies_are_not_retryable() {
        let e = impossible("an integer", &Value::Nil);
        assert!(matches!(e, Error::Backend(_)), "{e:?}");
        assert!(!e.is_retryable(), "{e:?}");
    }
}
