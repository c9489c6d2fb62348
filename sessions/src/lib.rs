//! # sessions: server-side web sessions for Rust
//!
//! One storage contract with exact semantics (expiry, renewal, optimistic
//! concurrency, rotation, an owner index) and interchangeable backends,
//! chosen by cargo feature:
//!
//! | feature | store | for |
//! |---|---|---|
//! | `memory` (default) | `MemoryStore` | one process, tests |
//! | `redis` | `RedisStore` | several processes sharing sessions; Redis persistence decides durability |
//! | `postgres` | `PostgresStore` | sessions in the application's PostgreSQL, durable by default |
//! | `sled` | `SledStore` | one process, sessions survive a restart, no server |
//!
//! The HTTP layer ([`session_tower`]) comes with the `tower` feature, as
//! [`sessions::http`](http) plus [`SessionLayer`], [`SessionConfig`] and
//! [`CsrfLayer`] here; the `axum` feature makes its handle,
//! `sessions::http::Session`, an axum extractor.
//!
//! Everything of [`session_core`] is re-exported here: use
//! [`SessionManager`] in the application, [`SessionStore`] to write or wrap a
//! backend.
//!
//! ```
//! use std::sync::Arc;
//! use sessions::{Config, MemoryStore, SessionManager};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sessions::Error> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default())?;
//! let mut session = manager.create(None).await?;
//! session.data_mut().insert("user", "ada")?;
//! manager.save(&mut session).await?;
//! // After login: a new id, same data, same absolute deadline.
//! manager.rotate(&mut session).await?;
//! assert!(manager.load(session.id()).await?.is_some());
//! # Ok(())
//! # }
//! ```

pub use session_core::*;

#[cfg(feature = "memory")]
pub use store_memory::{MemoryStore, MemoryStoreBuilder};

#[cfg(feature = "redis")]
pub use store_redis::{RedisStore, RedisStoreBuilder};

#[cfg(feature = "postgres")]
pub use store_postgres::{PostgresStore, PostgresStoreBuilder};

#[cfg(feature = "sled")]
pub use store_sled::{FlushPolicy, SledStore, SledStoreBuilder};

/// The HTTP layer (feature `tower`): everything of [`session_tower`]. Its
/// per-request handle is `sessions::http::Session`; the crate root's
/// [`Session`] is the manager's copy of a stored session.
///
/// ```
/// use std::sync::Arc;
/// use sessions::{Config, MemoryStore, SessionConfig, SessionLayer, SessionManager};
///
/// # fn main() -> Result<(), sessions::Error> {
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default())?;
/// let layer = SessionLayer::new(manager, SessionConfig::default())?;
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "tower")]
pub use session_tower as http;

#[cfg(feature = "tower")]
pub use session_tower::{CsrfLayer, SessionConfig, SessionLayer};
