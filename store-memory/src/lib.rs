//! # store-memory: sessions in this process's memory
//!
//! [`MemoryStore`] implements the [`SessionStore`](session_core::SessionStore) contract in memory. Pick
//! it for a single process (one server, a CLI, a desktop app) and for tests;
//! pick Redis, PostgreSQL or sled when sessions must survive a restart or be
//! shared by several processes.
//!
//! ## Guarantees
//!
//! - **Atomic and linearizable.** Sessions are spread over shards by their
//!   key; each operation holds the lock of the shard(s) it touches for a few
//!   map operations and never across an `.await`, so a short `std`-style
//!   lock (parking_lot) beats an async one. `rotate` locks its two shards in
//!   index order; `list_by_owner` and `delete_by_owner` lock every shard in
//!   index order, so they see one instant. Lock order is always ascending
//!   shard index, so no operation can deadlock another.
//! - **Bounded, and logged-in users come first.** At most
//!   [`MemoryStoreBuilder::max_sessions`] records and rotation marks are
//!   held (default 1,000,000), spread over shards by key. Adding one to a
//!   full shard first evicts, in this order: an expired record (or a
//!   rotation mark no longer in force), then a rotation mark, then the
//!   *anonymous* session (one without an owner) closest to its end, and an
//!   owned (logged-in) session only when the shard holds no anonymous one.
//!   A flood of unauthenticated traffic therefore pushes out only other
//!   anonymous sessions, never a logged-in user, and never grows memory
//!   without bound. Eviction is the one way this store removes a live
//!   session on its own.
//! - **Expired records are reclaimed without scans.** Each shard keeps an
//!   index ordered by expiry; eviction and
//!   [`delete_expired`](session_core::SessionStore::delete_expired) take from its front.
//!   A renewal (`touch`, or a write that moves the expiry later) leaves the
//!   session's index entry where it is, so it costs no index change; the
//!   front is moved on to the renewed expiry when eviction or the sweep
//!   reaches it, so both still go by each session's latest expiry.
//! - **Durability: none.** Everything is lost when the process exits.
//!
//! ```
//! use std::time::Duration;
//! use session_core::{Record, SessionId, SessionStore, Timestamp};
//! use store_memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::Error> {
//! let store = MemoryStore::builder().max_sessions(10_000).build();
//! let now = Timestamp::now();
//! let key = SessionId::generate()?.store_key();
//! store
//!     .create(
//!         Record {
//!             key,
//!             version: 1,
//!             data: Default::default(),
//!             created_at: now,
//!             expires_at: now + Duration::from_secs(1800),
//!             owner: None,
//!         },
//!         now,
//!     )
//!     .await?;
//! assert!(store.load(&key, now).await?.is_some());
//! assert!(store.load(&key, now + Duration::from_secs(1800)).await?.is_none());
//! # Ok(())
//! # }
//! ```

mod builder;
mod shard;
mod store;
#[cfg(feature = "test-hooks")]
pub mod testing;

pub use builder::{DEFAULT_MAX_SESSIONS, MemoryStoreBuilder};
pub use store::MemoryStore;
