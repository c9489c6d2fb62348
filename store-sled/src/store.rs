//! [`SledStore`]: the contract's operations as plain sled reads and writes
//! under the store's own locks (see `locks`), with indexes kept as a superset
//! of the records and rotation marks (see [`Inner::replace`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use session_core::{
    Error, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, SessionStore, StoreKey, Timestamp, Update, async_trait,
};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::builder::SledStoreBuilder;
use crate::flush_policy::FlushPolicy;
use crate::index_keys::{expiry_key, owner_key, owner_prefix, parse_expiry_key, sortable};
use crate::locks::Locks;
use crate::record_layout::{Mark, Slot, Stored, decode, encode, encode_mark};
use crate::sled_error::backend;

/// How many expiry-index entries `delete_expired` reads per range scan.
const SWEEP_BATCH: usize = 128;

/// A session store in an embedded sled database. Cheap to clone: clones share
/// the database.
///
/// See the [crate docs](crate) for its guarantees.
#[derive(Clone)]
pub struct SledStore {
    pub(crate) inner: Arc<Inner>,
    /// The sweeper task, if any, for [`SledStore::sweeper_task_for_tests`].
    /// Stopping it is `Inner`'s job, so that it stops with the database.
    pub(crate) sweeper: Option<AbortHandle>,
}

/// The open database. The sweeper holds a `Weak` to this, so the database
/// closes when the last [`SledStore`] clone is dropped.
pub(crate) struct Inner {
    pub(crate) db: sled::Db,
    /// store key -> record or rotation mark (see `record_layout`).
    pub(crate) records: sled::Tree,
    /// sortable(indexed_at) ++ store key -> empty (see `index_keys`).
    pub(crate) expiry: sled::Tree,
    /// length-prefixed owner ++ store key -> empty.
    pub(crate) owners: sled::Tree,
    /// What makes each operation atomic (see `locks`).
    pub(crate) locks: Locks,
    pub(crate) flush: FlushPolicy,
    /// Group commit under `FlushPolicy::EveryWrite`: writes committed so far
    /// (a ticket each), and the highest ticket known to be on disk.
    pub(crate) committed: AtomicU64,
    pub(crate) durable: AtomicU64,
    /// One flush at a time; writers that arrive meanwhile share the next one.
    pub(crate) flushing: Mutex<()>,
    /// How many more sled writes the store may make (`u64::MAX`: no limit).
    /// Only [`SledStore::stop_writing_after_for_tests`] lowers it.
    pub(crate) writes_left: AtomicU64,
    pub(crate) path: PathBuf,
    /// Dropped with the store, which stops the sweeper (if any) at once.
    pub(crate) _stop_sweeper: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.inner.path)
            .field("flush", &self.inner.flush)
            .field("sweeper", &self.sweeper.is_some())
            .finish()
    }
}

impl SledStore {
    /// A builder for a store in the directory `path` (created if missing).
    pub fn builder(path: impl AsRef<Path>) -> SledStoreBuilder {
        SledStoreBuilder::new(path.as_ref().to_path_buf())
    }

    /// Opens (or creates) a store in `path` with the default settings: see
    /// [`SledStoreBuilder`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::builder(path).open()
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The flush policy the store was opened with.
    pub fn flush_policy(&self) -> FlushPolicy {
        self.inner.flush
    }

    /// How many records and rotation marks are stored, live (in force) or
    /// not yet swept. (Counting the marks apart would take a scan.)
    pub fn len(&self) -> usize {
        self.inner.records.len()
    }

    /// Whether no records and no rotation marks are stored.
    pub fn is_empty(&self) -> bool {
        self.inner.records.is_empty()
    }

    /// Writes every pending change to disk and waits for the `fsync`. Useful
    /// under [`FlushPolicy::Periodic`] before a planned shutdown.
    pub async fn flush(&self) -> Result<(), Error> {
        self.off_the_workers(|inner| inner.db.flush().map(drop).map_err(backend))
            .await
    }

    /// Reads the whole database and checks what the store relies on: every
    /// record decodes, has its expiry entry (filed no later than its expiry)
    /// and, if owned, its owner entry; every rotation mark decodes and has
    /// its expiry entry (filed under its `until`); every index entry is well
    /// formed. Returns the number of records (marks are checked, not
    /// counted). A full scan: for tests and offline checks of a quiescent
    /// store (concurrent writes can show as false alarms).
    ///
    /// Index entries without a matching record are allowed: a crash in the
    /// middle of an operation can leave them, and they are dropped when the
    /// sweep or an owner operation meets them. Count them with
    /// [`leftover_index_entries`](Self::leftover_index_entries).
    ///
    /// Errors: [`Error::Corrupt`] naming the first inconsistency or
    /// undecodable record.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::{Record, SessionId, SessionStore, Timestamp};
    /// use store_sled::SledStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::Error> {
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let store = SledStore::open(dir.path().join("sessions"))?;
    /// let now = Timestamp::now();
    /// let key = SessionId::generate()?.store_key();
    /// let record = Record {
    ///     key,
    ///     version: 1,
    ///     data: Default::default(),
    ///     created_at: now,
    ///     expires_at: now + Duration::from_secs(60),
    ///     owner: Some("user-7".into()),
    /// };
    /// store.create(record, now).await?;
    /// assert_eq!(store.verify_indexes()?, 1);
    ///
    /// // A deleted session's expiry entry waits for the sweep.
    /// store.delete(&key, now).await?;
    /// assert_eq!(store.leftover_index_entries()?, 1);
    /// store.delete_expired(now + Duration::from_secs(60), 100).await?;
    /// assert_eq!(store.leftover_index_entries()?, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify_indexes(&self) -> Result<u64, Error> {
        self.inner.verify_indexes()
    }

    /// Counts index entries that match no record or mark. Expiry entries of
    /// deleted, rotated or re-filed sessions, and of deleted or replaced
    /// marks, are left for the sweep, which drops each when its time comes
    /// (never later than the expiry it was filed for); owner entries only
    /// remain after a crash in the middle of an operation or the deletion of
    /// a damaged record, until an owner operation meets them. They cost a
    /// little disk and nothing else. A full scan, like
    /// [`verify_indexes`](Self::verify_indexes).
    ///
    /// Errors: [`Error::Corrupt`] for a malformed index entry.
    pub fn leftover_index_entries(&self) -> Result<u64, Error> {
        self.inner.leftover_index_entries()
    }

    /// Writes `bytes` as the stored value of `key`, bypassing every check and
    /// index. For tests of damaged storage only.
    #[doc(hidden)]
    pub fn overwrite_record_bytes_for_tests(&self, key: &StoreKey, bytes: &[u8]) -> Result<(), Error> {
        self.inner
            .records
            .insert(key.as_bytes(), bytes)
            .map(drop)
            .map_err(backend)
    }

    /// Lets the store make `writes` more sled writes (inserts and removals in
    /// any tree), then refuses every further one with [`Error::Backend`].
    /// sled recovers a prefix of its log after a crash, so a store stopped
    /// after *k* writes of an operation, flushed and reopened, holds what a
    /// crash after those *k* writes can leave: tests walk every *k* to check
    /// the write order. For tests only.
    #[doc(hidden)]
    pub fn stop_writing_after_for_tests(&self, writes: u64) {
        self.inner.writes_left.store(writes, Ordering::SeqCst);
    }

    /// A handle on the background sweeper's task (`None` without a sweeper),
    /// so that tests can check deterministically that it runs and that it
    /// ends once the last handle of the store is dropped. For tests only.
    #[doc(hidden)]
    pub fn sweeper_task_for_tests(&self) -> Option<AbortHandle> {
        self.sweeper.clone()
    }

    /// Runs `op` on tokio's blocking pool when there is a runtime, inline
    /// otherwise: for the scans (owner operations, the sweep) and for the
    /// flush that acknowledges a write under [`FlushPolicy::EveryWrite`].
    /// Point operations run inline. See "Blocking calls" in the crate docs.
    async fn off_the_workers<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let inner = Arc::clone(&self.inner);
                runtime
                    .spawn_blocking(move || op(&inner))
                    .await
                    .map_err(|e| Error::backend_transient(format!("sled operation task failed: {e}")))?
            }
            Err(_) => op(&self.inner),
        }
    }
}

/// Where a rewritten record's expiry-index entry goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Filing {
    /// Keep the entry of the record it replaces when that one is still early
    /// enough (never later than the new expiry): a renewal then writes only
    /// the record, and the sweep moves the entry when it reaches it.
    Keep,
    /// File the record under its own expiry (a new session, a replaced
    /// expired one or mark, a rotated one).
    Fresh,
}

/// Where a stored value (a record or a rotation mark) is filed in the
/// indexes: all that index upkeep needs to know of the value a write
/// replaces or a removal removes.
#[derive(Clone, Copy)]
struct Filed<'a> {
    /// Its expiry-index entry is `expiry_key(indexed_at, key)`.
    indexed_at: Timestamp,
    /// Its owner-index entry, if any, is `owner_key(owner, key)`.
    owner: Option<&'a str>,
}

impl<'a> Filed<'a> {
    fn of(slot: &'a Slot) -> Self {
        Self {
            indexed_at: slot.indexed_at(),
            owner: slot.owner(),
        }
    }

    fn of_session(stored: &'a Stored) -> Self {
        Self {
            indexed_at: stored.indexed_at,
            owner: stored.record.owner.as_deref(),
        }
    }
}

impl Inner {
    /// Called after an operation that wrote: under
    /// [`FlushPolicy::EveryWrite`], returns once that write is on disk.
    ///
    /// Group commit: the writer takes a ticket after its write; whoever
    /// holds `flushing` flushes everything written up to then, so writers
    /// waiting behind it usually find their ticket already durable. sled's
    /// own `flush_async` is not used: it runs flushes on sled's small I/O
    /// pool, and with many concurrent writers every pool thread ends up in a
    /// flush waiting for a log write queued behind them on the same pool, a
    /// deadlock we hit in the conformance suite.
    pub(crate) fn acknowledge(&self, wrote: bool) -> Result<(), Error> {
        if !wrote || self.flush != FlushPolicy::EveryWrite {
            return Ok(());
        }
        let ticket = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // A poisoned lock only means another flush panicked; the counters
        // stay valid, so carry on.
        let _one_flush = self.flushing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let target = self.committed.load(Ordering::SeqCst);
        self.db.flush().map_err(backend)?;
        self.durable.fetch_max(target, Ordering::SeqCst);
        Ok(())
    }

    // ---- the trees, one plain sled call each --------------------------------

    /// Called before every sled write: refuses it once a test's limit is
    /// reached (see [`SledStore::stop_writing_after_for_tests`]). Without a
    /// limit, one atomic load.
    fn may_write(&self) -> Result<(), Error> {
        let counted = self
            .writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                u64::MAX => None,
                0 => None,
                left => Some(left - 1),
            });
        match counted {
            Err(0) => Err(Error::backend_permanent("sled store: writes stopped by a test")),
            _ => Ok(()),
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

    fn add_expiry_entry(&self, at: Timestamp, key: &StoreKey) -> Result<(), Error> {
        self.may_write()?;
        self.expiry
            .insert(expiry_key(at, key), &[][..])
            .map(drop)
            .map_err(backend)
    }

    fn remove_expiry_entry(&self, at: Timestamp, key: &StoreKey) -> Result<(), Error> {
        self.may_write()?;
        self.expiry.remove(expiry_key(at, key)).map(drop).map_err(backend)
    }

    fn add_owner_entry(&self, owner: &str, key: &StoreKey) -> Result<(), Error> {
        self.may_write()?;
        self.owners
            .insert(owner_key(owner, key)?, &[][..])
            .map(drop)
            .map_err(backend)
    }

    fn remove_owner_entry(&self, owner: &str, key: &StoreKey) -> Result<(), Error> {
        self.may_write()?;
        self.owners.remove(owner_key(owner, key)?).map(drop).map_err(backend)
    }

    /// Writes `record` over `old` (where what is stored under the same key
    /// now, as read under the key's stripe, is filed), in the order of
    /// [`replace`](Self::replace).
    ///
    /// Call with the key's stripe held in write mode, and with the gate in
    /// read mode if `record` has an owner that `old` does not have.
    fn write_record(&self, record: &Record, old: Option<Filed<'_>>, filing: Filing) -> Result<(), Error> {
        let indexed_at = match old {
            Some(old) if filing == Filing::Keep && old.indexed_at <= record.expires_at => old.indexed_at,
            _ => record.expires_at,
        };
        let new = Filed {
            indexed_at,
            owner: record.owner.as_deref(),
        };
        self.replace(&record.key, &encode(record, indexed_at)?, new, old)
    }

    /// Writes a rotation mark under `key` over `old` (the session rotated
    /// away), filed under its `until`, in the order of
    /// [`replace`](Self::replace). Call with the key's stripe held in write
    /// mode.
    fn write_mark(&self, key: &StoreKey, mark: Mark, old: Filed<'_>) -> Result<(), Error> {
        let new = Filed {
            indexed_at: mark.until,
            owner: None,
        };
        self.replace(key, &encode_mark(&mark), new, Some(old))
    }

    /// Stores `value` (filed as `new`) under `key` over `old`, keeping the
    /// indexes a superset of the truth at every step, so that a crash
    /// between two steps leaves only extra entries, never a record or mark
    /// its indexes miss:
    ///
    /// 1. add the entries the new value needs;
    /// 2. write the value (one atomic sled insert: the operation's
    ///    linearization point, and the all-or-nothing point for a crash);
    /// 3. remove the owner entry only the old value needed.
    ///
    /// Expiry entries are never removed here: an entry that no longer matches
    /// its value is dropped by the sweep when its time comes (it is never
    /// later than the expiry it was filed for), which keeps a write on the
    /// request path to the sled writes it cannot avoid.
    fn replace(&self, key: &StoreKey, value: &[u8], new: Filed<'_>, old: Option<Filed<'_>>) -> Result<(), Error> {
        let owner_changed = old.is_none_or(|old| old.owner != new.owner);
        if old.is_none_or(|old| old.indexed_at != new.indexed_at) {
            self.add_expiry_entry(new.indexed_at, key)?;
        }
        if let Some(owner) = new.owner.filter(|_| owner_changed) {
            self.add_owner_entry(owner, key)?;
        }
        self.may_write()?;
        self.records.insert(key.as_bytes(), value).map_err(backend)?;
        if let Some(owner) = old.and_then(|old| old.owner).filter(|_| owner_changed) {
            self.remove_owner_entry(owner, key)?;
        }
        Ok(())
    }

    /// Removes the record or mark under `key`, filed as `old` (as read under
    /// the key's stripe, held in write mode): the value first, then its owner
    /// entry, for the same reason as in [`replace`](Self::replace). Its
    /// expiry entry is left to the sweep, like every expiry entry.
    fn remove(&self, key: &StoreKey, old: Filed<'_>) -> Result<(), Error> {
        self.may_write()?;
        self.records.remove(key.as_bytes()).map_err(backend)?;
        if let Some(owner) = old.owner {
            self.remove_owner_entry(owner, key)?;
        }
        Ok(())
    }

    /// Removes whatever is stored under `key` without decoding it (it may be
    /// damaged). Its index entries cannot be found without the record; the
    /// owner operations and the sweep drop them when they meet them.
    fn remove_undecoded(&self, key: &StoreKey) -> Result<(), Error> {
        tracing::warn!(key = %key.short(), "removing a damaged sled record");
        self.may_write()?;
        self.records.remove(key.as_bytes()).map(drop).map_err(backend)
    }

    /// The keys the owner index lists for `owner`. Call with the gate held in
    /// write mode, so that the list is complete until it is released.
    fn owner_keys(&self, owner: &str) -> Result<Vec<StoreKey>, Error> {
        let prefix = owner_prefix(owner)?;
        let mut keys = Vec::new();
        for entry in self.owners.scan_prefix(&prefix).keys() {
            let entry = entry.map_err(backend)?;
            // Anything else under the prefix (an old generation counter) is
            // not an entry.
            if entry.len() == prefix.len() + 32 {
                keys.push(StoreKey::from_slice(&entry[prefix.len()..])?);
            }
        }
        Ok(keys)
    }

    // ---- the operations -----------------------------------------------------

    fn create(&self, record: &Record, now: Timestamp) -> Result<(), Error> {
        let record = Record {
            version: 1,
            ..record.clone()
        };
        let _gate = record.owner.is_some().then(|| self.locks.adding_owner_entries());
        let _stripe = self.locks.write(&record.key);
        let old = self.get(&record.key)?;
        if old.as_ref().is_some_and(|old| old.is_live_session(now)) {
            return Err(Error::AlreadyExists);
        }
        // An expired record or a rotation mark is replaced.
        self.write_record(&record, old.as_ref().map(Filed::of), Filing::Fresh)
    }

    fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        let _stripe = self.locks.read(key);
        Ok(self.live_session(key, now)?.map(|s| s.record))
    }

    /// `update` (`expected_version` given) and `overwrite` (none): writes
    /// `write` over the live session under `key` and returns its new version.
    fn write_live(
        &self,
        key: &StoreKey,
        expected_version: Option<u64>,
        write: Overwrite,
        now: Timestamp,
    ) -> Result<u64, Error> {
        let _gate = write.owner.is_some().then(|| self.locks.adding_owner_entries());
        let _stripe = self.locks.write(key);
        let Some(old) = self.live_session(key, now)? else {
            return Err(Error::NotFound);
        };
        if let Some(expected) = expected_version
            && old.record.version != expected
        {
            return Err(Error::Conflict {
                current: old.record.version,
            });
        }
        // Only a damaged record can be at the maximum: refuse, write nothing.
        let Some(version) = old.record.version.checked_add(1) else {
            return Err(Error::Corrupt(format!(
                "sled record {}: version at its maximum",
                key.short()
            )));
        };
        let new = Record {
            key: *key,
            version,
            data: write.data,
            created_at: old.record.created_at,
            expires_at: write.expires_at,
            owner: write.owner,
        };
        self.write_record(&new, Some(Filed::of_session(&old)), Filing::Keep)?;
        Ok(version)
    }

    /// Returns (live, wrote).
    fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<(bool, bool), Error> {
        let _stripe = self.locks.write(key);
        let Some(old) = self.live_session(key, now)? else {
            return Ok((false, false));
        };
        if expires_at <= old.record.expires_at {
            return Ok((true, false));
        }
        let new = Record {
            expires_at,
            ..old.record.clone()
        };
        self.write_record(&new, Some(Filed::of_session(&old)), Filing::Keep)?;
        Ok((true, true))
    }

    /// Writes the moved record under the new key first and replaces the old
    /// one with a rotation mark second: a crash in between leaves the
    /// session under both keys (and no mark), as if the rotation had not
    /// happened, plus a copy under a key nobody was given (it expires and is
    /// swept like any other). Owner entries follow the write order of
    /// [`replace`](Self::replace): the new owner's entry (`set_owner`, or the
    /// old owner) is added before the moved record is written, the old
    /// owner's entry removed after the mark is.
    fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let _gate = self.locks.adding_owner_entries();
        let _stripes = self.locks.write_all([old_key, new_key]);
        let Some(old) = self.live_session(old_key, now)? else {
            return Err(Error::NotFound);
        };
        let taken = self.get(new_key)?;
        if old_key == new_key || taken.as_ref().is_some_and(|s| s.is_live_session(now)) {
            return Err(Error::AlreadyExists);
        }
        let moved = Record {
            key: *new_key,
            version: 1,
            data: old.record.data.clone(),
            created_at: old.record.created_at,
            expires_at: old.record.expires_at,
            owner: set_owner.map(str::to_owned).or_else(|| old.record.owner.clone()),
        };
        // An expired record or a rotation mark under the new key is replaced.
        self.write_record(&moved, taken.as_ref().map(Filed::of), Filing::Fresh)?;
        let mark = Mark {
            until: old.record.expires_at.min(now + ROTATION_MARK_TTL),
        };
        self.write_mark(old_key, mark, Filed::of_session(&old))?;
        Ok(moved)
    }

    fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let _stripe = self.locks.read(key);
        Ok(matches!(self.get(key)?, Some(Slot::Mark(mark)) if mark.until.is_live_at(now)))
    }

    /// Returns (was live, wrote). Removes a record or a mark alike. Removing
    /// needs no decoding: a damaged record is removed too (reported as not
    /// live), so a session can always be ended.
    fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<(bool, bool), Error> {
        let _stripe = self.locks.write(key);
        match self.get(key) {
            Ok(None) => Ok((false, false)),
            Ok(Some(old)) => {
                self.remove(key, Filed::of(&old))?;
                Ok((old.is_live_session(now), true))
            }
            Err(Error::Corrupt(_)) => {
                self.remove_undecoded(key)?;
                Ok((false, true))
            }
            Err(e) => Err(e),
        }
    }

    /// The owner's live sessions at one instant: with the gate in write mode
    /// no session can join the owner or move to another key, and with the
    /// listed keys' stripes held no listed record can change, while the
    /// records are read.
    ///
    /// A damaged record is left out and logged (by its key's prefix, never
    /// its bytes): one unreadable record must not hide the owner's other
    /// sessions from a "your devices" page. Ending it is `delete_by_owner`'s
    /// job; a read never writes.
    fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        let _gate = self.locks.scanning_owner_entries();
        let keys = self.owner_keys(owner)?;
        let _stripes = self.locks.read_all(&keys);
        let mut live = Vec::with_capacity(keys.len());
        for key in &keys {
            let session = match self.live_session(key, now) {
                Ok(session) => session,
                Err(Error::Corrupt(e)) => {
                    tracing::warn!(key = %key.short(), error = %e, "sled list_by_owner skipped a damaged record");
                    continue;
                }
                Err(e) => return Err(e),
            };
            // A leftover entry (its record is gone, has another owner or is
            // a rotation mark now) is skipped; `delete_by_owner` removes such
            // entries.
            if let Some(r) = session.map(|s| s.record).filter(|r| r.owner.as_deref() == Some(owner)) {
                live.push(OwnedSession {
                    key: r.key,
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                });
            }
        }
        Ok(live)
    }

    /// Returns (live removed, wrote). Atomic like `list_by_owner`. Like
    /// `delete`, removes damaged records too (not counted), and drops
    /// leftover entries: ending every session of an owner must not stop at
    /// one unreadable record.
    fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<(u64, bool), Error> {
        let _gate = self.locks.scanning_owner_entries();
        let keys = self.owner_keys(owner)?;
        let _stripes = self.locks.write_all(&keys);
        let mut live = 0;
        for key in &keys {
            match self.get(key) {
                Ok(Some(Slot::Session(stored))) if stored.record.owner.as_deref() == Some(owner) => {
                    self.remove(key, Filed::of_session(&stored))?;
                    live += u64::from(stored.record.is_live_at(now));
                }
                Err(Error::Corrupt(_)) => {
                    self.remove_undecoded(key)?;
                    self.remove_owner_entry(owner, key)?;
                }
                Err(e) => return Err(e),
                // A leftover entry: its record is gone, has another owner, or
                // is a rotation mark now (which owns nothing and stays).
                Ok(_) => self.remove_owner_entry(owner, key)?,
            }
        }
        Ok((live, !keys.is_empty()))
    }

    /// Walks the expiry index from its start (the soonest entry) up to
    /// `now`, in batches, and handles each entry under its key's stripe:
    ///
    /// - its record is still expired: remove the record and its entries
    ///   (compare-and-delete: a record renewed since the scan stays);
    /// - its record is live (renewed since it was filed): file it again under
    ///   its expiry, so that renewals need not move entries themselves;
    /// - its rotation mark is no longer in force: remove the mark and its
    ///   entry (not counted: a mark is not a session);
    /// - nothing, or a record or mark filed elsewhere: a leftover, dropped;
    /// - a damaged record: skipped (left for `load` to report).
    ///
    /// Returns how many expired records it removed, at most `limit`.
    pub(crate) fn delete_expired_blocking(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        // Every entry filed at or before now sorts at or below this key.
        let mut upper = sortable(now).to_vec();
        upper.extend_from_slice(&[0xff; 32]);
        let mut cursor: Vec<u8> = Vec::new();
        let mut removed: u64 = 0;
        loop {
            if usize::try_from(removed).unwrap_or(usize::MAX) >= limit {
                return Ok(removed);
            }
            let mut batch = Vec::new();
            for entry in self
                .expiry
                .range(cursor.clone()..=upper.clone())
                .keys()
                .take(SWEEP_BATCH)
            {
                batch.push(entry.map_err(backend)?);
            }
            let Some(last) = batch.last() else {
                return Ok(removed);
            };
            // Continue strictly after the last entry seen, so entries skipped
            // below (damaged records) are not read again.
            cursor = last.to_vec();
            cursor.push(0);
            for entry in &batch {
                if usize::try_from(removed).unwrap_or(usize::MAX) >= limit {
                    return Ok(removed);
                }
                removed += u64::from(self.sweep_entry(entry, now)?);
            }
        }
    }

    /// One expiry entry of the sweep; returns whether it removed an expired
    /// record.
    fn sweep_entry(&self, entry: &[u8], now: Timestamp) -> Result<bool, Error> {
        let (at, key) = match parse_expiry_key(entry) {
            Ok(parsed) => parsed,
            Err(e) => {
                // Not an entry this crate writes: it can only be in the way.
                tracing::warn!(error = %e, "sled sweep dropped a malformed expiry entry");
                self.may_write()?;
                self.expiry.remove(entry).map_err(backend)?;
                return Ok(false);
            }
        };
        let _stripe = self.locks.write(&key);
        let slot = match self.get(&key) {
            Ok(Some(slot)) => slot,
            Ok(None) => {
                self.remove_expiry_entry(at, &key)?;
                return Ok(false);
            }
            Err(Error::Corrupt(e)) => {
                // Garbage collection must not stall on one damaged record.
                tracing::warn!(error = %e, "sled sweep skipped a damaged record");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if slot.indexed_at() != at {
            self.remove_expiry_entry(at, &key)?;
            return Ok(false);
        }
        let removed = match &slot {
            Slot::Session(stored) if !stored.record.is_live_at(now) => {
                self.remove(&key, Filed::of(&slot))?;
                true
            }
            Slot::Session(stored) => {
                self.write_record(&stored.record, Some(Filed::of(&slot)), Filing::Fresh)?;
                false
            }
            // Compare-and-delete, as for records. A mark is filed under its
            // `until` and the walk stops at `now`, so this is never met; if
            // it were, the entry is the mark's own and must stay.
            Slot::Mark(mark) if mark.until.is_live_at(now) => return Ok(false),
            Slot::Mark(_) => {
                self.remove(&key, Filed::of(&slot))?;
                false
            }
        };
        // Last, like every removal of an entry: after the value it served.
        self.remove_expiry_entry(at, &key)?;
        Ok(removed)
    }

    /// See [`SledStore::verify_indexes`].
    fn verify_indexes(&self) -> Result<u64, Error> {
        let corrupt = |why: String| Error::Corrupt(format!("sled index check: {why}"));
        let mut records = 0u64;
        for item in self.records.iter() {
            let (key, bytes) = item.map_err(backend)?;
            let key = StoreKey::from_slice(&key)?;
            let slot = decode(key, &bytes)?;
            // Marks are checked like records but not counted.
            records += u64::from(matches!(slot, Slot::Session(_)));
            if !self
                .expiry
                .contains_key(expiry_key(slot.indexed_at(), &key))
                .map_err(backend)?
            {
                return Err(corrupt(format!("record {} has no expiry entry", key.short())));
            }
            if let Some(owner) = slot.owner()
                && !self.owners.contains_key(owner_key(owner, &key)?).map_err(backend)?
            {
                return Err(corrupt(format!("record {} has no owner entry", key.short())));
            }
        }
        for entry in self.expiry.iter().keys() {
            let entry = entry.map_err(backend)?;
            parse_expiry_key(&entry).map_err(|e| corrupt(e.to_string()))?;
        }
        for entry in self.owners.iter().keys() {
            let entry = entry.map_err(backend)?;
            let owner_len = entry
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| corrupt("owner entry shorter than its length prefix".into()))?;
            match entry.len().checked_sub(4 + owner_len) {
                Some(0 | 32) => {
                    std::str::from_utf8(&entry[4..4 + owner_len]).map_err(|_| corrupt("owner is not UTF-8".into()))?;
                }
                _ => return Err(corrupt(format!("owner entry of {} bytes", entry.len()))),
            }
        }
        Ok(records)
    }

    /// How many index entries match no record or mark. See
    /// [`SledStore::leftover_index_entries`].
    fn leftover_index_entries(&self) -> Result<u64, Error> {
        let mut leftovers = 0u64;
        for entry in self.expiry.iter().keys() {
            let entry = entry.map_err(backend)?;
            let (at, key) = parse_expiry_key(&entry)?;
            let matches = matches!(self.get(&key), Ok(Some(s)) if s.indexed_at() == at);
            leftovers += u64::from(!matches);
        }
        for entry in self.owners.iter().keys() {
            let entry = entry.map_err(backend)?;
            let Some(owner_len) = entry
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            else {
                continue;
            };
            if entry.len() != 4 + owner_len + 32 {
                continue;
            }
            let owner = std::str::from_utf8(&entry[4..4 + owner_len]).ok();
            let key = StoreKey::from_slice(&entry[4 + owner_len..])?;
            // A mark owns nothing, so an entry pointing at one is a leftover.
            let matches = owner.is_some() && matches!(self.get(&key), Ok(Some(s)) if s.owner() == owner);
            leftovers += u64::from(!matches);
        }
        Ok(leftovers)
    }
}

impl SledStore {
    /// Under [`FlushPolicy::EveryWrite`], waits (off the workers) until a
    /// write that just happened is on disk.
    async fn acknowledged(&self, wrote: bool) -> Result<(), Error> {
        if !wrote || self.inner.flush != FlushPolicy::EveryWrite {
            return Ok(());
        }
        self.off_the_workers(|inner| inner.acknowledge(true)).await
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        self.inner.create(&record, now)?;
        self.acknowledged(true).await
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.inner.load(key, now)
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        let write = Overwrite {
            data: update.data,
            expires_at: update.expires_at,
            owner: update.owner,
        };
        let version = self.inner.write_live(key, Some(update.expected_version), write, now)?;
        self.acknowledged(true).await?;
        Ok(version)
    }

    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        let version = self.inner.write_live(key, None, write, now)?;
        self.acknowledged(true).await?;
        Ok(version)
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        let (live, wrote) = self.inner.touch(key, expires_at, now)?;
        self.acknowledged(wrote).await?;
        Ok(live)
    }

    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let moved = self.inner.rotate(old_key, new_key, set_owner, now)?;
        self.acknowledged(true).await?;
        Ok(moved)
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        self.inner.was_rotated(key, now)
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let (live, wrote) = self.inner.delete(key, now)?;
        self.acknowledged(wrote).await?;
        Ok(live)
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        let owner = owner.to_owned();
        self.off_the_workers(move |inner| inner.list_by_owner(&owner, now))
            .await
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        let owner = owner.to_owned();
        self.off_the_workers(move |inner| {
            let (live, wrote) = inner.delete_by_owner(&owner, now)?;
            inner.acknowledge(wrote)?;
            Ok(live)
        })
        .await
    }

    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        self.off_the_workers(move |inner| {
            let removed = inner.delete_expired_blocking(now, limit)?;
            inner.acknowledge(removed > 0)?;
            Ok(removed)
        })
        .await
    }
}
