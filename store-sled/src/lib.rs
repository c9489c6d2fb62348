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
//! Three sled trees:
//!
//! - `records`: store key → the record, or the *rotation mark* that
//!   [`rotate`](session_core::SessionStore::rotate) leaves under the old key,
//!   in a small versioned binary layout (a format byte first; anything
//!   undecodable is [`Error::Corrupt`], never a panic). This tree is the
//!   single source of truth. A mark holds only the instant `until` which it
//!   is in force before; it has no data and no owner.
//! - `expiry`: `indexed_at` (big-endian, sign bit flipped so byte order is
//!   time order) ++ store key, where `indexed_at` (kept in the record) is
//!   never later than the record's expiry; a mark is always filed under its
//!   `until`. The sweep reads this tree from the front up to `now`, so it
//!   never scans records or marks that cannot be over yet.
//! - `owners`: length-prefixed owner ++ store key (records only).
//!
//! ## Guarantees
//!
//! - **Atomic and linearizable.** Every operation runs under the store's own
//!   locks, and every change of a record or mark is one atomic sled
//!   `insert` or `remove` of its key, made while the key's lock is held;
//!   `load` and `was_rotated` read under the same lock in read mode.
//!   `rotate` holds both keys' locks, and `list_by_owner`/`delete_by_owner`
//!   hold a lock that keeps sessions from joining an owner while they scan
//!   it, plus the locks of every key they read, so each sees one instant
//!   (the conformance suite's linearizability checker runs against this
//!   store). sled allows one process per database, so these in-process locks
//!   see every writer. See "Why no sled transactions" below.
//! - **Indexes are a superset of the records and marks.** A write adds the
//!   index entries its new record or mark needs, then writes it, then
//!   removes the owner entry only the old value needed; a removal removes
//!   the record or mark first. `rotate` does this twice, in this order: the
//!   moved record under the new key (with the entry of its owner, the old
//!   one or `set_owner`), then the mark over the old record (which drops
//!   the old owner's entry). sled recovers a prefix of its log, so a crash
//!   between two of these steps leaves extra entries, never a record or mark
//!   its indexes miss (`tests/interrupted.rs` stops a store after each sled
//!   write of an operation, reopens it and checks just that). The sweep and
//!   the owner operations read the value behind each entry and drop
//!   leftovers as they meet them; [`SledStore::verify_indexes`] checks the
//!   invariant and [`SledStore::leftover_index_entries`] counts leftovers.
//! - **Writes do only the sled writes they cannot avoid.** Expiry entries
//!   are removed by the sweep alone: a deleted, rotated or re-filed
//!   session's entry (or a deleted or replaced mark's) stays until the sweep
//!   reaches its time (never later than the expiry it was filed for) and
//!   finds it stale. A renewal (`touch`, or an `update` or `overwrite` that
//!   does not shorten the expiry) writes only the record: its expiry entry
//!   stays where it was, and the sweep, on reaching it while the session is
//!   still live, files the session again under its new expiry. So:
//!   - `load` and `was_rotated`: one read;
//!   - `touch`: one read and at most one insert; `update` and `overwrite`:
//!     one read and one insert, plus at most one insert if they shorten the
//!     expiry and up to an insert and a removal (owner entries) if they
//!     change the owner;
//!   - `delete`: one read and up to two removals (record or mark, owner
//!     entry);
//!   - `create`: one read and up to three inserts (record, expiry entry,
//!     owner entry), plus a removal if it replaces an expired record of
//!     another owner;
//!   - `rotate`: two reads, up to five inserts (the moved record and its
//!     expiry and owner entries, the mark and its expiry entry) and up to
//!     two removals (the owner entries of the old record and of an expired
//!     record it replaces under the new key).
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
//!   Under both, a reopened database is consistent: every record and mark
//!   decodes and is indexed, and each change of one record or mark is
//!   recovered whole or not at all; besides that a crash leaves only
//!   leftover index entries. An operation that changes several records can
//!   be cut short in its write order: `delete_by_owner` or a sweep may have
//!   removed only some of its records (the caller got no answer, and can
//!   call it again), and a `rotate` interrupted after writing the new record
//!   and before replacing the old one with its mark leaves the session under
//!   the old key unchanged and no mark, as if the rotation had not happened,
//!   plus a copy under the new key (with the owner the rotation gave it),
//!   which the caller never received: it is listed for that owner until it
//!   expires, and then swept like any other.
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
//!   Without either they take disk space until overwritten. Rotation marks
//!   likewise: `was_rotated` is false once a mark's `until` has passed, and
//!   the first sweep at or after that time removes the mark (marks are never
//!   counted in what `delete_expired` returns).
//! - **Damaged records** give [`Error::Corrupt`] on reads and updates;
//!   `list_by_owner` leaves them out (logging each with the key's short
//!   prefix, never a token or data) so one damaged record never hides an
//!   owner's other sessions; `delete` and `delete_by_owner` still remove
//!   them, and the sweep skips them.
//! - **Memory**: sled's page cache is set explicitly
//!   ([`DEFAULT_CACHE_CAPACITY`], 64 MiB; sled's own default is 1 GiB).
//!
//! ## Why no sled transactions
//!
//! Until 2026-11-26 every operation was one sled transaction over the three
//! trees. Two findings in sled 0.34.7 (the last release; sled is frozen)
//! made us drop them:
//!
//! - **A process-wide lock.** The first transaction (or `apply_batch`) in a
//!   process switches sled's `concurrency_control` into a mode where every
//!   tree operation of *every* sled database in the process takes one global
//!   `RwLock`: reads and single-key writes in read mode, transactions in
//!   write mode, and `Db::flush` holds read mode through its `fsync`. So a
//!   transaction waited for any flush in progress, and every operation
//!   queued behind a waiting transaction. A transaction over three trees
//!   cost about ten times a plain insert (callgrind: 33–49k instructions
//!   against about 4k).
//! - **A deadlock.** A benchmark run (32 tasks updating sessions, three
//!   sled databases open in one process) hung for good inside sled: a
//!   committing transaction held that global lock and waited in
//!   `SegmentAccountant::next`, every `sled-io` thread waited on a mutex in
//!   `IoBufs::write_to_log`, and the log flushers waited for the global
//!   lock. It did not reproduce in the test suite nor in five later runs.
//!
//! Without transactions the global lock is never switched on (as long as
//! nothing else in the process uses sled transactions or `apply_batch`; if
//! something does, this store still works, at the cost above), writes are
//! plain inserts, and atomicity comes from the store's own locks plus the
//! write order above.
//!
//! ## Blocking calls and the async runtime
//!
//! sled is a synchronous library. The point operations (`create`, `load`,
//! `update`, `overwrite`, `touch`, `rotate`, `was_rotated`, `delete`) run
//! inline on the calling task: a
//! plain sled read or write takes microseconds and waits for no flush. The
//! store's locks are held only inside these synchronous calls, never across
//! an `.await`. What can take long runs on tokio's blocking pool
//! (`spawn_blocking`), or inline when called outside a tokio runtime: the
//! flush that acknowledges a write under [`FlushPolicy::EveryWrite`] (an
//! `fsync`: 55–100 µs at the median on the test disk, seconds at worst),
//! the owner scans (`list_by_owner`, `delete_by_owner`), `delete_expired`
//! and [`SledStore::flush`]. A point operation can still do disk I/O
//! inline when sled must read a page that is not cached.
//!
//! Measured with `cargo run --release -p store-sled --example op_latency --
//! --quick` (2 shared cores with other builds running; 200-byte sessions,
//! `FlushPolicy::Periodic(500 ms)` unless noted); the latency of an inline
//! operation is also how long it holds the worker:
//!
//! | operation | p50 | p99 | p99.9 | max |
//! |---|---:|---:|---:|---:|
//! | `create`, 1 task | 10.4 µs | 162 µs | 4.3 ms | 16.1 ms |
//! | `load`, 1 task | 1.2 µs | 4.2 µs | 41 µs | 185 µs |
//! | `update`, 1 task | 7.1 µs | 103 µs | 569 µs | 4.8 ms |
//! | `touch`, 1 task | 3.9 µs | 50 µs | 159 µs | 5.3 ms |
//! | `create`, 32 tasks | 12.8 µs | 2.0 ms | 7.3 ms | 12.2 ms |
//! | `load`, 32 tasks | 1.7 µs | 173 µs | 5.6 ms | 11.7 ms |
//! | `update`, 32 tasks | 7.4 µs | 783 µs | 6.4 ms | 14.7 ms |
//! | `touch`, 32 tasks | 4.7 µs | 699 µs | 5.7 ms | 12.2 ms |
//! | `load`, 1 task beside 4 `EveryWrite` writers | 0.5 µs | 2.3 µs | 27 µs | 0.6 ms |
//! | `load`, 32 tasks beside 4 `EveryWrite` writers | 0.7 µs | 3.2 µs | 102 µs | 5.0 ms |
//!
//! The same run measured `fsync` (a `flush` after one write) at 110–147 µs
//! p50 and up to 10 ms. The tails at 32 tasks include tasks descheduled on
//! a loaded machine. With the sled transactions of the earlier design, on
//! the same example, `update` took 48–72 µs at 1 task on the blocking pool
//! (and `load` 1.9 µs inline, 11.8 µs through the pool).
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
mod locks;
mod record_layout;
mod sled_error;
mod store;
mod sweeper;

pub use builder::{DEFAULT_CACHE_CAPACITY, DEFAULT_LOCK_WAIT, SledStoreBuilder};
pub use flush_policy::FlushPolicy;
pub use store::SledStore;
