//! # store-sled: sessions in an embedded sled database
//!
//! [`SledStore`] implements the [`SessionStore`](session_core::SessionStore)
//! contract on [sled](https://docs.rs/sled/0.34.7), an embedded key-value
//! store. Pick it for a single server that must keep its sessions across
//! restarts without running a database server. Pick Redis or PostgreSQL when
//! several processes or machines share sessions, and `store-memory` when
//! nothing needs to survive a restart.
//!
//! ## Layout
//!
//! Three sled trees, always changed together in one sled transaction:
//!
//! - `records`: store key → the record, in a small versioned binary layout
//!   (a format byte first; anything undecodable is [`Error::Corrupt`],
//!   never a panic);
//! - `expiry`: `expires_at` (big-endian, sign bit flipped so byte order is
//!   time order) ++ store key, so the sweep reads expired records in order
//!   from the front of the tree and stops at the first live one;
//! - `owners`: length-prefixed owner ++ store key, plus one generation
//!   counter per owner (see below).
//!
//! ## Guarantees
//!
//! - **Atomic and linearizable.** Each operation is one sled transaction
//!   over the three trees (sled runs transactions under a process-wide lock,
//!   so they are serializable), and `load` is one atomic read. sled cannot
//!   range-scan inside a transaction, so `list_by_owner` and
//!   `delete_by_owner` scan the owner's entries first and then check, in
//!   their transaction, that the owner's generation counter did not move
//!   since; if it did they scan again. Their result is therefore the owner's
//!   sessions at the transaction's instant.
//! - **Durability** is chosen with [`FlushPolicy`]:
//!   - [`FlushPolicy::EveryWrite`] (the default): an operation that writes
//!     returns only after sled has written and `fsync`ed its log. An
//!     acknowledged write survives a crash of the process (tested by killing
//!     a writer with `SIGKILL`, see `tests/crash.rs`) or of the machine, as
//!     far as the disk honours `fsync`. Concurrent writers share flushes
//!     (group commit). A `load` may see a write whose writer is still waiting
//!     for its flush.
//!   - [`FlushPolicy::Periodic`]: sled flushes in the background every given
//!     interval. A crash loses at most about the last interval of
//!     acknowledged writes. Dropping the store, or [`SledStore::flush`],
//!     flushes.
//!
//!   Under both, a reopened database is consistent: each operation is
//!   recovered whole or not at all, and the indexes match the records
//!   ([`SledStore::verify_indexes`] checks it).
//! - **One process only.** sled locks its directory: a second open, from
//!   this process or another, fails with a clear [`Error::Backend`]. Share
//!   one store (it is cheap to clone) instead. It does not scale out; for
//!   several servers use Redis or PostgreSQL.
//! - **Wrong directories are refused untouched**: a file, a directory with
//!   other files, a damaged sled database, or a sled database of another
//!   application (store-sled writes a format marker into each database it
//!   creates).
//! - **Expired records** are invisible at once (by the caller's `now`) and
//!   removed by [`delete_expired`](session_core::SessionStore::delete_expired)
//!   or by the optional background sweeper
//!   ([`SledStoreBuilder::sweeper`]), which stops when the store is dropped.
//!   Without either they take disk space until overwritten.
//! - **Damaged records** give [`Error::Corrupt`] on reads and updates; `delete`
//!   and `delete_by_owner` still remove them, and the sweep skips them.
//! - **Memory**: sled's page cache is set explicitly
//!   ([`DEFAULT_CACHE_CAPACITY`], 64 MiB; sled's own default is 1 GiB).
//!
//! ## Blocking calls and the async runtime
//!
//! sled is a synchronous library. Every operation of this store runs its
//! sled calls on tokio's blocking pool (`spawn_blocking`), or inline when
//! called outside a tokio runtime. We measured before deciding
//! (`examples/op_latency.rs`, release build, 2 shared cores, 200-byte
//! sessions, `FlushPolicy::Periodic` so no operation waits for `fsync`):
//! called inline, a `load` took 2.3–2.8 µs at the median and a transaction
//! (`create`, `update`, `touch`) 25–48 µs, cheap enough for a worker; but
//! with 4 to 32 concurrent tasks the 99th percentile of writes was 1.4–8 ms,
//! the 99.9th 16–32 ms and the worst case 40–120 ms, for loads too. The cause
//! is sled's process-wide transaction lock: a flush (background or
//! requested) holds it while its log write completes, and everything else
//! waits, a `load` included. `fsync` on this disk took 75–110 µs at the
//! median but up to 1–2 s at worst. A tokio worker must not sit in such a
//! wait, so nothing runs inline; `block_in_place` was rejected because it
//! panics on a current-thread runtime. The price, measured the same way
//! with `spawn_blocking`: one task sees a `load` at 12 µs and a write at
//! 80–90 µs at the median (the hand-off costs about 10 µs); 32 tasks see
//! writes at about 2 ms at the median, because 32 pool threads then queue on
//! sled's lock instead of 4 workers. Tokio's workers stay free either way.
//! If throughput under many concurrent writers matters more than worker
//! latency, a bounded pool for sled calls is the next step.
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use session_core::{Record, SessionId, SessionStore, Timestamp};
//! use store_sled::{FlushPolicy, SledStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::Error> {
//! let dir = tempfile::tempdir().expect("a temporary directory");
//! let store = SledStore::builder(dir.path().join("sessions"))
//!     .cache_capacity(16 * 1024 * 1024)
//!     .flush_policy(FlushPolicy::EveryWrite)
//!     .open()?;
//!
//! let now = Timestamp::now();
//! let key = SessionId::generate()?.store_key();
//! let record = Record {
//!     key,
//!     version: 1,
//!     data: Default::default(),
//!     created_at: now,
//!     expires_at: now + Duration::from_secs(1800),
//!     owner: Some("user-42".into()),
//! };
//! store.create(record, now).await?;
//! assert_eq!(store.load(&key, now).await?.map(|r| r.version), Some(1));
//! assert_eq!(store.list_by_owner("user-42", now).await?.len(), 1);
//! assert!(store.load(&key, now + Duration::from_secs(1800)).await?.is_none());
//!
//! // A second open of the same directory is refused while this one lives.
//! assert!(SledStore::open(dir.path().join("sessions")).is_err());
//! drop(store);
//! let reopened = SledStore::open(dir.path().join("sessions"))?;
//! assert_eq!(reopened.load(&key, now).await?.map(|r| r.version), Some(1));
//! # Ok(())
//! # }
//! ```
//!
//! [`Error::Corrupt`]: session_core::Error::Corrupt
//! [`Error::Backend`]: session_core::Error::Backend

mod builder;
mod flush_policy;
mod index_keys;
mod record_layout;
mod sled_error;
mod store;
mod sweeper;
mod transaction;

pub use builder::{DEFAULT_CACHE_CAPACITY, DEFAULT_LOCK_WAIT, SledStoreBuilder};
pub use flush_policy::FlushPolicy;
pub use store::SledStore;
