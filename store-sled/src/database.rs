//! [`Database`]: the open sled database behind a [`SledStore`](crate::SledStore),
//! and the contract's operations on it as plain sled reads and writes.
//!
//! Three sled trees:
//!
//! - `records`: store key → the record, or the *rotation mark* that `rotate`
//!   leaves under the old key, in a small versioned binary layout (see
//!   `record_layout`; anything undecodable is `Error::Corrupt`, never a
//!   panic). This tree is the single source of truth. A mark holds only the
//!   instant `until` which it is in force before; it has no data and no
//!   owner.
//! - `expiry`: `indexed_at` (kept in the record, never later than its
//!   expiry; a mark is always filed under its `until`) ++ store key, in time
//!   order (see `index_keys`). The sweep reads this tree from the front up to
//!   `now`, so it never scans records or marks that cannot be over yet.
//! - `owners`: length-prefixed owner ++ store key (records only).
//!
//! No sled transactions (see `docs/decisions/0003-sled-without-transactions.md`):
//! each operation is atomic under the store's own locks (`locks`), and the
//! indexes stay a superset of the records and marks by the order of the
//! writes (`index_upkeep`). The methods are split by concern:
//!
//! - `ops`: the operations of the contract;
//! - `index_upkeep`: every write, in the order that keeps the indexes a
//!   superset;
//! - `sweep`: `delete_expired`, which also drops leftover index entries;
//! - `check`: the full-scan consistency checks.

mod check;
mod index_upkeep;
mod ops;
mod sweep;

use std::path::{Path, PathBuf};

use session_core::{Error, StoreKey, Timestamp};
use tokio::sync::oneshot;

use crate::error::backend;
use crate::flush_policy::FlushPolicy;
use crate::group_commit::{GroupCommit, Ticket};
use crate::locks::Locks;
use crate::record_layout::{Slot, Stored, decode};
use crate::write_limit::WriteLimit;

const RECORDS_TREE: &[u8] = b"records";
const EXPIRY_TREE: &[u8] = b"expiry";
const OWNERS_TREE: &[u8] = b"owners";

/// The names of the trees a store-sled database holds (besides sled's
/// default tree, which holds the format marker).
pub(crate) const TREE_NAMES: [&[u8]; 3] = [RECORDS_TREE, EXPIRY_TREE, OWNERS_TREE];

/// The open database. The sweeper holds a `Weak` to it, so the database
/// closes when the last [`SledStore`](crate::SledStore) clone is dropped.
pub(crate) struct Database {
    db: sled::Db,
    /// store key -> record or rotation mark (see `record_layout`).
    records: sled::Tree,
    /// sortable(indexed_at) ++ store key -> empty (see `index_keys`).
    expiry: sled::Tree,
    /// length-prefixed owner ++ store key -> empty.
    owners: sled::Tree,
    /// What makes each operation atomic (see `locks`).
    locks: Locks,
    /// The flush policy, and how writes wait for their flush under it.
    commits: GroupCommit,
    /// Consulted before every sled write (see `write_limit`).
    writes: WriteLimit,
    path: PathBuf,
    /// Dropped with the database, which stops the sweeper (if any) at once.
    stop_sweeper: Option<oneshot::Sender<()>>,
}

impl Database {
    /// Opens the store's trees in `db`, an open sled database at `path` that
    /// carries the store-sled marker. `stop_sweeper` is the sender of a
    /// sweeper about to start on this database, if any.
    pub(crate) fn new(
        db: sled::Db,
        path: PathBuf,
        flush: FlushPolicy,
        stop_sweeper: Option<oneshot::Sender<()>>,
    ) -> Result<Self, Error> {
        let tree = |name: &[u8]| db.open_tree(name).map_err(backend);
        Ok(Self {
            records: tree(RECORDS_TREE)?,
            expiry: tree(EXPIRY_TREE)?,
            owners: tree(OWNERS_TREE)?,
            locks: Locks::default(),
            commits: GroupCommit::new(flush),
            writes: WriteLimit::unlimited(),
            path,
            stop_sweeper,
            db,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn flush_policy(&self) -> FlushPolicy {
        self.commits.policy()
    }

    pub(crate) fn has_sweeper(&self) -> bool {
        self.stop_sweeper.is_some()
    }

    /// Records and rotation marks, live or not yet swept.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Writes every pending change to disk and waits for the `fsync`.
    pub(crate) fn flush(&self) -> Result<(), Error> {
        self.db.flush().map(drop).map_err(backend)
    }

    /// What an operation that wrote (or not) must wait for before it is
    /// acknowledged; see [`GroupCommit::ticket`].
    pub(crate) fn ticket(&self, wrote: bool) -> Option<Ticket> {
        self.commits.ticket(wrote)
    }

    /// Returns once the write behind `ticket` is on disk. Blocking.
    pub(crate) fn wait_durable(&self, ticket: Ticket) -> Result<(), Error> {
        self.commits.wait(ticket, &self.db)
    }

    /// [`ticket`](Self::ticket) and [`wait_durable`](Self::wait_durable) in
    /// one, for callers already off the async workers. Blocking.
    pub(crate) fn acknowledge(&self, wrote: bool) -> Result<(), Error> {
        match self.ticket(wrote) {
            Some(ticket) => self.wait_durable(ticket),
            None => Ok(()),
        }
    }

    /// What is stored under `key`: a record (live or not, with its index
    /// position) or a rotation mark; undecodable bytes are
    /// [`Error::Corrupt`]. Call with `key`'s stripe held.
    fn get(&self, key: &StoreKey) -> Result<Option<Slot>, Error> {
        match self.records.get(key.as_bytes()).map_err(backend)? {
            None => Ok(None),
            Some(bytes) => decode(*key, &bytes).map(Some),
        }
    }

    /// The record under `key` if it is a session live at `now`; `None` for
    /// nothing, an expired record or a rotation mark. Call with `key`'s
    /// stripe held.
    fn live_session(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Stored>, Error> {
        Ok(self.get(key)?.and_then(|slot| slot.live_session(now)))
    }

    /// Called before every sled write: refuses it once a test's write limit
    /// is reached (see `write_limit`).
    fn may_write(&self) -> Result<(), Error> {
        self.writes.take_one()
    }
}

/// What the test hooks of [`SledStore`](crate::SledStore) reach into
/// (feature `test-hooks`).
#[cfg(feature = "test-hooks")]
impl Database {
    /// Writes `bytes` as the stored value of `key`, bypassing every check and
    /// index.
    pub(crate) fn overwrite_record_bytes(&self, key: &StoreKey, bytes: &[u8]) -> Result<(), Error> {
        self.records.insert(key.as_bytes(), bytes).map(drop).map_err(backend)
    }

    /// Lets the database make `writes` more sled writes, then refuses every
    /// further one.
    pub(crate) fn stop_writing_after(&self, writes: u64) {
        self.writes.stop_after(writes);
    }
}
