//! # store-sled: sessions in an embedded sled database
//!
//! [`SledStore`] keeps server-side sessions on local disk, in an embedded
//! [sled](https://docs.rs/sled/0.34.7) database, and implements the
//! [`SessionStore`](session_core::SessionStore) contract, so a
//! [`SessionManager`](session_core::SessionManager) runs on it as on any
//! other store.
//!
//! **Pick it** for one server process that must keep its sessions across
//! restarts and crashes without running a database server. **Pick another
//! store** when several processes or machines share sessions (Redis or
//! PostgreSQL: a sled database belongs to one process), or when nothing
//! needs to survive a restart (`store-memory`).
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use session_core::{Config, SessionManager};
//! use store_sled::SledStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::Error> {
//! # let dir = tempfile::tempdir().expect("a temporary directory");
//! # let path = dir.path().join("sessions");
//! // `path`: a directory of its own, such as /var/lib/my-app/sessions.
//! let store = SledStore::builder(&path)
//!     .sweeper(Duration::from_secs(60), 1_000) // removes expired sessions
//!     .open()?;
//! let manager = SessionManager::new(Arc::new(store), Config::default())?;
//!
//! let mut session = manager.create(None).await?;
//! session.data_mut().insert("theme", "dark")?;
//! manager.save(&mut session).await?;
//! let token = session.id().clone(); // what the cookie carries
//!
//! // A restart: the last handle closes the database, a new open finds it.
//! drop(manager);
//! let manager = SessionManager::new(Arc::new(SledStore::open(&path)?), Config::default())?;
//! let session = manager.load(&token).await?.expect("sessions survive a restart");
//! assert_eq!(session.data().get::<String>("theme")?.as_deref(), Some("dark"));
//! # Ok(())
//! # }
//! ```
//!
//! `examples/login.rs` walks through a login, a "your devices" listing and
//! a logout (`cargo run -p store-sled --example login`).
//!
//! ## Guarantees
//!
//! - **Atomic and linearizable.** Each operation takes effect at one
//!   instant, and concurrent operations behave as if run one at a time in
//!   an order that agrees with real time; `list_by_owner` and
//!   `delete_by_owner` see the owner's sessions at one instant (the
//!   conformance suite's linearizability checker runs against this store).
//!   It uses no sled transactions, whose process-wide lock in sled 0.34.7
//!   was slow and once deadlocked inside sled: atomicity comes from the
//!   store's own locks and the order of its writes (see
//!   `docs/decisions/0003-sled-without-transactions.md` in the repository).
//! - **Durability** is chosen with [`FlushPolicy`]:
//!   - [`FlushPolicy::EveryWrite`] (the default): an operation that writes
//!     returns only after sled has written and `fsync`ed its log, so an
//!     acknowledged write survives a crash of the process (a writer killed
//!     with `SIGKILL` is tested, `tests/crash.rs`) or of the machine, as far
//!     as the disk honours `fsync`. Concurrent writers share flushes. A
//!     `load` may see a write whose writer is still waiting for its flush.
//!   - [`FlushPolicy::Periodic`]: sled flushes in the background every given
//!     interval; a crash loses at most about the last interval of
//!     acknowledged writes. Dropping the store, or [`SledStore::flush`],
//!     flushes.
//! - **After a restart** (the last handle dropped, the directory opened
//!   again) every session is there. **After a crash** every write the
//!   policy made durable is there, and the database is consistent: every
//!   record decodes and is indexed, and each change of one session is
//!   recovered whole or not at all. An operation that changes several
//!   records can be cut short in its write order: `delete_by_owner` or a
//!   sweep may have removed only some of its sessions (the caller got no
//!   answer and can call again), and a `rotate` cut short leaves the session
//!   unchanged under its old key, as if it had not happened, plus a copy
//!   under the new key that the caller never received (listed for its owner
//!   until it expires, then swept). A crash can also leave index entries
//!   that point at nothing: they cost a little disk, and the sweep and the
//!   owner operations drop them as they meet them
//!   ([`SledStore::verify_indexes`] checks a database,
//!   [`SledStore::leftover_index_entries`] counts them).
//! - **One process, one machine.** sled locks its directory: a second open,
//!   from this process or another, fails with a permanent
//!   [`Error::Backend`]. Share one store instead (it is cheap to clone). It
//!   does not scale out: there is no replication and no sharing between
//!   machines; for several servers use Redis or PostgreSQL.
//! - **Expiry.** An expired session is invisible at once (by the caller's
//!   `now`) and removed by
//!   [`delete_expired`](session_core::SessionStore::delete_expired) or by
//!   the background sweeper ([`SledStoreBuilder::sweeper`]), which stops
//!   when the store is dropped; without either, expired sessions take disk
//!   space until overwritten. The rotation marks that `rotate` leaves behind
//!   are removed the same way once they are no longer in force (they are
//!   never counted as removed sessions).
//! - **Damaged records** give [`Error::Corrupt`] on reads and updates;
//!   `list_by_owner` leaves them out (logging each by its key's short
//!   prefix, never a token or data), so one damaged record never hides an
//!   owner's other sessions; `delete` and `delete_by_owner` still remove
//!   them, and the sweep skips them.
//! - **Refused at open, before anything is written**, as
//!   [`Error::Config`] naming the setting: a `path` that cannot hold a store
//!   (a file, a directory of other files, a sled database of another
//!   application or of an unknown store-sled format: store-sled marks each
//!   database it creates), a cache under 256 bytes, a lock wait too long to
//!   count, a sweeper outside a tokio runtime. A damaged sled database is a
//!   permanent [`Error::Backend`]; see [`SledStoreBuilder::open`].
//! - **Memory**: sled's page cache is set explicitly
//!   ([`DEFAULT_CACHE_CAPACITY`], 64 MiB; sled's own default is 1 GiB).
//!
//! ## What each operation writes
//!
//! A write does only the sled writes it cannot avoid. Expiry-index entries
//! are moved and removed by the sweep alone, so a renewal writes only the
//! record. At most (`tests/interrupted.rs` counts them):
//!
//! | operation | sled reads | sled writes |
//! |---|---|---|
//! | `load`, `was_rotated` | 1 | none |
//! | `touch` | 1 | 1 insert (none if it does not extend the session) |
//! | `update`, `overwrite` | 1 | 1 insert; 1 more if it shortens the expiry; an insert and a removal more if it changes the owner |
//! | `delete` | 1 | 2 removals (the record or mark, its owner entry) |
//! | `create` | 1 | 3 inserts (the record, its expiry and owner entries); a removal more if it replaces an expired session of another owner |
//! | `rotate` | 2 | 5 inserts (the moved record and its two entries, the mark and its expiry entry) and 2 removals (the owner entries of the old session and of an expired one replaced under the new key) |
//!
//! Under [`FlushPolicy::EveryWrite`] an operation that writes then waits
//! for one flush, shared with the writers around it.
//!
//! ## Blocking calls and the async runtime
//!
//! sled is a synchronous library. The point operations (`create`, `load`,
//! `update`, `overwrite`, `touch`, `rotate`, `was_rotated`, `delete`) run
//! inline on the calling task: a plain sled read or write takes
//! microseconds and waits for no flush, and the store's locks are held only
//! inside these synchronous calls, never across an `.await`. What can take
//! long runs on tokio's blocking pool (`spawn_blocking`), or inline when
//! called outside a tokio runtime: the flush that acknowledges a write under
//! [`FlushPolicy::EveryWrite`] (an `fsync`: a fraction of a millisecond
//! usually, seconds at worst), the owner scans (`list_by_owner`,
//! `delete_by_owner`), `delete_expired` and [`SledStore::flush`]. A point
//! operation can still read from disk inline when sled must fetch a page
//! that is not cached. How long each operation holds the thread is measured
//! by `cargo run -p benches --release --bin sled_op_latency -- --quick`;
//! the last results are in the sled section of `benches/README.md`.
//!
//! [`Error::Corrupt`]: session_core::Error::Corrupt
//! [`Error::Backend`]: session_core::Error::Backend
//! [`Error::Config`]: session_core::Error::Config

mod builder;
mod database;
mod error;
mod flush_policy;
mod group_commit;
mod index_keys;
mod locks;
mod record_layout;
mod store;
mod sweeper;
#[cfg(feature = "test-hooks")]
pub mod testing;
mod write_limit;

pub use builder::{DEFAULT_CACHE_CAPACITY, DEFAULT_LOCK_WAIT, SledStoreBuilder};
pub use flush_policy::FlushPolicy;
pub use store::SledStore;
