//! The demo's routes, in-process on the memory store: status codes,
//! redirects, JSON shapes, CSRF refusals, and a wrong password that changes
//! nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use sessions::MemoryStore;
use sessions::http::SessionConfig;
use tower::ServiceExt as _;

const COOKIE: &str = "__Host-id";

struct Reply {
    status: StatusCode,
    location: Option<String>,
    token: Option<String>,
    body: String,
}

struct Browser {
    app: Router,
    token: Option<String>,
}

impl Browser {
    fn new(app: &Router) -> Self {
        Self {
            app: app.clone(),
            token: None,
        }
    }

    async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = &self.token {
            req = req.header(header::COOKIE, format!("{COOKIE}={t}"));
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let res = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body.to_owned())).expect("request"))
            .await
            .expect("infallible");
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().expect("ascii").to_owned());
        let token = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                v.strip_prefix(&format!("{COOKIE}="))
                    .map(|r| r.split(';').next().unwrap_or("").to_owned())
            });
        if let Some(t) = &token {
            self.token = if t.is_empty() { None } else { Some(t.clone()) };
        }
        let body =
            String::from_utf8(res.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf-8");
        Reply {
            status,
            location,
            token,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[], "").await
    }

    async fn form(&mut self, path: &str, body: &str) -> Reply {
        self.send(
            "POST",
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            body,
        )
        .await
    }

    async fn session(&mut self) -> serde_json::Value {
        let r = self.get("/api/session").await;
        assert_eq!(r.status, StatusCode::OK);
        serde_json::from_str(&r.body).expect("JSON")
    }

    async fn log_in(&mut self, user: &str) {
        let page = self.get("/").await;
        let csrf = csrf_field(&page.body);
        let r = self
            .form("/login", &format!("username={user}&password=demo&csrf={csrf}"))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location.as_deref(), Some("/"));
    }
}

fn csrf_field(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a csrf field") + marker.len();
    page[at..].split('"').next().expect("quote").to_owned()
}

fn app() -> Router {
    demo::app(Arc::new(MemoryStore::new()), SessionConfig::default()).expect("valid demo configuration")
}

#[tokio::test]
async fn the_home_page_shows_a_login_form_then_the_user_and_a_counter_that_goes_up() {
    let app = app();
    let mut b = Browser::new(&app);
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<form method=\"post\" action=\"/login\""));
    let anonymous = page.token.expect("the login form starts a session for its CSRF token");
    b.log_in("alice").await;
    assert_ne!(
        b.token.as_deref(),
        Some(anonymous.as_str()),
        "login kept the session id"
    );
    let one = b.get("/").await;
    assert!(
        one.body.contains("Logged in as <strong id=\"user\">alice</strong>"),
        "{}",
        one.body
    );
    assert!(one.body.contains("<strong id=\"counter\">1</strong>"), "{}", one.body);
    let two = b.get("/").await;
    assert!(two.body.contains("<strong id=\"counter\">2</strong>"), "{}", two.body);
}

#[tokio::test]
async fn a_wrong_password_is_401_and_changes_nothing() {
    let app = app();
    let mut b = Browser::new(&app);
    let page = b.get("/").await;
    let before = b.session().await;
    let r = b
        .form(
            "/login",
            &format!("username=alice&password=nope&csrf={}", csrf_field(&page.body)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.token.is_none(), "a failed login changed the cookie");
    assert!(r.body.contains("Wrong user or password"));
    let after = b.session().await;
    assert_eq!(before, after, "a failed login changed the session");
    assert_eq!(after["user"], serde_json::Value::Null);
}

#[tokio::test]
async fn unsafe_requests_without_the_csrf_token_are_refused() {
    let app = app();
    let mut b = Browser::new(&app);
    b.get("/").await;
    let r = b.form("/login", "username=alice&password=demo").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("CSRF"));
    let r = b.form("/login", "username=alice&password=demo&csrf=forged").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(b.session().await["user"], serde_json::Value::Null);
    let r = b.send("POST", "/api/counter", &[], "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.form("/logout", "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // No cookie at all: no session, so no token.
    let mut stranger = Browser::new(&app);
    assert_eq!(stranger.form("/logout", "csrf=x").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_api_counts_atomically_and_describes_the_session() {
    let app = app();
    let mut b = Browser::new(&app);
    b.log_in("bob").await;
    let s = b.session().await;
    assert_eq!(s["user"], "bob");
    assert_eq!(s["counter"], 0);
    let csrf = s["csrf"].as_str().expect("csrf string").to_owned();
    assert!(s["expires_at"].as_str().expect("expires_at string").ends_with(" UTC"));
    for n in 1..=3 {
        let r = b.send("POST", "/api/counter", &[("x-csrf-token", &csrf)], "").await;
        assert_eq!(r.status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(v, serde_json::json!({ "counter": n }));
    }
    assert_eq!(b.session().await["counter"], 3);
    let mut anon = Browser::new(&app);
    let s = anon.session().await;
    assert_eq!(s["user"], serde_json::Value::Null);
    assert!(s["csrf"].is_string());
}

#[tokio::test]
async fn logout_redirects_and_removes_the_cookie() {
    let app = app();
    let mut b = Browser::new(&app);
    b.log_in("alice").await;
    let csrf = b.session().await["csrf"].as_str().expect("csrf").to_owned();
    let old = b.token.clone().expect("logged in");
    let r = b.form("/logout", &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location.as_deref(), Some("/"));
    assert_eq!(r.token.as_deref(), Some(""), "no removal cookie");
    b.token = Some(old);
    assert_eq!(
        b.session().await["user"],
        serde_json::Value::Null,
        "the old cookie still logs in"
    );
}

#[tokio::test]
async fn devices_lists_the_users_sessions_and_ends_others() {
    let app = app();
    let mut anon = Browser::new(&app);
    let r = anon.get("/devices").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut first = Browser::new(&app);
    first.log_in("alice").await;
    let mut second = Browser::new(&app);
    second.log_in("alice").await;
    let page = second.get("/devices").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("class=\"device\"").count(), 2, "{}", page.body);
    assert_eq!(page.body.matches("this device").count(), 1);
    let csrf = csrf_field(&page.body);
    let r = second.form("/devices/end", &format!("csrf={csrf}&key=nothex")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = second.form("/devices/end-others", &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location.as_deref(), Some("/devices"));
    assert_eq!(
        first.session().await["user"],
        serde_json::Value::Null,
        "the other device survived"
    );
    assert_eq!(second.session().await["user"], "alice");
}

#[tokio::test]
async fn bad_forms_and_bad_cookies_are_client_errors_never_panics() {
    let app = app();
    let mut b = Browser::new(&app);
    let csrf = csrf_field(&b.get("/").await.body);
    for body in [
        format!("csrf={csrf}"),
        format!("csrf={csrf}&username=%ZZ&password=%"),
        format!("csrf={csrf}&username=alice&password=demo&password=x"),
        format!("csrf={csrf}&{}", "a=b&".repeat(2000)),
    ] {
        let r = b.form("/login", &body).await;
        assert!(
            r.status.is_client_error() || r.status == StatusCode::SEE_OTHER,
            "{}: {}",
            r.status,
            r.body
        );
    }
    let r = b.form("/devices/end", &format!("csrf={csrf}&key=")).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    for cookie in [
        "__Host-id=",
        "__Host-id=%%%",
        "__Host-id=\"q\"",
        &format!("__Host-id={}", "x".repeat(100_000)),
    ] {
        let mut stranger = Browser::new(&app);
        let r = stranger.send("GET", "/api/session", &[("cookie", cookie)], "").await;
        assert_eq!(r.status, StatusCode::OK, "{cookie:.40}");
    }
}

/// The store calls each of the demo's requests makes, counted on the memory
/// store (what the README and the crate docs quote).
#[tokio::test]
async fn store_calls_per_request() {
    use session_tower::testkit::{Calls, CountingStore};
    let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let app = demo::app(store.clone(), SessionConfig::default()).expect("valid demo configuration");
    let mut b = Browser::new(&app);
    let count = |what: &str, expected: Calls| {
        assert_eq!(store.calls(), expected, "{what}");
        store.reset();
    };
    let page = b.get("/").await;
    count(
        "the first visit (login form: a session for its CSRF token)",
        Calls {
            create: 1,
            ..Calls::default()
        },
    );
    let csrf = csrf_field(&page.body);
    let r = b
        .form("/login", &format!("username=alice&password=demo&csrf={csrf}"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    count(
        "a login",
        Calls {
            load: 1,
            rotate: 1,
            ..Calls::default()
        },
    );
    b.get("/").await;
    count(
        "the home page (owner, visit counter update, refresh check)",
        Calls {
            load: 1,
            update: 1,
            was_rotated: 1,
            ..Calls::default()
        },
    );
    let s = b.session().await;
    count(
        "GET /api/session (a read)",
        Calls {
            load: 1,
            ..Calls::default()
        },
    );
    let csrf = s["csrf"].as_str().expect("csrf").to_owned();
    b.send("POST", "/api/counter", &[("x-csrf-token", &csrf)], "").await;
    count(
        "POST /api/counter",
        Calls {
            load: 1,
            update: 1,
            was_rotated: 1,
            ..Calls::default()
        },
    );
    b.form("/logout", &format!("csrf={csrf}")).await;
    count(
        "a logout",
        Calls {
            delete: 1,
            ..Calls::default()
        },
    );
    let r = b.form("/logout", "csrf=x").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    count("a CSRF refusal", Calls::default());
}
