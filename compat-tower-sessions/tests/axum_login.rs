//! The axum-login example application, over HTTP requests and responses:
//! log in, a protected page, log out, on our Redis store through
//! `TowerStore` (as the example runs), and on the memory store.

#[path = "../examples/axum_login/app.rs"]
mod app;
// The backends of the store-contract tests: a Redis store under a key
// prefix of its own, removed afterwards. This file uses only that part.
#[allow(dead_code)]
#[path = "tower_contract/backends.rs"]
mod backends;
#[allow(dead_code)]
#[path = "tower_contract/wire.rs"]
mod wire;

use std::str::FromStr;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum_login::tower_sessions::session::Id;
use compat_tower_sessions::{TowerStore, store_key_of};
use http_body_util::BodyExt;
use session_core::{SessionStore, Timestamp};
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    /// The session cookie's value, if the response set one.
    cookie: Option<String>,
    body: String,
}

async fn send(app: &Router, method: &str, path: &str, cookie: Option<&str>, form: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(id) = cookie {
        request = request.header(header::COOKIE, format!("id={id}"));
    }
    let body = match form {
        Some(form) => {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(form.to_owned())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).expect("a well-formed request"))
        .await
        .expect("the router answers");
    let status = response.status();
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.strip_prefix("id="))
        .map(str::to_owned)
        .next();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    Reply {
        status,
        cookie,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Whether `store` holds a live session for the cookie `id`, under the
/// hash of the id.
async fn stored<S: SessionStore>(store: &S, id: &str) -> bool {
    let id = Id::from_str(id).expect("the cookie is a tower session id");
    let record = store.load(&store_key_of(id.0), Timestamp::now()).await.expect("load");
    record.is_some()
}

/// Log in, see the protected page, log out, and find the page closed again
/// with the same cookie.
async fn login_protected_logout<S: SessionStore>(session_store: TowerStore<S>) {
    let app = app::app(session_store.clone(), false);
    let store = session_store.store();

    let anonymous = send(&app, "GET", "/protected", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let wrong = send(&app, "POST", "/login", None, Some("username=ada&password=babbage")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.cookie, None, "no session for a failed login");

    let login = send(&app, "POST", "/login", None, Some("username=ada&password=lovelace")).await;
    assert_eq!((login.status, login.body.as_str()), (StatusCode::OK, "logged in"));
    let cookie = login.cookie.expect("a session cookie after logging in");
    assert!(
        stored(store, &cookie).await,
        "the session is kept under the hash of its id"
    );

    let page = send(&app, "GET", "/protected", Some(&cookie), None).await;
    assert_eq!((page.status, page.body.as_str()), (StatusCode::OK, "hello, ada"));

    let logout = send(&app, "POST", "/logout", Some(&cookie), None).await;
    assert_eq!(logout.status, StatusCode::OK);
    assert!(
        !stored(store, &cookie).await,
        "logging out ended the session in the store"
    );

    let replay = send(&app, "GET", "/protected", Some(&cookie), None).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "the old cookie opens nothing");
}

/// A visitor's session from before the login moves to a new id when they
/// log in (axum-login's `cycle_id`, against session fixation): the old id
/// is gone from the store, the data came along.
async fn login_moves_the_session_to_a_new_id<S: SessionStore>(session_store: TowerStore<S>) {
    let app = app::app(session_store.clone(), false);
    let store = session_store.store();
    let visit = send(&app, "GET", "/", None, None).await;
    assert_eq!(visit.body, "visit 1");
    let before = visit.cookie.expect("a visitor's session");
    assert!(stored(store, &before).await);

    let login = send(
        &app,
        "POST",
        "/login",
        Some(&before),
        Some("username=ada&password=lovelace"),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    let after = login.cookie.expect("a new cookie after logging in");
    assert_ne!(after, before);
    assert!(!stored(store, &before).await, "the pre-login id is ended");
    assert!(stored(store, &after).await);

    let page = send(&app, "GET", "/protected", Some(&after), None).await;
    assert_eq!(page.status, StatusCode::OK);
    let visit = send(&app, "GET", "/", Some(&after), None).await;
    assert_eq!(visit.body, "visit 2", "the data moved with the session");
    let stale = send(&app, "GET", "/protected", Some(&before), None).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
}

/// Runs `flow` on a fresh Redis store, or skips loudly without a server
/// (fails under `SESSIONS_REQUIRE_SERVICES=1`).
async fn on_redis<F, Fut>(flow: F)
where
    F: FnOnce(TowerStore<std::sync::Arc<dyn SessionStore>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let made = match backends::Backend::Redis.make().await {
        Ok(made) => made,
        Err(e) => return conformance::fixtures::skip_or_fail("redis", &e),
    };
    // On its own task, so a failure still lets the prefix be removed.
    let outcome = tokio::spawn(flow(TowerStore::new(std::sync::Arc::clone(&made.store)))).await;
    made.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn redis_login_protected_logout() {
    on_redis(login_protected_logout).await;
}

#[tokio::test]
async fn redis_login_moves_the_session_to_a_new_id() {
    on_redis(login_moves_the_session_to_a_new_id).await;
}

#[tokio::test]
async fn memory_login_protected_logout() {
    login_protected_logout(TowerStore::new(store_memory::MemoryStore::new())).await;
}

#[tokio::test]
async fn memory_login_moves_the_session_to_a_new_id() {
    login_moves_the_session_to_a_new_id(TowerStore::new(store_memory::MemoryStore::new())).await;
}
