//! An axum-login application whose sessions live in one of our stores
//! through `TowerStore`: log in with a form, a page only logged-in users
//! see, log out. Everything but the line that builds the session store is
//! what an axum-login application already has.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_login::tower_sessions::{Expiry, Session, SessionManagerLayer};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, UserId, login_required};
use compat_tower_sessions::TowerStore;
use serde::Deserialize;

/// A user of the application.
#[derive(Clone, Debug)]
pub struct User {
    id: u64,
    name: String,
    /// Stands in for a password hash (a real application keeps an argon2
    /// hash): axum-login ends a user's sessions when it changes.
    password: String,
}

impl AuthUser for User {
    type Id = u64;

    fn id(&self) -> u64 {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        self.password.as_bytes()
    }
}

/// What the login form sends.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The users, in memory: the example is about sessions, not user storage.
#[derive(Clone)]
pub struct Users {
    by_name: Arc<HashMap<String, User>>,
}

impl Users {
    /// One user, "ada", whose password is "lovelace".
    pub fn example() -> Self {
        let ada = User {
            id: 1,
            name: "ada".into(),
            password: "lovelace".into(),
        };
        Users {
            by_name: Arc::new(HashMap::from([(ada.name.clone(), ada)])),
        }
    }
}

impl AuthnBackend for Users {
    type User = User;
    type Credentials = Credentials;
    type Error = std::convert::Infallible;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, Self::Error> {
        // A real application compares password hashes in constant time.
        Ok(self
            .by_name
            .get(&creds.username)
            .filter(|user| user.password == creds.password)
            .cloned())
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, Self::Error> {
        Ok(self.by_name.values().find(|user| user.id == *id).cloned())
    }
}

type Auth = AuthSession<Users>;

/// A public page that keeps a visit count in the session, as a shopping
/// cart or a CSRF token would: visitors have a session before they log in.
async fn visits(session: Session) -> impl IntoResponse {
    let seen: u64 = match session.get("visits").await {
        Ok(seen) => seen.unwrap_or(0),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match session.insert("visits", seen + 1).await {
        Ok(()) => format!("visit {}", seen + 1).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn login(mut auth: Auth, Form(creds): Form<Credentials>) -> impl IntoResponse {
    match auth.authenticate(creds).await {
        Ok(Some(user)) => match auth.login(&user).await {
            Ok(()) => (StatusCode::OK, "logged in").into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Ok(None) => (StatusCode::UNAUTHORIZED, "wrong name or password").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn protected(auth: Auth) -> impl IntoResponse {
    match auth.user {
        Some(user) => format!("hello, {}", user.name).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn logout(mut auth: Auth) -> impl IntoResponse {
    match auth.logout().await {
        Ok(_) => (StatusCode::OK, "logged out").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The application on `session_store`. `secure` marks the cookie
/// `Secure` (keep it on behind HTTPS; the test speaks plain HTTP).
pub fn app<S: session_core::SessionStore>(session_store: TowerStore<S>, secure: bool) -> Router {
    let session_layer = SessionManagerLayer::new(session_store)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)));
    let auth_layer = AuthManagerLayerBuilder::new(Users::example(), session_layer).build();
    Router::new()
        .route("/protected", get(protected))
        .route_layer(login_required!(Users))
        .route("/", get(visits))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(auth_layer)
}
