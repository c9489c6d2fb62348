//! The one error type of the layer.

/// What a [`Session`](crate::Session) call can fail with.
///
/// Messages never hold a session token or a CSRF token.
///
/// ```
/// use session_tower::Error;
///
/// let e = Error::from(session_core::Error::NotFound);
/// assert!(matches!(e, Error::Store(session_core::Error::NotFound)));
/// assert_eq!(Error::NotLoggedIn.to_string(), "this request's session has no owner: nobody is logged in");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store or the manager failed (a backend error, corrupt data, data
    /// over the size limit, a value that does not serialize, an owner the
    /// contract refuses, contention that outlasted the retries...).
    #[error(transparent)]
    Store(#[from] session_core::Error),
    /// The session ended in another request while this one ran (a logout, a
    /// rotation by a concurrent login, an expiry): nothing was written and no
    /// cookie will bring it back. Reload or redirect.
    #[error("the session ended in another request (logout, login elsewhere, or expiry); nothing was written")]
    SessionGone,
    /// The call needs a logged-in session (one with an owner).
    #[error("this request's session has no owner: nobody is logged in")]
    NotLoggedIn,
    /// The request's response has already been finished by the layer: the
    /// session can no longer change in it (a handle kept by a spawned task).
    #[error("the response has left: this request's session can no longer change")]
    RequestFinished,
    /// A submitted CSRF token does not match this session's
    /// ([`Session::verify_csrf`](crate::Session::verify_csrf)).
    #[error("CSRF token {0}")]
    Csrf(CsrfFailure),
}

/// Why a CSRF check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfFailure {
    /// The request carries no session token, so it can have no CSRF token.
    NoSession,
    /// The request carries no CSRF token (header or form field).
    Missing,
    /// The CSRF token does not match the session's.
    Wrong,
}

impl std::fmt::Display for CsrfFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CsrfFailure::NoSession => "refused: the request has no session, so it has no CSRF token",
            CsrfFailure::Missing => "missing",
            CsrfFailure::Wrong => "wrong",
        })
    }
}
