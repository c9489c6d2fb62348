//! CSRF protection: a synchronizer token per session, checked on every
//! unsafe request by [`CsrfLayer`].
//!
//! # The token
//!
//! `base64url(SHA-256("session-tower csrf v1" ‖ session token))`: 256 bits
//! that only someone who knows the session token (or was shown a page
//! rendered for it) can produce. It is bound to the session id rather than
//! stored in the session, which gives the synchronizer pattern's guarantee
//! with none of its costs:
//!
//! - checking it needs **no store call** (the session may not even be
//!   loaded by the handler);
//! - it needs **no write** to create, so two tabs asking for it at once
//!   cannot overwrite each other's token (a stored random token can be
//!   created twice by overlapping first requests, and one tab's forms then
//!   fail);
//! - it **rotates with the id**, so [`Session::login`](crate::Session::login)
//!   and [`Session::rotate`](crate::Session::rotate) give a new one with no
//!   extra store call;
//! - it reveals nothing: the hash cannot be inverted to the session token,
//!   and the domain separation keeps it distinct from the
//!   [`StoreKey`](session_core::StoreKey) (plain SHA-256 of the id's bytes),
//!   which a "your devices" page shows.
//!
//! A request carrying no well-formed session token has no CSRF token and is
//! refused. One carrying a token whose session expired is checked against
//! that token: a form rendered before the expiry still posts (a login form
//! left open for hours works), and only a page that was given that token
//! could have the matching CSRF token.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Limited};
use session_core::SessionId;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tower::{Layer, Service};

use crate::{CsrfFailure, Session};

pub(crate) fn token_for(id: &SessionId) -> String {
    let mut h = Sha256::new();
    h.update(b"session-tower csrf v1\n");
    h.update(id.expose().as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

pub(crate) fn matches(expected: &str, submitted: &str) -> bool {
    // The length is not secret (every token has 43 characters).
    expected.len() == submitted.len() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
}

type Exempt = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

/// Refuses unsafe requests (any method but GET, HEAD, OPTIONS and TRACE)
/// that do not carry the session's CSRF token, with a `403` whose body says
/// why, before the handler runs.
///
/// The token is taken from a header (default `x-csrf-token`) or, for
/// `application/x-www-form-urlencoded` bodies, from a form field (default
/// `csrf`); the body is read up to a limit (default 64 KiB; larger: `413`)
/// and handed on to the handler unchanged. Comparison is in constant time.
/// Place it inside [`SessionLayer`](crate::SessionLayer) (it reads the
/// request's [`Session`]); with a header [`TokenSource`](crate::TokenSource)
/// it lets everything through, since browsers do not send such headers by
/// themselves. See the [module docs](self) for the token.
///
/// ```
/// use session_tower::CsrfLayer;
///
/// // Webhooks sign their own requests: exempt them.
/// let csrf = CsrfLayer::new()
///     .header_name(http::HeaderName::from_static("x-csrf-token"))
///     .form_field("csrf")
///     .exempt(|req| req.uri.path().starts_with("/webhooks/"));
/// # let _ = csrf;
/// ```
#[derive(Clone)]
pub struct CsrfLayer {
    header: HeaderName,
    field: String,
    max_form_bytes: usize,
    exempt: Option<Exempt>,
}

impl std::fmt::Debug for CsrfLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfLayer")
            .field("header", &self.header)
            .field("field", &self.field)
            .field("max_form_bytes", &self.max_form_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for CsrfLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CsrfLayer {
    /// Header `x-csrf-token`, form field `csrf`, 64 KiB forms, no exemptions.
    pub fn new() -> Self {
        Self {
            header: HeaderName::from_static("x-csrf-token"),
            field: "csrf".to_owned(),
            max_form_bytes: 64 * 1024,
            exempt: None,
        }
    }

    /// The request header that may carry the token.
    pub fn header_name(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// The form field that may carry the token.
    pub fn form_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// The largest form body read to find the field; larger ones get `413`.
    pub fn max_form_bytes(mut self, limit: usize) -> Self {
        self.max_form_bytes = limit;
        self
    }

    /// Requests for which `exempt` is true are not checked.
    pub fn exempt<F>(mut self, exempt: F) -> Self
    where
        F: Fn(&http::request::Parts) -> bool + Send + Sync + 'static,
    {
        self.exempt = Some(Arc::new(exempt));
        self
    }
}

impl<I> Layer<I> for CsrfLayer {
    type Service = CsrfService<I>;

    fn layer(&self, inner: I) -> CsrfService<I> {
        CsrfService {
            inner,
            config: Arc::new(self.clone()),
        }
    }
}

/// The service of [`CsrfLayer`].
#[derive(Clone, Debug)]
pub struct CsrfService<I> {
    inner: I,
    config: Arc<CsrfLayer>,
}

fn refuse<B: From<Bytes>>(status: StatusCode, message: impl Into<Bytes>) -> Response<B> {
    let mut res = Response::new(B::from(message.into()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

fn is_form(req: &http::request::Parts) -> bool {
    req.headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

impl<I, ReqB, ResB> Service<Request<ReqB>> for CsrfService<I>
where
    I: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    ReqB: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    ReqB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResB: From<Bytes> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, I::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), I::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            if matches!(
                *req.method(),
                Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
            ) {
                return inner.call(req).await;
            }
            let (parts, body) = req.into_parts();
            if config.exempt.as_ref().is_some_and(|exempt| exempt(&parts)) {
                return inner.call(Request::from_parts(parts, body)).await;
            }
            let Some(session) = parts.extensions.get::<Session>().cloned() else {
                tracing::error!("CsrfLayer runs outside SessionLayer: refusing the request");
                return Ok(refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "CSRF check misconfigured: CsrfLayer must be inside SessionLayer",
                ));
            };
            if !session.uses_cookie() {
                return inner.call(Request::from_parts(parts, body)).await;
            }
            let Some(expected) = session.expected_csrf() else {
                return Ok(refuse(
                    StatusCode::FORBIDDEN,
                    "CSRF check failed: the request has no session, so it cannot carry a CSRF token; load the page with the form first",
                ));
            };
            let verdict = |submitted: Option<&str>| match submitted {
                None => Err(CsrfFailure::Missing),
                Some(s) if matches(&expected, s) => Ok(()),
                Some(_) => Err(CsrfFailure::Wrong),
            };
            let from_header = parts.headers.get(&config.header).map(|v| v.to_str().unwrap_or(""));
            let (outcome, body) = if from_header.is_some() {
                (verdict(from_header), body)
            } else if is_form(&parts) {
                let bytes = match Limited::new(body, config.max_form_bytes).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(e) => {
                        return Ok(if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                            refuse(StatusCode::PAYLOAD_TOO_LARGE, "form body too large for the CSRF check")
                        } else {
                            refuse(StatusCode::BAD_REQUEST, "could not read the form body")
                        });
                    }
                };
                let field = form_urlencoded::parse(&bytes)
                    .find(|(k, _)| *k == config.field.as_str())
                    .map(|(_, v)| v.into_owned());
                (verdict(field.as_deref()), ReqB::from(bytes))
            } else {
                (Err(CsrfFailure::Missing), body)
            };
            match outcome {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(CsrfFailure::Wrong) => Ok(refuse(
                    StatusCode::FORBIDDEN,
                    "CSRF check failed: the CSRF token is wrong (reload the page and try again)",
                )),
                Err(_) => Ok(refuse(
                    StatusCode::FORBIDDEN,
                    format!(
                        "CSRF check failed: the CSRF token is missing (send it in the {} header or the {} form field)",
                        config.header, config.field
                    ),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_bound_to_the_id_and_differs_from_the_store_key() {
        let a = SessionId::from_bytes([1; 32]);
        let b = SessionId::from_bytes([2; 32]);
        assert_eq!(token_for(&a), token_for(&a));
        assert_ne!(token_for(&a), token_for(&b));
        assert_eq!(token_for(&a).len(), 43);
        assert_ne!(token_for(&a), a.expose());
        assert!(!a.store_key().to_hex().contains(&token_for(&a)));
        assert!(matches(&token_for(&a), &token_for(&a)));
        assert!(!matches(&token_for(&a), &token_for(&b)));
        assert!(!matches(&token_for(&a), ""));
    }
}
