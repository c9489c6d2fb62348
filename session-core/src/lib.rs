//! # session-core: the contract of server-side session storage
//!
//! This crate is what every session backend and every application agree on:
//!
//! - [`SessionId`], the browser's 256-bit token, and [`StoreKey`], its
//!   SHA-256, which is all a store ever sees;
//! - [`Record`], [`Timestamp`], the [`Clock`] (with [`ManualClock`] for
//!   tests), and the one [`Error`] type;
//! - the [`SessionStore`] trait, whose documentation is the normative
//!   contract (liveness, versions, atomicity, one round trip);
//! - [`SessionData`], the versioned binary codec of the application's data;
//! - [`SessionManager`], which turns the contract into what an application
//!   uses: idle and absolute timeouts, renewal, optimistic concurrency with
//!   retry, rotation and the owner index.
//!
//! It is not a backend (see `store-memory`, `store-redis`, `store-postgres`,
//! `store-sled`, or the `sessions` facade that picks one by cargo feature)
//! and not HTTP middleware.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{Config, SessionData, SessionManager};
//! use store_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::Error> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), Config::default())?;
//!
//! let mut session = manager.create(None).await?;
//! session.data_mut().insert("theme", "dark")?;
//! manager.save(&mut session).await?;
//!
//! let cookie = session.id().expose().to_owned();
//! let loaded = manager.load_str(&cookie).await?.expect("still live");
//! assert_eq!(loaded.data().get::<String>("theme")?, Some("dark".into()));
//! # Ok(())
//! # }
//! ```

mod data;
mod error;
mod id;
mod manager;
mod owner;
mod record;
mod store;
mod time;

pub use data::{FORMAT_V1, SessionData};
pub use error::{BackendError, ConfigError, Error};
pub use id::{SESSION_ID_BYTES, SESSION_ID_LEN, SessionId, StoreKey};
pub use manager::{Config, Session, SessionManager};
pub use owner::{MAX_OWNER_LEN, validate_owner};
pub use record::{Overwrite, OwnedSession, Record, Update};
pub use store::{ROTATION_MARK_TTL, SessionStore, mint_id};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

/// Re-exported so that backends implement [`SessionStore`] with the same
/// macro version.
pub use async_trait::async_trait;
/// Re-exported: [`Record::data`] is a `Bytes`.
pub use bytes::Bytes;
