//! The axum extractor (feature `axum`).

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::{CsrfFailure, Error, Session};

/// The extractor's rejection: the route is not under [`SessionLayer`](crate::SessionLayer).
/// A `500` saying so.
#[derive(Debug, Clone, Copy)]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "session_tower::Session extracted on a route without SessionLayer: add the layer to the router",
        )
            .into_response()
    }
}

/// `Session` as an axum extractor:
///
/// ```
/// use axum::{Router, routing::get};
/// use session_tower::Session;
///
/// async fn whoami(session: Session) -> Result<String, session_tower::Error> {
///     Ok(session.owner().await?.unwrap_or_else(|| "nobody".into()))
/// }
///
/// let app: Router = Router::new().route("/whoami", get(whoami));
/// # let _ = app;
/// ```
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Session>().cloned().ok_or(MissingSessionLayer)
    }
}

/// A handler may return `Result<_, session_tower::Error>`: `401` for
/// [`Error::NotLoggedIn`], `403` for [`Error::Csrf`], `409` for
/// [`Error::SessionGone`], `503` for contention or a transient store
/// failure, `500` otherwise; bodies are short and generic (store errors
/// are logged, never shown).
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Error::NotLoggedIn => (StatusCode::UNAUTHORIZED, "not logged in"),
            Error::Csrf(CsrfFailure::NoSession | CsrfFailure::Missing) => (StatusCode::FORBIDDEN, "CSRF token missing"),
            Error::Csrf(_) => (StatusCode::FORBIDDEN, "CSRF token wrong"),
            Error::SessionGone => (
                StatusCode::CONFLICT,
                "your session changed in another request (logged out or in elsewhere): reload",
            ),
            Error::Store(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "session store busy or unreachable");
                (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable, try again")
            }
            Error::Store(e) => {
                tracing::error!(error = %e, "session store error");
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Error::RequestFinished => (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        };
        (status, body).into_response()
    }
}
