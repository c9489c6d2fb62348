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
//! ## Known issue: a deadlock inside sled 0.34.7 under sustained writes
//!
//! On 2026-11-26 a benchmark run (`compare`, 32 tasks updating 256-byte
//! sessions in a 10,000-session store, `FlushPolicy::Periodic(500 ms)`, with
//! two other sled databases open in the same process) hung for good. The
//! stacks show the cycle entirely inside sled: one thread committing a
//! transaction holds sled's process-wide transaction lock and waits in
//! `SegmentAccountant::next` for a log segment; every `sled-io` thread waits
//! on a mutex in `IoBufs::write_to_log`; the log flushers wait for the
//! transaction lock. It did not reproduce in the test suite (the conformance,
//! linearizability, 32-task `update_with` and crash tests pass repeatedly)
//! and earlier benchmark runs of the same workload finished. sled is frozen
//! upstream (no release since 2021). Until this is resolved, prefer this
//! store for modest write rates in one process, and watch for a stalled
//! process; see the project's closing notes for the evidence.
//!
//! ## Blocking calls and the async runtime
//!
//! sled is a synchronous library. `load` runs inline on the calling task.
//! Every write (`create`, `update`, `touch`, `rotate`, `delete`), the owner
//! scans (`list_by_owner`, `delete_by_owner`), `delete_expired` and
//! [`SledStore::flush`] run on tokio's blocking pool (`spawn_blocking`), or
//! inline when called outside a tokio runtime.
//!
//! Why, from sled 0.34.7's source: every tree operation takes one
//! process-wide lock (`concurrency_control.rs`; a `parking_lot` `RwLock`
//! once any transaction has run). Point reads (`Tree::get`) and single-key
//! writes take it in read mode for the call; a transaction takes it in write
//! mode (`TransactionalTrees::stage`) before its closure runs and drops it
//! after its commit (`Transactional::transaction`). `Db::flush`
//! (`pagecache/iobuf.rs`, `flush` → `make_stable`) holds it in read mode
//! until its log write *and* `fsync` are done; sled's periodic flusher
//! (`flusher.rs`) holds it only to seal the log buffer and leaves the write
//! to sled's I/O pool. Hence:
//!
//! - **A transaction waits for any flush in progress**, that is for up to an
//!   `fsync`: 55–100 µs at the median on the test disk, but 1.3–2.2 s at
//!   worst in the runs below. Under [`FlushPolicy::EveryWrite`] every write
//!   ends with such a flush, so writes stay off tokio's workers.
//! - **A `load` never waits for a flush by itself** (both take read mode),
//!   but `parking_lot`'s lock is fair: once a transaction waits for write
//!   mode, new readers queue behind it. So a `load` waits at most for the
//!   transactions queued ahead of it (tens of µs each) and, only when one of
//!   them is itself queued behind a flush, for the rest of that flush: under
//!   `EveryWrite` with concurrent writers, or during an explicit
//!   [`SledStore::flush`] or the final flush at drop. That rare wait of at
//!   most one flush on a worker is the price taken for not paying the
//!   blocking-pool hand-off (about 10 µs) on every read.
//!
//! Measured with `examples/op_latency.rs --quick` (release build, 2 shared
//! cores with a load average of 9–13 from other builds during the runs,
//! 200-byte sessions, `FlushPolicy::Periodic(500 ms)` unless noted),
//! `spawn_blocking` before → inline after; an inline `load`'s latency is
//! also how long it holds the worker:
//!
//! | `load` | p50 | p99 | p99.9 | max |
//! |---|---:|---:|---:|---:|
//! | 1 task, pool | 11.8 µs | 61.9 µs | 190 µs | 3.2 ms |
//! | 1 task, inline | 1.9 µs | 13.7 µs | 61.8 µs | 16 ms |
//! | 32 tasks, pool | 226 µs | 3.9 ms | 10.2 ms | 20.7 ms |
//! | 32 tasks, inline | 2.4 µs | 37.9 µs | 5.0 ms | 16.6 ms |
//! | 1 task beside 4 `EveryWrite` writers, inline | 0.6 µs | 2.5 µs | 45 µs | 0.6 ms |
//! | 32 tasks beside 4 `EveryWrite` writers, inline | 0.6 µs | 2.3 µs | 1.1 ms | 4.2 ms |
//!
//! The millisecond maxima are as large with the pool and, at that machine
//! load, include the thread being descheduled. The benchmark
//! (`benches`, `compare --only load/,update/,mix/`, sled only, two runs each,
//! load average 6–10), before → after: `load` at 1 task 11.3–22.0 →
//! 2.3–3.7 µs (raw sled `get` 1.0–1.8 µs), at 32 tasks 435–465 → 49–55 µs;
//! the 90%-read mix at 1 / 8 / 32 tasks 33–47 / 164–545 / 585–950 →
//! 10–16 / 109–140 / 386–542 µs. Writes, still on the pool, did not
//! measurably change: `update` 48–72 µs at 1 task and 0.9–2.7 ms at 32 tasks,
//! where 32 pool threads queue on sled's lock. A transaction over three
//! trees costs about ten times a plain insert; an `update` that keeps the
//! expiry (as the benchmark's do) no longer rewrites its expiry entry, a
//! gain lost in the noise next to the transaction and the hand-off.
//! `block_in_place` was rejected for writes because it
//! panics on a current-thread runtime. Under [`FlushPolicy::Periodic`] the
//! store itself flushes only in [`SledStore::flush`] and at drop, so writes
//! could perhaps run inline there (sled's segment cleaner and cache misses
//! still do disk I/O under the read lock; not measured yet): the next step
//! if write latency matters.
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
