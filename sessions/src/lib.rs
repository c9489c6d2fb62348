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
