//! [`SessionLayer`] and its [`SessionService`]: a handle per request in, a
//! finished session (saved, cookie set) out, before the response leaves.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use session_core::{SessionManager, SessionStore};
use tower::{Layer, Service};

use crate::Session;
use crate::config::{SessionConfig, TokenSource};
use crate::locks::KeyLocks;
use crate::session::{Finish, Shared};
use crate::token::{self, Outgoing};

/// The tower layer: gives every request a lazy [`Session`] and finishes it
/// (saves, sets the cookie) before the response is returned.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{Config, SessionManager};
/// use session_tower::{SessionConfig, SessionLayer};
/// use store_memory::MemoryStore;
///
/// # fn main() -> Result<(), session_core::Error> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default())?;
/// let layer = SessionLayer::new(manager, SessionConfig::default())?;
/// // axum: Router::new().route(...).layer(CsrfLayer::new()).layer(layer)
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// A layer over `manager` (any store: the handle type is the same for
    /// all, so an application may pick its backend at run time).
    ///
    /// Errors: [`session_core::Error::Config`] if `config` is inconsistent
    /// (see [`SessionConfig::validate`]).
    pub fn new<S: SessionStore + ?Sized>(
        manager: SessionManager<S>,
        config: SessionConfig,
    ) -> Result<Self, session_core::Error> {
        config.validate()?;
        Ok(Self {
            shared: Arc::new(Shared {
                backend: Arc::new(manager),
                config,
                locks: Arc::new(KeyLocks::default()),
            }),
        })
    }
}

impl<I> Layer<I> for SessionLayer {
    type Service = SessionService<I>;

    fn layer(&self, inner: I) -> SessionService<I> {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`SessionLayer`].
#[derive(Clone)]
pub struct SessionService<I> {
    inner: I,
    shared: Arc<Shared>,
}

impl<I: std::fmt::Debug> std::fmt::Debug for SessionService<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<I, ReqB, ResB> Service<Request<ReqB>> for SessionService<I>
where
    I: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    I::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: From<Bytes> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, I::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), I::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        // Reading the token is header parsing only: no store call.
        let token = token::read(&self.shared.config, req.headers());
        let session = Session::new(Arc::clone(&self.shared), token);
        req.extensions_mut().insert(session.clone());
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let response = inner.call(req).await?;
            // The handler is done but nothing has been sent yet: save, then
            // decide the headers, then hand the response on.
            let finish = session.finish(response.status().is_server_error()).await;
            Ok(apply(&shared.config, response, finish))
        })
    }
}

fn apply<B: From<Bytes>>(config: &SessionConfig, response: Response<B>, finish: Finish) -> Response<B> {
    let mut response = match &finish.error {
        None => response,
        Some(error) => {
            // Logged without a token: errors never hold one.
            tracing::error!(%error, "session store failed at the end of the request");
            let (parts, body) = (config.error_response)(error).into_parts();
            Response::from_parts(parts, B::from(body))
        }
    };
    let headers = response.headers_mut();
    let sent = match &finish.outgoing {
        Some(out) => token::write(config, headers, out, finish.now),
        None => false,
    };
    if sent {
        // A response carrying a credential must not be stored by any cache;
        // no-store overrides whatever else the handler allowed.
        let already = headers
            .get_all(CACHE_CONTROL)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("no-store")));
        if !already {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    if finish.logged_out && config.clear_site_data {
        headers.insert(
            HeaderName::from_static("clear-site-data"),
            HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""),
        );
    }
    if finish.accessed || matches!(finish.outgoing, Some(Outgoing::Issue { .. })) {
        let vary = match &config.source {
            TokenSource::Cookie => "cookie",
            TokenSource::Header { name, .. } => name.as_str(),
        };
        add_vary(headers, vary);
    }
    response
}

/// Appends `name` to `Vary` unless it is there already (or `*` is).
fn add_vary(headers: &mut HeaderMap, name: &str) {
    let present = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|n| n == "*" || n.eq_ignore_ascii_case(name))
        })
    });
    if !present && let Ok(v) = HeaderValue::from_str(name) {
        headers.append(VARY, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_appended_once() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        add_vary(&mut h, "cookie");
        add_vary(&mut h, "cookie");
        let all: Vec<_> = h.get_all(VARY).iter().map(|v| v.to_str().unwrap_or("")).collect();
        assert_eq!(all, ["Accept-Encoding", "cookie"]);
        let mut star = HeaderMap::new();
        star.insert(VARY, HeaderValue::from_static("*"));
        add_vary(&mut star, "cookie");
        assert_eq!(star.get_all(VARY).iter().count(), 1);
    }
}
