//! # compat-tower-sessions: our stores as drop-in tower-sessions stores
//!
//! [`TowerStore`] wraps any [`SessionStore`](session_core::SessionStore) of
//! this workspace (memory, sled, Redis, PostgreSQL, or a third-party one
//! that passes the conformance suite) as a `tower_sessions::SessionStore`.
//! A tower-sessions or axum-login application changes the one line that
//! builds its store, and keeps its handlers, its layers and its cookies.
//!
//! Pick it to move an existing tower-sessions application onto these
//! backends today. A new application gets more from session-core's own
//! `SessionManager` (versions with compare-and-swap, rotation that keeps the
//! data in one step, owner index, idle and absolute timeouts), which this
//! adapter does not use: tower's trait has no place for them.
//!
//! ## Versions
//!
//! | cargo feature | tower-sessions | used by |
//! |---|---|---|
//! | `tower-sessions-0.14` (default) | 0.14 | axum-login 0.18, every published tower-sessions store |
//! | `tower-sessions-0.15` | 0.15 | the newest tower-sessions |
//!
//! Both may be on at once: the one `TowerStore` then implements both
//! versions' traits.
//!
//! ## What the application gains over tower's own stores
//!
//! - **Ids hashed at rest.** The store keeps a session under the SHA-256 of
//!   its id ([`store_key_of`]), never the id: a dump of Redis, a table or a
//!   sled directory holds no cookie an attacker could replay.
//! - **A save never brings a session back.** `save` is the store's
//!   `overwrite`, which writes only a session still live: a request that
//!   loaded the session before another one logged it out cannot resurrect
//!   it when it saves (tower's stores upsert). Such a save writes nothing
//!   and returns `Ok`, so the request does not fail.
//! - **`create` is atomic** and picks a new id on a collision, as tower's
//!   contract asks (several published stores overwrite instead).
//! - **Expired is absent.** `load` never returns an expired session, even
//!   one still stored (the published sled store returns them).
//! - **One round trip per operation**: `create`, `load`, `save` and `delete`
//!   are one call each of the wrapped store, which is one round trip on
//!   Redis and PostgreSQL (tower-sessions-sqlx-store's pool costs three).
//! - Whatever the backend brings: a bounded memory store, crash-safe sled,
//!   Redis, PostgreSQL with one statement per operation.
//!
//! ## What it keeps exactly
//!
//! tower's `Record` comes back `==` to the one saved: the data map (every
//! JSON value exactly, in a compact tagged binary encoding that is several
//! times cheaper to read and write than JSON text, see [`TOWER_FORMAT_V1`])
//! and `expiry_date` to the nanosecond with its UTC offset. The store's own `expires_at` is that
//! expiry rounded *down* to the millisecond, so no backend keeps a session
//! live past tower's deadline.
//!
//! ## What differs from tower's own stores
//!
//! - `save` of a session that was never created writes nothing: it cannot be
//!   told from one that was logged out. tower's `Session` always creates
//!   new sessions with `create`, so only code that calls `save` on a new
//!   record by hand notices. For the same reason a `TowerStore` is a good
//!   *backend* of tower's `CachingSessionStore` but not its *cache* (the
//!   cache is filled by `save`).
//! - Records are this crate's format: a store written by tower's own stores
//!   is not read (sessions start anew after the switch, as after any store
//!   change), and a store shared with a `SessionManager` should not be: give
//!   each its own prefix, table or directory.
//!
//! ## A tower-sessions application
//!
//! Before, with tower's memory store (unbounded, ids in the clear):
//!
//! ```text
//! let session_store = tower_sessions::MemoryStore::default();
//! let session_layer = SessionManagerLayer::new(session_store);
//! ```
//!
//! After, with ours (bounded, hashed ids; Redis, PostgreSQL or sled the same
//! way):
//!
//! ```
//! use axum::{Router, routing::get};
//! use compat_tower_sessions::TowerStore;
//! use tower_sessions::{Session, SessionManagerLayer};
//!
//! async fn count(session: Session) -> String {
//!     let n: u64 = session.get("n").await.ok().flatten().unwrap_or(0);
//!     let _ = session.insert("n", n + 1).await;
//!     n.to_string()
//! }
//!
//! let session_store = TowerStore::new(store_memory::MemoryStore::new());
//! let session_layer = SessionManagerLayer::new(session_store);
//! let app: Router = Router::new().route("/", get(count)).layer(session_layer);
//! ```
//!
//! ## An axum-login application
//!
//! Before, with tower-sessions-redis-store (fred):
//!
//! ```text
//! let pool = fred::prelude::Pool::new(Config::from_url(url)?, None, None, None, 6)?;
//! pool.init().await?;
//! let session_store = tower_sessions_redis_store::RedisStore::new(pool);
//! let session_layer = SessionManagerLayer::new(session_store);
//! let auth_layer = AuthManagerLayerBuilder::new(backend, session_layer).build();
//! ```
//!
//! After, with ours (the whole application is `examples/axum_login`, and
//! `tests/axum_login.rs` logs in, opens a protected page and logs out over
//! HTTP):
//!
//! ```no_run
//! # use axum_login::{AuthManagerLayerBuilder, AuthnBackend};
//! # use axum_login::tower_sessions::SessionManagerLayer;
//! # async fn build<B: AuthnBackend + 'static>(backend: B, url: &str) -> Result<(), session_core::Error> {
//! let redis = store_redis::RedisStore::builder(url).prefix("app:sessions:").connect().await?;
//! let session_store = compat_tower_sessions::TowerStore::new(redis);
//! let session_layer = SessionManagerLayer::new(session_store);
//! let auth_layer = AuthManagerLayerBuilder::new(backend, session_layer).build();
//! # let _ = auth_layer;
//! # Ok(())
//! # }
//! ```
//!
//! A backend that sweeps (memory, sled, PostgreSQL) can run tower's deletion
//! task as before: `tokio::spawn(session_store.clone().continuously_delete_expired(period))`
//! (tower's `deletion-task` feature). Redis expires records by itself.

// With no version feature on, nothing implements tower's traits and the
// shared code is unused; that build is useless but should not fail.
#![cfg_attr(
    not(any(feature = "tower-sessions-0.14", feature = "tower-sessions-0.15")),
    allow(dead_code, unused_macros)
)]

mod format;
mod json_value;
mod key;
mod store;
mod versions;

pub use format::TOWER_FORMAT_V1;
pub use key::store_key_of;
pub use store::{CREATE_ATTEMPTS, SWEEP_BATCH, TowerStore};
