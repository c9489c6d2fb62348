//! # session-tower: server-side sessions for tower and axum
//!
//! The HTTP glue between a request and a [`SessionManager`](session_core::SessionManager)
//! on any [`SessionStore`](session_core::SessionStore): a tower
//! [`SessionLayer`], a per-request [`Session`] handle (an axum extractor with
//! the `axum` feature), a [`CsrfLayer`], and with the `testkit` feature the
//! HTTP-level test kit every backend of this workspace runs. It is the code
//! where session bugs usually live, written once so that every guarantee
//! of the storage contract reaches the request.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::{get, post}};
//! use session_core::{Config, SessionManager};
//! use session_tower::{CsrfLayer, Session, SessionConfig, SessionLayer};
//! use store_memory::MemoryStore;
//!
//! async fn home(session: Session) -> Result<String, session_tower::Error> {
//!     Ok(match session.owner().await? {
//!         Some(user) => format!("hello {user}"),
//!         None => format!("csrf token for the login form: {}", session.csrf_token().await?),
//!     })
//! }
//!
//! async fn login(session: Session) -> Result<&'static str, session_tower::Error> {
//!     // (check the password first) New id, owner set, data kept: one atomic step.
//!     session.login("alice").await?;
//!     Ok("logged in")
//! }
//!
//! # fn main() -> Result<(), session_core::Error> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default())?;
//! let app: Router = Router::new()
//!     .route("/", get(home))
//!     .route("/login", post(login))
//!     .layer(CsrfLayer::new()) // inner: runs after the session layer
//!     .layer(SessionLayer::new(manager, SessionConfig::default())?);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! # What the layer guarantees, and how
//!
//! **Lazy.** The layer only parses the cookie; a request whose handler
//! never touches the session makes no store call. The first read makes one
//! `load` (plus one `touch` when the manager's renewal is due). A malformed
//! token is no session, with no store call (logged at debug, never the
//! token).
//!
//! **No adoption.** An unknown or expired token is never adopted: a request
//! without a live session that writes gets a new session with an id minted
//! by the server, and the client's token is forgotten.
//!
//! **Writes before the response leaves.** The layer awaits the handler's
//! response, then saves, then sets headers, then returns the response: no
//! write ever happens after headers are sent. A 5xx response saves nothing
//! (the handler's pending [`insert`](Session::insert)s are dropped, no new
//! session is created); changes the handler already made in the store
//! (a login, a logout, an [`update`](Session::update)) are not undone, and
//! their cookies are sent even on a 5xx, because the browser must follow
//! the store. Set-Cookie is sent only when the cookie must change: a new
//! session, a rotation, a logout, or, for persistent cookies, a deadline
//! that moved (a renewal or a save).
//!
//! **No lost updates.** A save is a compare-and-swap on the version the
//! request loaded. On a conflict the layer reloads, re-applies this
//! request's own changes (per key, last write wins: the value's bytes, or
//! its removal) and saves again, up to
//! [`max_save_attempts`](SessionConfig::max_save_attempts); so two
//! overlapping requests that change different keys both keep their change.
//! Within one process, writers of one session take turns, so conflicts come
//! only from other processes (or from a copy loaded before another request's
//! save). A read-modify-write (a counter, a cart) uses
//! [`Session::update`], which runs at once and re-runs its closure on the
//! fresh data after a conflict: it cannot lose an increment.
//!
//! **No resurrection.** A save that finds the session gone (logged out,
//! rotated by a login, expired meanwhile) writes nothing (the store's
//! update refuses a session that is not live) and the response carries no
//! cookie for it; the handler that calls [`Session::save`] learns
//! [`Error::SessionGone`].
//!
//! **Rotation without clobbering.** [`Session::login`] sets the owner and
//! gives the session a new id in one atomic store step that keeps the data
//! and the absolute deadline; re-login and user switch rotate too. The
//! store leaves a *rotation mark* under the old key for a minute. A request
//! that still carried the old cookie and overlapped the login must not
//! answer with a cookie that replaces the new one in the browser:
//!
//! - if it loaded the session before the rotation and then writes, its save
//!   finds the old key gone: nothing written, no cookie;
//! - if it found no session (it loaded after the rotation) and writes, the
//!   layer would normally start a new session and set its cookie; it first
//!   asks the store whether the request's token `was_rotated`, and if so
//!   drops the writes and sends no cookie ([`Session::save`],
//!   [`Session::update`], [`Session::csrf_token`] return
//!   [`Error::SessionGone`]);
//! - a persistent cookie's `Max-Age` refresh (after a renewal or a save) is
//!   sent without a further check only when the layer's own end-of-request
//!   save has just succeeded under that id; when the deadline was moved
//!   earlier in the request (a renewing load, a handler's `update` or
//!   `save`), the layer asks `was_rotated` first and sends no refresh if a
//!   login rotated the id meanwhile.
//!
//! What remains: a login that commits in the short time between this
//! request's last store confirmation and the browser's processing of its
//! response, and whose own response the browser processes first, can still
//! be overwritten by the refresh; the browser then holds a dead token and
//! the user is logged out (never logged in as anyone else: the old token
//! names no session, and for a minute the rotation mark keeps it from
//! starting one). A rotation mark lasts a minute, so a request that held an
//! old cookie for longer is treated as an unknown token.
//!
//! **Cookies.** The defaults are the secure ones: `__Host-id`, `Secure`,
//! `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`, `Max-Age` = the
//! session's real deadline `min(idle, absolute)`, rounded down (or a
//! browser-session cookie). [`SessionConfig`] says what each protects
//! against and refuses inconsistent combinations. The removal cookie
//! repeats every attribute. Every response that sets the cookie gets
//! `Cache-Control: no-store`; every response of a request that looked at
//! the session gets `Vary: Cookie` (appended to an existing `Vary`).
//! Several cookies with the session's name: the first well-formed one, in
//! the browser's order, is used.
//!
//! **Header tokens.** [`TokenSource::Header`] reads the token from a header
//! (`Authorization: Bearer` with [`TokenSource::bearer`]) and returns a new
//! one in a response header; no cookie, no CSRF.
//!
//! **Logout and devices.** [`Session::logout`] (a removal cookie, optional
//! `Clear-Site-Data`), [`Session::devices`] (the current one marked),
//! [`Session::end_device`], [`Session::end_other_devices`],
//! [`Session::end_all_devices`].
//!
//! **CSRF.** [`CsrfLayer`]: a per-session token checked on unsafe methods
//! (header or form field), a `403` saying why otherwise, rotated on login;
//! see the [`csrf`] module.
//!
//! **Errors.** A store error while loading reaches the handler as
//! [`Error::Store`]; one at the end of the request becomes the configured
//! error response (a generic `500` by default), logged without any token.
//! No input (malformed or huge cookies, bad forms) panics.
//!
//! # Store calls per request
//!
//! | request | calls |
//! |---|---|
//! | handler never touches the session | 0 |
//! | reads (`get`, `owner`...) | 1 `load` (+1 `touch` and +1 `was_rotated` when renewal is due, with a persistent cookie) |
//! | writes with `insert`/`remove`, saved at the end | 2: `load`, `update` |
//! | `update` (atomic read-modify-write) | 2: `load`, `update`, +1 `was_rotated` before refreshing a persistent cookie |
//! | login from an anonymous session | 2: `load`, `rotate` (the CSRF token needs no write) |
//! | logout | 1: `delete` |
//! | CSRF check | 0 |
//!
//! `cargo test -p session-tower` measures these with a counting store.

mod backend;
mod config;
pub mod csrf;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod layer;
mod locks;
mod session;
#[cfg(feature = "testkit")]
pub mod testkit;
mod token;

pub use config::{CookieLifetime, ErrorResponder, SameSite, SessionConfig, TokenSource, default_error_response};
pub use csrf::{CsrfLayer, CsrfService};
pub use error::{CsrfFailure, Error};
#[cfg(feature = "axum")]
pub use extract::MissingSessionLayer;
pub use layer::{SessionLayer, SessionService};
pub use session::{Device, Session};
