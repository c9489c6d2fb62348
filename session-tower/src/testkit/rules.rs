//! The rules of the HTTP layer, one async function each, named after the
//! rule; [`http_suite!`](crate::http_suite) makes each a `#[test]` per
//! backend.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use conformance::{Ctx, HOUR, StoreFactory};
use cookie::SameSite;
use session_core::{SessionId, StoreKey};

use super::app::{Harness, Reply, TestRequest};
use super::counting::{Calls, Failing};
use crate::{CookieLifetime, SessionConfig, TokenSource};

const NAME: &str = "__Host-id";

fn fresh_token() -> String {
    SessionId::generate().expect("random source").expose().to_owned()
}

fn key_of(token: &str) -> StoreKey {
    SessionId::parse(token).expect("a token from the layer").store_key()
}

fn assert_calls(h: &Harness<impl StoreFactory>, expected: Calls, what: &str) {
    let got = h.store.calls();
    assert_eq!(got, expected, "{}: store calls for {what}", h.ctx.factory.name());
}

fn assert_no_cookie(reply: &Reply, what: &str) {
    assert!(
        reply.cookies(NAME).is_empty(),
        "{what}: unexpected Set-Cookie {:?}",
        reply.header("set-cookie")
    );
}

/// A handler that never touches the session makes no store call, sets no
/// cookie and adds no `Vary`, with or without a session cookie.
pub async fn an_untouched_request_makes_no_store_call<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let (token, _) = h.anonymous().await;
    h.store.reset();
    for send in [
        TestRequest::get("/untouched"),
        TestRequest::get("/untouched").token(&token),
    ] {
        let reply = h.send(send).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_no_cookie(&reply, "untouched");
        assert_eq!(reply.header("vary"), "");
    }
    assert_calls(&h, Calls::default(), "two untouched requests");
}

/// A handler that only reads makes exactly one `load`, no write, no
/// Set-Cookie, and the response varies on the cookie.
pub async fn a_read_makes_one_load_and_no_write<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let (token, _) = h.anonymous().await;
    assert_eq!(
        h.send(TestRequest::post("/write/k/hello").token(&token)).await.status,
        StatusCode::OK
    );
    h.store.reset();
    let reply = h.send(TestRequest::get("/read").token(&token)).await;
    assert_eq!(reply.body, "hello");
    assert_no_cookie(&reply, "a read");
    assert!(reply.header("vary").to_ascii_lowercase().contains("cookie"));
    assert_calls(
        &h,
        Calls {
            load: 1,
            ..Calls::default()
        },
        "a read",
    );
}

/// A read renews the session with one `touch` only when renewal is due; the
/// data is not rewritten (the version stays) and the persistent cookie is
/// refreshed to the new deadline, after the one check that no login rotated
/// it meanwhile.
pub async fn renewal_touches_without_a_data_write_and_refreshes_the_cookie<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let (token, _) = h.anonymous().await;
    let version = h.stored(&token).await.expect("live").version();
    h.advance(HOUR / 2);
    h.store.reset();
    let reply = h.send(TestRequest::get("/read").token(&token)).await;
    assert_no_cookie(&reply, "a read with 1.5 h of 2 h left");
    assert_calls(
        &h,
        Calls {
            load: 1,
            ..Calls::default()
        },
        "a read before renewal is due",
    );
    h.advance(HOUR);
    h.store.reset();
    let reply = h.send(TestRequest::get("/read").token(&token)).await;
    assert_calls(
        &h,
        Calls {
            load: 1,
            touch: 1,
            was_rotated: 1,
            ..Calls::default()
        },
        "a read that renews",
    );
    let cookie = reply.cookie(NAME).expect("a renewal refreshes the cookie");
    assert_eq!(cookie.value(), token, "a refresh keeps the token");
    assert_eq!(cookie.max_age(), Some(cookie::time::Duration::hours(2)));
    let stored = h.stored(&token).await.expect("live");
    assert_eq!(stored.version(), version, "a renewal is not a data write");
    assert_eq!(stored.expires_at(), h.ctx.now() + 2 * HOUR);
}

/// A handler that writes to an existing session makes one `load` and one
/// `update` (an atomic `update` in the handler one `was_rotated` more); the
/// persistent cookie's Max-Age follows the moved deadline.
pub async fn a_write_makes_a_load_and_an_update<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let (token, _) = h.anonymous().await;
    h.advance(Duration::from_secs(600));
    h.store.reset();
    let reply = h.send(TestRequest::post("/write/k/v").token(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_calls(
        &h,
        Calls {
            load: 1,
            update: 1,
            ..Calls::default()
        },
        "a write",
    );
    let cookie = reply.cookie(NAME).expect("the deadline moved: Max-Age refreshed");
    assert_eq!(cookie.value(), token);
    assert_eq!(cookie.max_age(), Some(cookie::time::Duration::hours(2)));
    assert_eq!(reply.header("cache-control"), "no-store");
    let stored = h.stored(&token).await.expect("live");
    assert_eq!(stored.data().get::<String>("k").expect("decode"), Some("v".into()));

    // An atomic update saves at once, in the handler: one `was_rotated`
    // before the cookie's refresh, since a login could have come between.
    h.store.reset();
    let reply = h.send(TestRequest::post("/incr").token(&token)).await;
    assert_eq!(reply.body, "1");
    assert_calls(
        &h,
        Calls {
            load: 1,
            update: 1,
            was_rotated: 1,
            ..Calls::default()
        },
        "an atomic update",
    );
    assert_eq!(reply.cookie(NAME).expect("refreshed").value(), token);
}

/// A login from an anonymous session makes one `load` and one `rotate`:
/// a new token, the owner set, the old token dead (and marked rotated).
pub async fn a_login_makes_a_load_and_a_rotate<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let (token, _) = h.anonymous().await;
    h.store.reset();
    let reply = h.send(TestRequest::post("/login/alice").token(&token)).await;
    assert_eq!(reply.body, "ok");
    assert_calls(
        &h,
        Calls {
            load: 1,
            rotate: 1,
            ..Calls::default()
        },
        "a login",
    );
    let new = reply.token().expect("a login sets the new cookie");
    assert_ne!(new, token);
    assert!(h.stored(&token).await.is_none(), "the old token still works");
    let id = SessionId::parse(&token).expect("token");
    assert!(h.manager.was_rotated(&id).await.expect("was_rotated"));
    assert_eq!(h.stored(&new).await.expect("live").owner(), Some("alice"));
}

/// The cookie of a new session has the secure defaults: `__Host-id`,
/// Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, Max-Age equal to the
/// session's deadline; `Cache-Control: no-store` and `Vary: Cookie`.
pub async fn the_session_cookie_has_the_secure_defaults<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let reply = h.send(TestRequest::post("/write/k/v")).await;
    let c = reply.cookie(NAME).expect("a new session sets its cookie");
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.same_site(), Some(SameSite::Lax));
    assert_eq!(c.path(), Some("/"));
    assert_eq!(c.domain(), None);
    let stored = h.stored(c.value()).await.expect("the cookie names a live session");
    let secs = h.ctx.now().until(stored.expires_at()).as_secs();
    assert_eq!(c.max_age(), Some(cookie::time::Duration::seconds(secs as i64)));
    assert_eq!(secs, 2 * 3600, "min(idle, absolute) for a new session");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert!(reply.header("vary").to_ascii_lowercase().contains("cookie"));
}

/// With a browser-session cookie there is no Max-Age, and a write to an
/// existing session sends no Set-Cookie (the cookie need not change).
pub async fn a_browser_session_cookie_has_no_max_age_and_is_never_refreshed<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let config = SessionConfig::default().lifetime(CookieLifetime::BrowserSession);
    let h = Harness::with(ctx, config, 2);
    let reply = h.send(TestRequest::post("/write/k/v")).await;
    let c = reply.cookie(NAME).expect("a new session sets its cookie");
    assert_eq!(c.max_age(), None);
    assert_eq!(c.expires(), None);
    h.advance(HOUR + Duration::from_secs(60));
    let again = h.send(TestRequest::post("/write/k/w").token(c.value())).await;
    assert_no_cookie(&again, "a write with a browser-session cookie");
    let read = h.send(TestRequest::get("/read").token(c.value())).await;
    assert_eq!(read.body, "w");
    assert_no_cookie(&read, "a renewing read with a browser-session cookie");
}

/// Logout ends the session with one `delete` and no load, and sends a
/// removal cookie that repeats every attribute (and `Clear-Site-Data` when
/// configured); the old token is dead.
pub async fn logout_sends_a_removal_cookie_that_repeats_every_attribute<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let config = SessionConfig::default().clear_site_data_on_logout(true);
    let h = Harness::with(ctx, config, 2);
    let token = h.logged_in("alice").await;
    h.store.reset();
    let reply = h.send(TestRequest::post("/logout").token(&token)).await;
    assert_eq!(reply.body, "true");
    assert_calls(
        &h,
        Calls {
            delete: 1,
            ..Calls::default()
        },
        "a logout",
    );
    let c = reply.cookie(NAME).expect("a removal cookie");
    assert_eq!(c.value(), "");
    assert_eq!(c.max_age(), Some(cookie::time::Duration::ZERO));
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.same_site(), Some(SameSite::Lax));
    assert_eq!(c.path(), Some("/"));
    assert_eq!(c.domain(), None);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.header("clear-site-data"), "\"cache\", \"cookies\", \"storage\"");
    assert!(h.stored(&token).await.is_none());
    assert_eq!(h.send(TestRequest::get("/owner").token(&token)).await.body, "none");
}

/// A malformed token (garbage, the wrong length, huge, several, not ASCII)
/// is no session: reads make no store call; a write gets a new session with
/// a server-minted id.
pub async fn a_malformed_token_is_no_session_and_makes_no_store_call<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let huge = format!("{NAME}={}", "A".repeat(64 * 1024));
    let long = format!("{NAME}={}A", fresh_token());
    let cookies = [
        format!("{NAME}=garbage"),
        format!("{NAME}="),
        long,
        huge,
        format!("{NAME}=\"{}\"", fresh_token()),
        format!("{NAME}=a; {NAME}=b; ;;; =x"),
        "; ; =".to_owned(),
    ];
    for cookie in &cookies {
        let reply = h.send(TestRequest::get("/read").cookie_header(cookie)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "none");
        assert_no_cookie(&reply, "a read with a malformed token");
    }
    assert_calls(&h, Calls::default(), "reads with malformed tokens");
    let reply = h.send(TestRequest::post("/write/k/v").cookie_header(&cookies[0])).await;
    let token = reply.token().expect("a write starts a session");
    assert!(SessionId::parse(&token).is_ok());
    assert_calls(
        &h,
        Calls {
            create: 1,
            ..Calls::default()
        },
        "a write with a malformed token",
    );
}

/// An unknown or expired token is never adopted: a write gets a new
/// server-minted id, and nothing is ever stored under the client's token.
pub async fn an_unknown_or_expired_token_is_never_adopted<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let unknown = fresh_token();
    let reply = h.send(TestRequest::post("/write/k/v").token(&unknown)).await;
    let minted = reply.token().expect("a write starts a session");
    assert_ne!(minted, unknown);
    assert!(h.stored(&unknown).await.is_none(), "the client's id was adopted");
    let (old, _) = h.anonymous().await;
    h.advance(3 * HOUR);
    let reply = h.send(TestRequest::post("/write/k/v").token(&old)).await;
    let minted = reply.token().expect("a write after expiry starts a new session");
    assert_ne!(minted, old);
    assert!(h.stored(&old).await.is_none(), "the expired session came back");
    assert_eq!(h.send(TestRequest::get("/read").token(&minted)).await.body, "v");
}

/// A 5xx response saves nothing: no update of an existing session, no new
/// session, no Set-Cookie.
pub async fn nothing_is_saved_on_a_5xx<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let (token, _) = h.anonymous().await;
    h.send(TestRequest::post("/write/k/before").token(&token)).await;
    h.store.reset();
    let reply = h.send(TestRequest::post("/write-then-500/k/after").token(&token)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_no_cookie(&reply, "a 5xx");
    assert_calls(
        &h,
        Calls {
            load: 1,
            ..Calls::default()
        },
        "a write answered with a 5xx",
    );
    assert_eq!(h.send(TestRequest::get("/read").token(&token)).await.body, "before");
    h.store.reset();
    let reply = h.send(TestRequest::post("/write-then-500/k/v")).await;
    assert_no_cookie(&reply, "a 5xx without a session");
    assert_calls(&h, Calls::default(), "a new session's write answered with a 5xx");
}

/// An explicit logout happens even if the response is a 5xx, and its
/// removal cookie is sent.
pub async fn an_explicit_logout_happens_even_on_a_5xx<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let token = h.logged_in("alice").await;
    let reply = h.send(TestRequest::post("/logout-then-500").token(&token)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.cookie(NAME).expect("removal cookie").value(), "");
    assert!(h.stored(&token).await.is_none());
}

/// 64 overlapping requests that increment one session's counter through
/// `update` leave it at exactly 64, each seeing a distinct value.
pub async fn sixty_four_overlapping_increments_count_exactly_64<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Arc::new(Harness::new(ctx));
    let (token, _) = h.anonymous().await;
    let tasks: Vec<_> = (0..64)
        .map(|_| h.spawn(TestRequest::post("/incr").token(&token)))
        .collect();
    let mut seen = BTreeSet::new();
    for t in tasks {
        let reply = t.await.expect("request task");
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let n: u64 = reply
            .body
            .parse()
            .unwrap_or_else(|_| panic!("not a count: {}", reply.body));
        assert!(seen.insert(n), "two increments saw {n}");
    }
    assert_eq!(seen, (1..=64).collect::<BTreeSet<u64>>());
    let stored = h.stored(&token).await.expect("live");
    assert_eq!(stored.data().get::<u64>("counter").expect("decode"), Some(64));
}

/// Two requests that load the same session, then each change a different
/// key, both keep their change: the second save conflicts, reloads and
/// re-applies its own change.
pub async fn two_overlapping_requests_changing_different_keys_both_keep_their_change<F: StoreFactory>(
    ctx: Arc<Ctx<F>>,
) {
    let h = Arc::new(Harness::with(ctx, SessionConfig::default(), 3));
    let (token, _) = h.anonymous().await;
    h.store.reset();
    let a = h.spawn(TestRequest::post("/gated/write/a/1").token(&token));
    let b = h.spawn(TestRequest::post("/gated/write/b/2").token(&token));
    h.gates.loaded.wait().await; // both have loaded the same version
    h.gates.release.wait().await;
    for t in [a, b] {
        assert_eq!(t.await.expect("request task").body, "ok");
    }
    let stored = h.stored(&token).await.expect("live");
    assert_eq!(stored.data().get::<String>("a").expect("decode"), Some("1".into()));
    assert_eq!(stored.data().get::<String>("b").expect("decode"), Some("2".into()));
    let calls = h.store.calls();
    assert_eq!(
        calls.update, 3,
        "one save, one conflict, one re-applied save: {calls:?}"
    );
}

/// A request that loaded the session before a concurrent logout and then
/// writes saves nothing and sends no cookie: the user stays logged out.
pub async fn a_save_after_a_concurrent_logout_stays_logged_out<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Arc::new(Harness::new(ctx));
    let token = h.logged_in("alice").await;
    let a = h.spawn(TestRequest::post("/gated/write/k/v").token(&token));
    h.gates.loaded.wait().await;
    assert_eq!(h.send(TestRequest::post("/logout").token(&token)).await.body, "true");
    h.gates.release.wait().await;
    let reply = a.await.expect("request task");
    assert_no_cookie(&reply, "a write that lost its session to a logout");
    assert!(h.stored(&token).await.is_none(), "the session came back");
    assert_eq!(h.send(TestRequest::get("/owner").token(&token)).await.body, "none");
    assert!(h.manager.list_by_owner("alice").await.expect("list").is_empty());
}

/// A request still carrying the old cookie that overlaps a login never
/// answers with a cookie that would replace the new one: not when its save
/// finds the old id gone, not when it found no session and would start
/// one, not when its renewal would refresh the old cookie.
pub async fn an_old_cookie_request_overlapping_a_login_never_clobbers_the_new_cookie<F: StoreFactory>(
    ctx: Arc<Ctx<F>>,
) {
    let h = Arc::new(Harness::new(ctx));

    // Loaded before the login, writes after it.
    let (old, _) = h.anonymous().await;
    let a = h.spawn(TestRequest::post("/gated/write/k/v").token(&old));
    h.gates.loaded.wait().await;
    let login = h.send(TestRequest::post("/login/alice").token(&old)).await;
    let new = login.token().expect("the login's cookie");
    h.gates.release.wait().await;
    let reply = a.await.expect("request task");
    assert_no_cookie(&reply, "a write whose session was rotated away");

    // Arrives after the login: finds no session, would start one.
    h.store.reset();
    let reply = h.send(TestRequest::post("/write/k/v").token(&old)).await;
    assert_no_cookie(&reply, "a write with a token rotated a moment ago");
    assert_eq!(h.store.calls().create, 0, "a session was started for a rotated token");
    assert_eq!(h.send(TestRequest::post("/save/k/v").token(&old)).await.body, "gone");
    assert_eq!(h.send(TestRequest::post("/incr").token(&old)).await.body, "gone");
    let csrf = h.send(TestRequest::get("/csrf").token(&old)).await;
    assert_eq!(csrf.body, "gone");
    assert_no_cookie(&csrf, "a CSRF token for a rotated token");
    assert_eq!(
        h.stored(&new).await.expect("the login's session").owner(),
        Some("alice")
    );

    // A renewing read overlapping a login: no refresh of the old cookie.
    let (old, _) = h.anonymous().await;
    h.advance(HOUR + Duration::from_secs(60));
    let a = h.spawn(TestRequest::post("/gated/read").token(&old));
    h.gates.loaded.wait().await;
    let login = h.send(TestRequest::post("/login/bob").token(&old)).await;
    assert!(login.token().is_some());
    h.gates.release.wait().await;
    let reply = a.await.expect("request task");
    assert_no_cookie(&reply, "a renewal whose session was rotated away");
}

/// Login rotates, keeps the data and the absolute deadline; logging in
/// again, as the same user or another, rotates again.
pub async fn login_keeps_data_and_the_absolute_deadline_and_relogin_rotates_again<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let (t0, _) = h.anonymous().await;
    let created = h.stored(&t0).await.expect("live").created_at();
    h.send(TestRequest::post("/write/k/cart").token(&t0)).await;
    h.advance(HOUR);
    let t1 = h
        .send(TestRequest::post("/login/alice").token(&t0))
        .await
        .token()
        .expect("rotated");
    let t2 = h
        .send(TestRequest::post("/login/alice").token(&t1))
        .await
        .token()
        .expect("re-login rotates");
    let t3 = h
        .send(TestRequest::post("/login/bob").token(&t2))
        .await
        .token()
        .expect("user switch rotates");
    let tokens = BTreeSet::from([&t0, &t1, &t2, &t3]);
    assert_eq!(tokens.len(), 4, "a login kept the token");
    for dead in [&t0, &t1, &t2] {
        assert!(h.stored(dead).await.is_none());
    }
    let s = h.stored(&t3).await.expect("live");
    assert_eq!(s.owner(), Some("bob"));
    assert_eq!(s.created_at(), created);
    assert_eq!(s.data().get::<String>("k").expect("decode"), Some("cart".into()));
    assert!(s.expires_at() <= created + 5 * HOUR);
    assert!(h.manager.list_by_owner("alice").await.expect("list").is_empty());
}

/// Unsafe requests without the session's CSRF token are refused with a
/// clear 403 before the handler runs (and with no store call); the header
/// and the form field are accepted, the form body reaches the handler
/// unchanged, and a login gives a new token.
pub async fn csrf_refuses_unsafe_requests_without_the_right_token<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let (token, csrf) = h.anonymous().await;
    h.store.reset();
    let refusals = [
        TestRequest::post("/protected/write/k/v").token(&token),
        TestRequest::post("/protected/write/k/v")
            .token(&token)
            .header("x-csrf-token", "wrong"),
        TestRequest::post("/protected/write/k/v")
            .token(&token)
            .form("csrf=wrong&x=1"),
        TestRequest::post("/protected/write/k/v").header("x-csrf-token", &csrf),
    ];
    for send in refusals {
        let reply = h.send(send).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(reply.body.contains("CSRF"), "{}", reply.body);
        assert!(!reply.body.contains(&token) && !reply.body.contains(&csrf));
    }
    assert_calls(&h, Calls::default(), "refused CSRF checks");
    assert_eq!(
        h.send(TestRequest::get("/read").token(&token)).await.body,
        "none",
        "a refused handler ran"
    );
    let ok = h
        .send(
            TestRequest::post("/protected/write/k/v")
                .token(&token)
                .header("x-csrf-token", &csrf),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let form = format!("x=1&csrf={csrf}&y=%20z");
    let ok = h
        .send(TestRequest::post("/protected/write/k/w").token(&token).form(&form))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, form, "the form body reached the handler changed");
    let big = format!("csrf={csrf}&pad={}", "x".repeat(70 * 1024));
    assert_eq!(
        h.send(TestRequest::post("/protected/write/k/v").token(&token).form(&big))
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Login rotates the CSRF token with the id.
    let new = h
        .send(TestRequest::post("/login/alice").token(&token))
        .await
        .token()
        .expect("rotated");
    let stale = h
        .send(
            TestRequest::post("/protected/write/k/v")
                .token(&new)
                .header("x-csrf-token", &csrf),
        )
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    let fresh = h.send(TestRequest::get("/csrf").token(&new)).await.body;
    assert_ne!(fresh, csrf);
    let ok = h
        .send(
            TestRequest::post("/protected/write/k/v")
                .token(&new)
                .header("x-csrf-token", &fresh),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

/// A store that is down reaches the handler as an error from `get`; a save
/// failing at the end of the request becomes the configured error response
/// (a generic 500 by default), with no token in it and no cookie, and
/// nothing panics.
pub async fn a_store_that_is_down_gives_the_handler_an_error_and_a_failed_save_a_500<F: StoreFactory>(
    ctx: Arc<Ctx<F>>,
) {
    let h = Harness::new(Arc::clone(&ctx));
    let (token, _) = h.anonymous().await;
    h.store.set_failing(Failing::Everything);
    let reply = h.send(TestRequest::get("/read").token(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body.starts_with("error: "),
        "the handler did not get the error: {}",
        reply.body
    );
    assert!(!reply.body.contains(&token));
    h.store.set_failing(Failing::Writes);
    let reply = h.send(TestRequest::post("/write/k/v").token(&token)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "Internal Server Error");
    assert_no_cookie(&reply, "a failed save");
    let reply = h.send(TestRequest::post("/write/k/v")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "a failed create");
    assert_no_cookie(&reply, "a failed create");
    h.store.set_failing(Failing::Nothing);
    assert_eq!(h.send(TestRequest::get("/read").token(&token)).await.body, "none");

    let config = SessionConfig::default().error_response(|_| {
        let mut res = http::Response::new(bytes::Bytes::from_static(b"later"));
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        res
    });
    let h = Harness::with(ctx, config, 2);
    let (token, _) = h.anonymous().await;
    h.store.set_failing(Failing::Writes);
    let reply = h.send(TestRequest::post("/write/k/v").token(&token)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, "later");
}

/// With a header token source the token comes from `Authorization: Bearer`
/// and goes out in `x-session-token` (empty on logout); no cookie, no CSRF.
pub async fn header_tokens_come_and_go_in_headers<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let config = SessionConfig::default().token_source(TokenSource::bearer());
    let h = Harness::with(ctx, config, 2);
    let reply = h.send(TestRequest::post("/protected/write/k/v")).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "CSRF applied in header mode: {}",
        reply.body
    );
    assert_eq!(reply.header("set-cookie"), "");
    let token = reply.header("x-session-token");
    assert!(SessionId::parse(&token).is_ok(), "no token header: {token:?}");
    assert_eq!(reply.header("cache-control"), "no-store");
    let bearer = format!("Bearer {token}");
    let read = h.send(TestRequest::get("/read").header("authorization", &bearer)).await;
    assert_eq!(read.body, "v");
    assert!(read.header("vary").to_ascii_lowercase().contains("authorization"));
    assert_eq!(read.header("x-session-token"), "", "a read re-sent the token");
    let cookie_only = h.send(TestRequest::get("/read").token(&token)).await;
    assert_eq!(cookie_only.body, "none", "a cookie was read in header mode");
    let out = h
        .send(TestRequest::post("/logout").header("authorization", &bearer))
        .await;
    assert_eq!(out.body, "true");
    assert!(out.headers.contains_key("x-session-token"));
    assert_eq!(out.header("x-session-token"), "");
}

/// The devices list shows the owner's sessions with the current one
/// marked; a user ends one, all others, or all, and only their own.
pub async fn devices_are_listed_and_ended_one_others_or_all<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let t1 = h.logged_in("alice").await;
    let t2 = h.logged_in("alice").await;
    let t3 = h.logged_in("alice").await;
    let bob = h.logged_in("bob").await;
    let list = h.send(TestRequest::get("/devices").token(&t1)).await.body;
    assert_eq!(list.lines().count(), 3, "{list}");
    assert_eq!(list.lines().filter(|l| l.ends_with(" current")).count(), 1);
    assert!(list.contains(&format!("{} current", key_of(&t1))));
    let end_t2 = format!("/devices/end/{}", key_of(&t2));
    assert_eq!(
        h.send(TestRequest::post(&end_t2).token(&bob)).await.body,
        "false",
        "bob ended alice's session"
    );
    assert!(h.stored(&t2).await.is_some());
    assert_eq!(h.send(TestRequest::post(&end_t2).token(&t1)).await.body, "true");
    assert!(h.stored(&t2).await.is_none());
    assert_eq!(
        h.send(TestRequest::post("/devices/end-others").token(&t1)).await.body,
        "1"
    );
    assert!(h.stored(&t3).await.is_none());
    assert!(h.stored(&t1).await.is_some());
    assert!(h.stored(&bob).await.is_some());
    let all = h.send(TestRequest::post("/devices/end-all").token(&t1)).await;
    assert_eq!(all.body, "1");
    assert_eq!(all.cookie(NAME).expect("removal cookie").value(), "");
    assert!(h.stored(&t1).await.is_none());
    let anon = h.send(TestRequest::get("/devices")).await;
    assert!(anon.body.contains("nobody is logged in"), "{}", anon.body);
}

/// The handler's own `Vary` is kept and extended; a response that sets the
/// cookie is `no-store` whatever the handler allowed; one that does not
/// keeps its `Cache-Control`.
pub async fn the_handlers_cache_headers_are_kept_or_made_safe<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let h = Harness::new(ctx);
    let reply = h.send(TestRequest::post("/cached/write")).await;
    assert!(reply.token().is_some());
    assert_eq!(reply.header("cache-control"), "no-store");
    let vary = reply.header("vary").to_ascii_lowercase();
    assert!(vary.contains("accept-encoding") && vary.contains("cookie"), "{vary}");
    let token = reply.token().expect("token");
    let read = h.send(TestRequest::get("/cached/read").token(&token)).await;
    assert_no_cookie(&read, "a read");
    assert_eq!(read.header("cache-control"), "private, max-age=60");
}
