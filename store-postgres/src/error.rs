//! How PostgreSQL and sqlx failures become the contract's [`Error`].
//!
//! Every failure of the server or the connection, and every reply the
//! store's statements cannot give, is an [`Error::Backend`] (made with
//! [`Error::backend`]) whose source is a [`PostgresError`] naming the
//! operation and the table; [`Error::is_retryable`] tells whether trying
//! again may help. A configuration the builder refuses is an
//! [`Error::Config`]. Bytes that cannot be read back as a record are
//! [`Error::Corrupt`]. Messages never contain a session key, data or a
//! password.

use std::time::Duration;

#[cfg(doc)]
use session_core::Error;

/// A failure of the PostgreSQL server or of the connection to it: the source
/// of every [`Error::Backend`] this crate returns.
///
/// Messages give the server's message and SQLSTATE, never the source file
/// and line of PostgreSQL's C code that sqlx appends to its own rendering.
///
/// ```
/// use session_core::Error;
/// use store_postgres::PostgresError;
///
/// /// Whether `e` is a statement the server canceled at the timeout.
/// fn timed_out(e: &Error) -> bool {
///     let Error::Backend(backend) = e else { return false };
///     std::error::Error::source(backend)
///         .and_then(|s| s.downcast_ref::<PostgresError>())
///         .is_some_and(PostgresError::is_statement_timeout)
/// }
/// # assert!(!timed_out(&Error::NotFound));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The server canceled the statement because it ran longer than the
    /// statement timeout (for example while waiting for a lock).
    #[error(
        "PostgreSQL session store: `{op}` on table {table} exceeded {} and was canceled by the server",
        TimeoutText(*timeout)
    )]
    StatementTimeout {
        /// The store operation.
        op: &'static str,
        /// The table, `schema.table`.
        table: String,
        /// The configured [`statement_timeout`](crate::PostgresStoreBuilder::statement_timeout),
        /// or `None` when the statement was canceled before it had run that
        /// long, or none is configured: the server's own setting did it (a
        /// role or database setting, or a pooler that does not pass the
        /// store's setting on).
        timeout: Option<Duration>,
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },
    /// The statement was canceled by someone else: an administrator
    /// (`pg_cancel_backend`, a cancel request) or the server shutting down.
    /// Nothing of it was applied.
    #[error(
        "PostgreSQL session store: `{op}` on table {table} was canceled (by an administrator, pg_cancel_backend, or a shutdown) after {} ms",
        elapsed.as_millis()
    )]
    Canceled {
        /// The store operation.
        op: &'static str,
        /// The table, `schema.table`.
        table: String,
        /// How long the statement had run, as the store measured it.
        elapsed: Duration,
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed (server error, lost connection...).
    #[error("PostgreSQL session store: `{op}` on table {table} failed: {}", Described(source))]
    Statement {
        /// The store operation.
        op: &'static str,
        /// The table, `schema.table`.
        table: String,
        /// The underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// The rows an operation works on kept changing under it: each attempt
    /// met a concurrent write that committed between its snapshot and its
    /// own write. Nothing was applied; a retry will most likely succeed.
    #[error(
        "PostgreSQL session store: `{op}` on table {table} gave up after {attempts} attempts that each met a concurrent write of the same key"
    )]
    KeptChanging {
        /// The store operation.
        op: &'static str,
        /// The table, `schema.table`.
        table: String,
        /// How many statements were sent.
        attempts: u32,
    },
    /// The server answered in a way the operation's statement cannot
    /// (`expected` says what it must answer): the table is not what the
    /// migrations made, or something between the store and the server
    /// changed the reply. A retry would get the same answer.
    #[error(
        "PostgreSQL session store: `{op}` on table {table} got a reply its statement cannot give: expected {expected}; is the table the one the migrations made?"
    )]
    ImpossibleReply {
        /// The store operation.
        op: &'static str,
        /// The table, `schema.table`.
        table: String,
        /// What the statement always answers.
        expected: &'static str,
    },
    /// Every connection stayed busy for the whole acquire timeout.
    #[error("PostgreSQL session store: no connection became free within {} ms", .0.as_millis())]
    AcquireTimeout(Duration),
    /// Opening a new connection failed.
    #[error("PostgreSQL session store: could not connect: {}", Described(.0))]
    Connect(#[source] sqlx::Error),
    /// Opening a new connection took longer than the acquire timeout.
    #[error("PostgreSQL session store: connecting took longer than {} ms", .0.as_millis())]
    ConnectTimeout(Duration),
    /// A migration failed; it was rolled back.
    #[error(
        "PostgreSQL session store: migration {version} ({description}) of table {table} failed: {}",
        Described(source)
    )]
    Migration {
        /// The migration's version.
        version: i64,
        /// What the migration does.
        description: &'static str,
        /// The table, `schema.table`.
        table: String,
        /// The underlying error.
        #[source]
        source: sqlx::Error,
    },
    /// The store was closed with [`PostgresStore::close`](crate::PostgresStore::close).
    #[error("PostgreSQL session store: the store was closed")]
    Closed,
}

impl PostgresError {
    /// Whether this is a statement canceled by the statement timeout.
    pub fn is_statement_timeout(&self) -> bool {
        matches!(self, PostgresError::StatementTimeout { .. })
    }

    /// Whether this is a statement canceled by someone else (an
    /// administrator, a shutdown), not by the statement timeout.
    pub fn is_canceled(&self) -> bool {
        matches!(self, PostgresError::Canceled { .. })
    }
}

/// "the statement timeout of N ms", or the server's.
struct TimeoutText(Option<Duration>);

impl std::fmt::Display for TimeoutText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(t) => write!(f, "the statement timeout of {} ms", t.as_millis()),
            None => f.write_str("the server's statement timeout"),
        }
    }
}

/// An sqlx error for a message. sqlx renders a server error as its message
/// followed by " at line N", where N is the line of PostgreSQL's C source
/// that raised it (the protocol's `L` field), which means nothing to a
/// reader and looks like a position in the store's SQL: this gives the
/// message and the SQLSTATE instead. Other errors keep sqlx's rendering.
struct Described<'a>(&'a sqlx::Error);

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            sqlx::Error::Database(db) => match db.code() {
                Some(code) => write!(f, "{} (SQLSTATE {code})", db.message()),
                None => f.write_str(db.message()),
            },
            other => write!(f, "{other}"),
        }
    }
}

/// Whether a failed statement may succeed if tried again.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_transient_sqlstate(&code)),
        _ => false,
    }
}

/// SQLSTATEs after which a retry may help: lost connections, serialization
/// failures and deadlocks, exhausted resources, cancellations and timeouts,
/// shutdowns and restarts, lock timeouts, I/O errors.
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("40")
        || code.starts_with("53")
        || code.starts_with("57")
        || code.starts_with("58")
        || code == "55P03"
}

/// Whether a failed statement leaves its connection unusable, so that the
/// pool must not hand it out again. A server-side error (a constraint, a
/// timeout) is followed by ReadyForQuery and leaves the connection clean;
/// anything else (I/O, protocol, a fatal shutdown) does not.
pub(crate) fn breaks_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::Encode(_)
        | sqlx::Error::TypeNotFound { .. } => false,
        _ => true,
    }
}

/// Whether the server canceled the statement (SQLSTATE 57014): by the
/// statement timeout or by someone else; see [`cancel_cause`].
pub(crate) fn is_query_canceled(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("57014"))
}

/// Why the server canceled a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelCause {
    /// The statement timeout.
    Timeout,
    /// Someone else: `pg_cancel_backend`, a cancel request, a shutdown.
    Other,
}

/// Tells a statement timeout from another cancel: PostgreSQL reports both as
/// SQLSTATE 57014, and only its message differs ("canceling statement due
/// to statement timeout" or "... due to user request"). That message is
/// localized by the server's `lc_messages`, which a non-superuser cannot
/// change, so when it is in another language the store judges by time: the
/// server counts the timeout from the statement's start, which is after the
/// store started its own clock, so a statement canceled before the store's
/// clock reached the configured timeout was not canceled by it.
pub(crate) fn cancel_cause(message: &str, elapsed: Duration, configured: Option<Duration>) -> CancelCause {
    if message.contains("statement timeout") {
        CancelCause::Timeout
    } else if message.contains("user request") {
        CancelCause::Other
    } else if configured.is_some_and(|t| elapsed >= t) {
        CancelCause::Timeout
    } else {
        CancelCause::Other
    }
}

/// Whether the server aborted the statement's transaction before anything of
/// it was applied, as a deadlock victim or for a serialization failure: the
/// same statement may then be sent again.
pub(crate) fn is_aborted_without_effect(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// Whether the statement inserted a key that was already in the table: the
/// statement, and everything it did before, was rolled back.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_english_message_says_which_cancel_it_was() {
        let timeout = Some(30_000 * MS);
        let by_timeout = "canceling statement due to statement timeout";
        let by_user = "canceling statement due to user request";
        for elapsed in [11 * MS, 30_000 * MS, 40_000 * MS] {
            assert_eq!(cancel_cause(by_timeout, elapsed, timeout), CancelCause::Timeout);
            assert_eq!(cancel_cause(by_user, elapsed, timeout), CancelCause::Other);
            assert_eq!(cancel_cause(by_timeout, elapsed, None), CancelCause::Timeout);
            assert_eq!(cancel_cause(by_user, elapsed, None), CancelCause::Other);
        }
    }

    #[test]
    fn a_localized_message_is_judged_by_the_time_the_statement_ran() {
        // Messages in another language (German, as a server with
        // lc_messages = 'de_DE.UTF-8' may send them): no English text to go by.
        let by_timeout = "storniere Anfrage wegen Zeitüberschreitung der Anweisung";
        let by_user = "storniere Anfrage wegen Benutzeraufforderung";
        let timeout = Some(30_000 * MS);
        for message in [by_timeout, by_user] {
            assert_eq!(cancel_cause(message, 11 * MS, timeout), CancelCause::Other);
            assert_eq!(cancel_cause(message, 29_999 * MS, timeout), CancelCause::Other);
            assert_eq!(cancel_cause(message, 30_000 * MS, timeout), CancelCause::Timeout);
            assert_eq!(cancel_cause(message, 31_000 * MS, timeout), CancelCause::Timeout);
            // Without a configured timeout, only the English text can say.
            assert_eq!(cancel_cause(message, 31_000 * MS, None), CancelCause::Other);
        }
    }
}
