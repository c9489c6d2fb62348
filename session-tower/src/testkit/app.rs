//! The application the kit drives: an axum router of small handlers under
//! [`SessionLayer`] and [`CsrfLayer`], on a counting store with the test's
//! manual clock, and a client that speaks to it in-process.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use conformance::{Ctx, HOUR, StoreFactory};
use cookie::Cookie;
use session_core::{Config, SessionId, SessionManager, StoreKey};
use tokio::sync::Barrier;
use tower::ServiceExt as _;

use super::counting::CountingStore;
use crate::{CsrfLayer, Session, SessionConfig, SessionLayer};

/// The manager settings of the kit: hours, so no server TTL fires during a
/// test; renewal when less than an hour of the two idle hours is left.
pub fn manager_config() -> Config {
    Config {
        idle_timeout: 2 * HOUR,
        absolute_timeout: 5 * HOUR,
        renewal_threshold: HOUR,
        max_data_bytes: 64 * 1024,
        max_update_attempts: 64,
    }
}

/// Meeting points inside the gated handlers, so a test can hold a request
/// between its load and its write while other requests run.
pub struct Gates {
    /// Every gated request and the test meet here once each request has
    /// loaded its session.
    pub loaded: Barrier,
    /// ... and here before the requests go on to write and finish.
    pub release: Barrier,
}

/// A running kit application.
pub struct Harness<F: StoreFactory> {
    /// The conformance context: the backend's fresh store and the clock.
    pub ctx: Arc<Ctx<F>>,
    /// The store as the layer sees it, counting calls.
    pub store: Arc<CountingStore<F::Store>>,
    /// A manager on the same store and clock, for arranging and checking
    /// state behind the layer's back.
    pub manager: SessionManager<CountingStore<F::Store>>,
    /// The gates of the gated routes.
    pub gates: Arc<Gates>,
    router: Router,
}

/// One response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// Every `Set-Cookie` for the session cookie `name`, parsed.
    pub fn cookies(&self, name: &str) -> Vec<Cookie<'static>> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| Cookie::parse(v.to_owned()).ok())
            .filter(|c| c.name() == name)
            .collect()
    }

    /// The one `Set-Cookie` for `name`, if any (panics if there are several).
    pub fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        let mut all = self.cookies(name);
        assert!(all.len() <= 1, "several Set-Cookie for {name}: {all:?}");
        all.pop()
    }

    /// The token set by this response under the default cookie name.
    pub fn token(&self) -> Option<String> {
        self.cookie("__Host-id")
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A header's values joined with `, `.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A request to send: method, path, the session cookie (default name) and
/// extra headers.
pub struct TestRequest {
    request: Request<Body>,
}

impl TestRequest {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    fn new(method: &str, path: &str) -> Self {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("a kit request for {path} is valid: {e}"));
        Self { request }
    }

    /// Sends `__Host-id=<token>`.
    pub fn token(self, token: &str) -> Self {
        self.cookie_header(&format!("__Host-id={token}"))
    }

    /// Sends `token` if some.
    pub fn maybe_token(self, token: Option<&str>) -> Self {
        match token {
            Some(t) => self.token(t),
            None => self,
        }
    }

    /// Adds a raw `Cookie` header.
    pub fn cookie_header(self, value: &str) -> Self {
        self.header("cookie", value)
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        let value = HeaderValue::from_str(value).unwrap_or_else(|e| panic!("header {name} is valid: {e}"));
        self.request.headers_mut().append(name, value);
        self
    }

    /// A form body, with its content type.
    pub fn form(mut self, body: &str) -> Self {
        *self.request.body_mut() = Body::from(body.to_owned());
        self.header("content-type", "application/x-www-form-urlencoded")
    }
}

impl<F: StoreFactory> Harness<F> {
    /// The kit app with the default [`SessionConfig`], gates for two
    /// parties (one request and the test).
    pub fn new(ctx: Arc<Ctx<F>>) -> Self {
        Self::with(ctx, SessionConfig::default(), 2)
    }

    /// The kit app with `config`, and gates for `parties` (requests + 1).
    pub fn with(ctx: Arc<Ctx<F>>, config: SessionConfig, parties: usize) -> Self {
        let store = Arc::new(CountingStore::new(Arc::clone(&ctx.store)));
        let manager = match SessionManager::with_clock(Arc::clone(&store), manager_config(), ctx.clock.clone()) {
            Ok(m) => m,
            Err(e) => panic!("the kit's manager configuration is valid: {e}"),
        };
        let layer = match SessionLayer::new(manager.clone(), config) {
            Ok(l) => l,
            Err(e) => panic!("the kit's layer configuration is valid: {e}"),
        };
        let gates = Arc::new(Gates {
            loaded: Barrier::new(parties),
            release: Barrier::new(parties),
        });
        let router = routes()
            .with_state(Arc::clone(&gates))
            .layer(CsrfLayer::new().exempt(|req| !req.uri.path().starts_with("/protected/")))
            .layer(layer);
        Self {
            ctx,
            store,
            manager,
            gates,
            router,
        }
    }

    /// Sends a request through the whole stack, in-process.
    pub async fn send(&self, send: TestRequest) -> Reply {
        let response = match self.router.clone().oneshot(send.request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, 1 << 20).await {
            Ok(b) => b,
            Err(e) => panic!("reading a kit response body failed: {e}"),
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Sends `send` on its own task, so several requests overlap.
    pub fn spawn(self: &Arc<Self>, send: TestRequest) -> tokio::task::JoinHandle<Reply> {
        let me = Arc::clone(self);
        tokio::spawn(async move { me.send(send).await })
    }

    /// A new anonymous session through the layer (`GET /csrf`); returns its
    /// token and CSRF token.
    pub async fn anonymous(&self) -> (String, String) {
        let reply = self.send(TestRequest::get("/csrf")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let token = reply.token().expect("GET /csrf starts a session and sets its cookie");
        (token, reply.body)
    }

    /// Logs `user` in from a new anonymous session; returns the token.
    pub async fn logged_in(&self, user: &str) -> String {
        let (token, _) = self.anonymous().await;
        let reply = self
            .send(TestRequest::post(&format!("/login/{user}")).token(&token))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.token().expect("a login sets the new cookie")
    }

    /// The stored session of `token`, through the manager (not counted
    /// apart: reset the counts after arranging).
    pub async fn stored(&self, token: &str) -> Option<session_core::Session> {
        let id = SessionId::parse(token).unwrap_or_else(|e| panic!("a token from the layer parses: {e}"));
        match self.manager.load(&id).await {
            Ok(s) => s,
            Err(e) => panic!("{}: load failed: {e}", self.ctx.factory.name()),
        }
    }

    /// Moves the test's clock.
    pub fn advance(&self, by: Duration) {
        self.ctx.clock.advance(by);
    }
}

fn fail<E: std::fmt::Display>(e: E) -> Response {
    (StatusCode::OK, format!("error: {e}")).into_response()
}

/// A handler's outcome as text: the value, `gone` for
/// [`Error::SessionGone`](crate::Error::SessionGone), `error: ...` otherwise
/// (with status 200, so a rule can tell a handler's error from the layer's
/// 500).
fn answer<T: ToString>(result: Result<T, crate::Error>) -> Response {
    match result {
        Ok(v) => v.to_string().into_response(),
        Err(crate::Error::SessionGone) => "gone".into_response(),
        Err(e) => fail(e),
    }
}

fn or_none(value: Option<String>) -> String {
    value.unwrap_or_else(|| "none".into())
}

async fn increment(s: &Session) -> Result<u64, crate::Error> {
    s.update(|data| {
        let n = data.get::<u64>("counter")?.unwrap_or(0) + 1;
        data.insert("counter", &n)?;
        Ok(n)
    })
    .await
}

type KeyValue = Path<(String, String)>;

fn routes() -> Router<Arc<Gates>> {
    Router::new()
        .route("/untouched", get(|| async { "untouched" }))
        .route(
            "/read",
            get(|s: Session| async move { answer(s.get::<String>("k").await.map(or_none)) }),
        )
        .route(
            "/write/{key}/{value}",
            post(|s: Session, Path((k, v)): KeyValue| async move { answer(s.insert(&k, &v).await.map(|()| "ok")) }),
        )
        .route(
            "/protected/write/{key}/{value}",
            post(|s: Session, Path((k, v)): KeyValue, body: String| async move {
                answer(s.insert(&k, &v).await.map(|()| body))
            }),
        )
        .route(
            "/write-then-500/{key}/{value}",
            post(|s: Session, Path((k, v)): KeyValue| async move {
                match s.insert(&k, &v).await {
                    Ok(()) => (StatusCode::INTERNAL_SERVER_ERROR, "handler failed").into_response(),
                    Err(e) => fail(e),
                }
            }),
        )
        .route(
            "/save/{key}/{value}",
            post(|s: Session, Path((k, v)): KeyValue| async move {
                match s.insert(&k, &v).await {
                    Ok(()) => answer(s.save().await.map(|()| "saved")),
                    Err(e) => fail(e),
                }
            }),
        )
        .route("/incr", post(|s: Session| async move { answer(increment(&s).await) }))
        .route("/csrf", get(|s: Session| async move { answer(s.csrf_token().await) }))
        .route(
            "/login/{user}",
            post(|s: Session, Path(user): Path<String>| async move { answer(s.login(user).await.map(|()| "ok")) }),
        )
        .route("/logout", post(|s: Session| async move { answer(s.logout().await) }))
        .route(
            "/logout-then-500",
            post(|s: Session| async move {
                match s.logout().await {
                    Ok(_) => (StatusCode::INTERNAL_SERVER_ERROR, "handler failed").into_response(),
                    Err(e) => fail(e),
                }
            }),
        )
        .route(
            "/owner",
            get(|s: Session| async move { answer(s.owner().await.map(or_none)) }),
        )
        .route(
            "/devices",
            get(|s: Session| async move {
                answer(s.devices().await.map(|list| {
                    list.iter()
                        .map(|d| format!("{} {}\n", d.key, if d.current { "current" } else { "other" }))
                        .collect::<String>()
                }))
            }),
        )
        .route(
            "/devices/end/{key}",
            post(|s: Session, Path(key): Path<String>| async move {
                match key.parse::<StoreKey>() {
                    Ok(key) => answer(s.end_device(&key).await),
                    Err(_) => (StatusCode::BAD_REQUEST, "bad key").into_response(),
                }
            }),
        )
        .route(
            "/devices/end-others",
            post(|s: Session| async move { answer(s.end_other_devices().await) }),
        )
        .route(
            "/devices/end-all",
            post(|s: Session| async move { answer(s.end_all_devices().await) }),
        )
        .route(
            "/gated/read",
            post(|State(gates): State<Arc<Gates>>, s: Session| async move {
                let v = s.get::<String>("k").await;
                gates.loaded.wait().await;
                gates.release.wait().await;
                answer(v.map(or_none))
            }),
        )
        .route(
            "/gated/write/{key}/{value}",
            post(
                |State(gates): State<Arc<Gates>>, s: Session, Path((k, v)): KeyValue| async move {
                    let loaded = s.get::<String>("k").await;
                    gates.loaded.wait().await;
                    gates.release.wait().await;
                    match loaded {
                        Ok(_) => answer(s.insert(&k, &v).await.map(|()| "ok")),
                        Err(e) => fail(e),
                    }
                },
            ),
        )
        .route(
            "/cached/write",
            post(|s: Session| async move {
                if let Err(e) = s.insert("k", "v").await {
                    return fail(e);
                }
                let headers = [
                    (header::VARY, "Accept-Encoding"),
                    (header::CACHE_CONTROL, "public, max-age=60"),
                ];
                (headers, "ok").into_response()
            }),
        )
        .route(
            "/cached/read",
            get(|s: Session| async move {
                match s.get::<String>("k").await {
                    Ok(_) => ([(header::CACHE_CONTROL, "private, max-age=60")], "ok").into_response(),
                    Err(e) => fail(e),
                }
            }),
        )
}
