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

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::Request;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn a_route_without_the_layer_gets_a_500_that_says_so() {
        let app: Router = Router::new().route("/", get(|_s: Session| async { "unreachable" }));
        let res = app
            .oneshot(Request::builder().uri("/").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(res.into_body(), 1024).await.expect("body");
        assert!(String::from_utf8_lossy(&body).contains("without SessionLayer"));
    }

    #[test]
    fn errors_map_to_clear_statuses() {
        let status = |e: Error| e.into_response().status();
        assert_eq!(status(Error::NotLoggedIn), StatusCode::UNAUTHORIZED);
        assert_eq!(status(Error::SessionGone), StatusCode::CONFLICT);
        assert_eq!(status(Error::Csrf(CsrfFailure::Wrong)), StatusCode::FORBIDDEN);
        assert_eq!(
            status(Error::Store(session_core::Error::Contended { attempts: 8 })),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(Error::Store(session_core::Error::Corrupt("x".into()))),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
