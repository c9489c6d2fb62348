//! The routes. Every one of them goes through `SessionLayer` and
//! `CsrfLayer`; the handlers only say what the page does.

use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sessions::StoreKey;
use sessions::http::{CsrfLayer, Error, Session, SessionLayer};

use crate::html;

/// The demo's users: `(name, password)`. A real application checks a
/// password hash from its user table here.
const USERS: &[(&str, &str)] = &[("alice", "demo"), ("bob", "demo")];

/// The session key of the visit counter.
const COUNTER: &str = "counter";

/// The whole application under `layer`.
pub fn router(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/devices", get(devices))
        .route("/devices/end", post(end_device))
        .route("/devices/end-others", post(end_others))
        .route("/api/counter", post(api_counter))
        .route("/api/session", get(api_session))
        .layer(CsrfLayer::new())
        .layer(layer)
}

async fn increment(session: &Session) -> Result<u64, Error> {
    session
        .update(|data| {
            let n = data.get::<u64>(COUNTER)?.unwrap_or(0) + 1;
            data.insert(COUNTER, &n)?;
            Ok(n)
        })
        .await
}

/// `GET /`: the login form, or the user and a visit counter that goes up on
/// every reload.
async fn home(session: Session) -> Result<Response, Error> {
    let Some(user) = session.owner().await? else {
        let csrf = session.csrf_token().await?;
        return Ok(Html(html::page("Log in", &html::login_form(&csrf, None))).into_response());
    };
    let counter = increment(&session).await?;
    let csrf = session.csrf_token().await?;
    let expires = session.expires_at().await?.unwrap_or_default();
    Ok(Html(html::page("Hello", &html::home(&user, counter, &csrf, expires))).into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

/// `POST /login`: a wrong password is 401 and changes nothing; a right one
/// rotates the session and sets the owner in one step, then `303 /`.
async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Response, Error> {
    let known = USERS
        .iter()
        .any(|(name, password)| *name == form.username && *password == form.password);
    if !known {
        let csrf = session.csrf_token().await?;
        let body = html::login_form(&csrf, Some("Wrong user or password."));
        return Ok((StatusCode::UNAUTHORIZED, Html(html::page("Log in", &body))).into_response());
    }
    match session.login(form.username).await {
        // A login in another tab rotated this session a moment ago: that
        // one logged the browser in.
        Ok(()) | Err(Error::SessionGone) => Ok(Redirect::to("/").into_response()),
        Err(e) => Err(e),
    }
}

/// `POST /logout`: ends the session, removal cookie, `303 /`.
async fn logout(session: Session) -> Result<Response, Error> {
    session.logout().await?;
    Ok(Redirect::to("/").into_response())
}

/// `GET /devices`: the user's sessions, each with a button to end it.
async fn devices(session: Session) -> Result<Response, Error> {
    let Some(user) = session.owner().await? else {
        return Ok(Redirect::to("/").into_response());
    };
    let rows: Vec<_> = session
        .devices()
        .await?
        .into_iter()
        .map(|d| html::DeviceRow {
            key: d.key.to_hex(),
            created_at: d.created_at,
            expires_at: d.expires_at,
            current: d.current,
        })
        .collect();
    let csrf = session.csrf_token().await?;
    Ok(Html(html::page("Your devices", &html::devices(&user, &rows, &csrf))).into_response())
}

#[derive(Deserialize)]
struct EndForm {
    key: String,
}

/// `POST /devices/end` (field `key`): ends one of the user's sessions.
async fn end_device(session: Session, Form(form): Form<EndForm>) -> Result<Response, Error> {
    let Ok(key) = form.key.parse::<StoreKey>() else {
        return Ok((StatusCode::BAD_REQUEST, "not a session key").into_response());
    };
    let current = session.store_key().await? == Some(key);
    match session.end_device(&key).await {
        Ok(_) => Ok(Redirect::to(if current { "/" } else { "/devices" }).into_response()),
        Err(Error::NotLoggedIn) => Ok(Redirect::to("/").into_response()),
        Err(e) => Err(e),
    }
}

/// `POST /devices/end-others`: "log out everywhere else".
async fn end_others(session: Session) -> Result<Response, Error> {
    match session.end_other_devices().await {
        Ok(_) => Ok(Redirect::to("/devices").into_response()),
        Err(Error::NotLoggedIn) => Ok(Redirect::to("/").into_response()),
        Err(e) => Err(e),
    }
}

/// `POST /api/counter` (header `x-csrf-token`): `{"counter": n}`.
async fn api_counter(session: Session) -> Result<Response, Error> {
    let n = increment(&session).await?;
    Ok(Json(json!({ "counter": n })).into_response())
}

/// `GET /api/session`: `{"user", "counter", "csrf", "expires_at"}`.
async fn api_session(session: Session) -> Result<Response, Error> {
    let csrf = session.csrf_token().await?;
    let user = session.owner().await?;
    let counter = session.get::<u64>(COUNTER).await?.unwrap_or(0);
    let expires_at = session.expires_at().await?.map(html::utc);
    Ok(Json(json!({ "user": user, "counter": counter, "csrf": csrf, "expires_at": expires_at })).into_response())
}
