//! [`SledStore`]: the contract's operations as sled transactions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use session_core::{Error, OwnedSession, Record, SessionStore, StoreKey, Timestamp, Update, async_trait};
use sled::Transactional as _;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::builder::SledStoreBuilder;
use crate::flush_policy::FlushPolicy;
use crate::index_keys::{
    EXPIRY_KEY_LEN, expiry_key, owner_key, owner_prefix, parse_expiry_key, parse_generation, sortable,
};
use crate::record_layout::decode;
use crate::sled_error::{backend, from_transaction};
use crate::transaction::{OrAbort as _, TxResult, TxTrees, abort};

/// How many expiry-index entries `delete_expired` handles per transaction.
/// Bounds how long one transaction holds sled's process-wide transaction
/// lock, and so how long other operations wait behind a big sweep.
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
    /// store key -> record (see `record_layout`).
    pub(crate) records: sled::Tree,
    /// sortable(expires_at) ++ store key -> empty.
    pub(crate) expiry: sled::Tree,
    /// length-prefixed owner ++ store key -> empty; length-prefixed owner ->
    /// generation counter.
    pub(crate) owners: sled::Tree,
    pub(crate) flush: FlushPolicy,
    /// Group commit under `FlushPolicy::EveryWrite`: writes committed so far
    /// (a ticket each), and the highest ticket known to be on disk.
    pub(crate) committed: AtomicU64,
    pub(crate) durable: AtomicU64,
    /// One flush at a time; writers that arrive meanwhile share the next one.
    pub(crate) flushing: Mutex<()>,
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

    /// How many records are stored, live or expired but not yet swept.
    pub fn len(&self) -> usize {
        self.inner.records.len()
    }

    /// Whether no records are stored.
    pub fn is_empty(&self) -> bool {
        self.inner.records.is_empty()
    }

    /// Writes every pending change to disk and waits for the `fsync`. Useful
    /// under [`FlushPolicy::Periodic`] before a planned shutdown.
    pub async fn flush(&self) -> Result<(), Error> {
        self.off_the_workers(|inner| inner.db.flush().map(drop).map_err(backend))
            .await
    }

    /// Reads the whole database and checks that the indexes match the
    /// records exactly: every record has its expiry entry and, if owned, its
    /// owner entry, and no index entry lacks its record. Returns the number
    /// of records. A full scan: for tests and offline checks of a quiescent
    /// store (concurrent writes can show as false alarms).
    ///
    /// Errors: [`Error::Corrupt`] naming the first inconsistency or
    /// undecodable record.
    pub fn verify_indexes(&self) -> Result<u64, Error> {
        self.inner.verify_indexes()
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

    /// A handle on the background sweeper's task (`None` without a sweeper),
    /// so that tests can check deterministically that it runs and that it
    /// ends once the last handle of the store is dropped. For tests only.
    #[doc(hidden)]
    pub fn sweeper_task_for_tests(&self) -> Option<AbortHandle> {
        self.sweeper.clone()
    }

    /// Runs `op` on tokio's blocking pool when there is a runtime, inline
    /// otherwise. Every write and every scan goes through here: a
    /// transaction takes sled's process-wide lock in write mode, which waits
    /// for any flush in progress (a flush holds that lock in read mode until
    /// its `fsync` returns), and `acknowledge` waits for a flush itself.
    /// Only `load` runs inline. See "Blocking calls" in the crate docs for
    /// the source reading and the measurements behind this split.
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

impl Inner {
    /// Called after a transaction that wrote: under
    /// [`FlushPolicy::EveryWrite`], returns once that write is on disk.
    ///
    /// Group commit: the writer takes a ticket after its commit; whoever
    /// holds `flushing` flushes everything committed up to then, so writers
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

    /// Runs `f` as one sled transaction over the three trees. sled runs
    /// transactions under a process-wide lock, so `f` sees and changes one
    /// consistent state; it must not touch the plain trees (that lock is not
    /// reentrant).
    fn transact<T>(&self, f: impl Fn(&TxTrees<'_>) -> TxResult<T>) -> Result<T, Error> {
        (&self.records, &self.expiry, &self.owners)
            .transaction(|(records, expiry, owners)| {
                f(&TxTrees {
                    records,
                    expiry,
                    owners,
                })
            })
            .map_err(from_transaction)
    }

    fn create(&self, record: &Record, now: Timestamp) -> Result<(), Error> {
        let record = Record {
            version: 1,
            ..record.clone()
        };
        self.transact(|tx| {
            let old = tx.get(&record.key)?;
            if old.as_ref().is_some_and(|old| old.is_live_at(now)) {
                return abort(Error::AlreadyExists);
            }
            tx.put(&record, old.as_ref())
        })
    }

    fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        // One key: a plain read is atomic and cheaper than a transaction.
        match self.records.get(key.as_bytes()).map_err(backend)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(decode(*key, &bytes)?).filter(|r| r.is_live_at(now))),
        }
    }

    fn update(&self, key: &StoreKey, update: &Update, now: Timestamp) -> Result<u64, Error> {
        self.transact(|tx| {
            let Some(old) = tx.get(key)?.filter(|r| r.is_live_at(now)) else {
                return abort(Error::NotFound);
            };
            if old.version != update.expected_version {
                return abort(Error::Conflict { current: old.version });
            }
            let Some(version) = old.version.checked_add(1) else {
                return abort(Error::Corrupt(format!(
                    "sled record {}: version at its maximum",
                    key.short()
                )));
            };
            let new = Record {
                version,
                data: update.data.clone(),
                expires_at: update.expires_at,
                owner: update.owner.clone(),
                ..old.clone()
            };
            tx.put(&new, Some(&old))?;
            Ok(version)
        })
    }

    /// Returns (live, wrote).
    fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<(bool, bool), Error> {
        self.transact(|tx| {
            let Some(old) = tx.get(key)?.filter(|r| r.is_live_at(now)) else {
                return Ok((false, false));
            };
            if expires_at <= old.expires_at {
                return Ok((true, false));
            }
            let new = Record {
                expires_at,
                ..old.clone()
            };
            tx.put(&new, Some(&old))?;
            Ok((true, true))
        })
    }

    fn rotate(&self, old_key: &StoreKey, new_key: &StoreKey, now: Timestamp) -> Result<(), Error> {
        self.transact(|tx| {
            let Some(old) = tx.get(old_key)?.filter(|r| r.is_live_at(now)) else {
                return abort(Error::NotFound);
            };
            let taken = tx.get(new_key)?;
            if old_key == new_key || taken.as_ref().is_some_and(|r| r.is_live_at(now)) {
                return abort(Error::AlreadyExists);
            }
            if let Some(expired) = &taken {
                tx.remove(expired)?;
            }
            tx.remove(&old)?;
            let moved = Record {
                key: *new_key,
                version: 1,
                ..old.clone()
            };
            tx.put(&moved, None)
        })
    }

    /// Returns (was live, wrote). Removing needs no decoding: a damaged
    /// record is removed too (reported as not live), so a session can always
    /// be ended.
    fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<(bool, bool), Error> {
        self.transact(|tx| match tx.records.get(key.as_bytes())? {
            None => Ok((false, false)),
            Some(bytes) => match decode(*key, &bytes) {
                Ok(old) => {
                    tx.remove(&old)?;
                    Ok((old.is_live_at(now), true))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "deleting a damaged sled record");
                    tx.remove_undecoded(key, None)?;
                    Ok((false, true))
                }
            },
        })
    }

    /// Runs `f` in a transaction with the keys that the owner index lists
    /// for `owner`, exactly as the index is at that transaction's instant.
    ///
    /// sled cannot range-scan inside a transaction, so the scan happens
    /// before it, bracketed by the owner's generation counter: if the
    /// transaction still reads the generation read before the scan, nothing
    /// changed that owner's entries in between, so the scan is exactly the
    /// index at the transaction's instant and the result is linearizable.
    /// Otherwise a writer made progress meanwhile, and we scan again.
    fn with_owner_keys<T>(
        &self,
        owner: &str,
        f: impl Fn(&TxTrees<'_>, &[StoreKey]) -> TxResult<T>,
    ) -> Result<T, Error> {
        let prefix = owner_prefix(owner)?;
        loop {
            let before = parse_generation(self.owners.get(&prefix).map_err(backend)?.as_deref())?;
            let mut keys = Vec::new();
            for entry in self.owners.scan_prefix(&prefix).keys() {
                let entry = entry.map_err(backend)?;
                // The bare prefix is the generation counter, not an entry.
                if entry.len() == prefix.len() + 32 {
                    keys.push(StoreKey::from_slice(&entry[prefix.len()..])?);
                }
            }
            let result = self.transact(|tx| {
                if tx.generation(owner)? != before {
                    return Ok(None);
                }
                f(tx, &keys).map(Some)
            })?;
            if let Some(result) = result {
                return Ok(result);
            }
        }
    }

    fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        self.with_owner_keys(owner, |tx, keys| {
            let mut live = Vec::with_capacity(keys.len());
            for key in keys {
                // The index and the records change together, so a listed
                // record is there and has this owner, unless a damaged record
                // was deleted: skip such a leftover entry.
                if let Some(r) = tx
                    .get(key)?
                    .filter(|r| r.owner.as_deref() == Some(owner) && r.is_live_at(now))
                {
                    live.push(OwnedSession {
                        key: r.key,
                        created_at: r.created_at,
                        expires_at: r.expires_at,
                    });
                }
            }
            Ok(live)
        })
    }

    /// Returns (live removed, wrote). Like `delete`, removes damaged records
    /// too (not counted), and drops leftover entries: ending every session of
    /// an owner must not stop at one unreadable record.
    fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<(u64, bool), Error> {
        self.with_owner_keys(owner, |tx, keys| {
            let mut live = 0;
            for key in keys {
                match tx.records.get(key.as_bytes())?.map(|bytes| decode(*key, &bytes)) {
                    Some(Ok(record)) if record.owner.as_deref() == Some(owner) => {
                        tx.remove(&record)?;
                        live += u64::from(record.is_live_at(now));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "deleting a damaged sled record");
                        tx.remove_undecoded(key, Some(owner))?;
                    }
                    // A leftover entry: its record is gone or has another owner.
                    None | Some(Ok(_)) => tx.unindex_owner(owner, key)?,
                }
            }
            Ok((live, !keys.is_empty()))
        })
    }

    /// Walks the expiry index from its start (the soonest expiry) up to
    /// `now`, in batches, and removes each record that is still expired
    /// inside a transaction: compare-and-delete, so a record renewed after
    /// the scan saw it stays.
    pub(crate) fn delete_expired_blocking(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        // Every entry whose expiry is <= now sorts at or below this key.
        let mut upper = sortable(now).to_vec();
        upper.extend_from_slice(&[0xff; 32]);
        let mut cursor: Vec<u8> = Vec::new();
        let mut removed: u64 = 0;
        loop {
            let wanted = limit.saturating_sub(usize::try_from(removed).unwrap_or(usize::MAX));
            if wanted == 0 {
                return Ok(removed);
            }
            let mut batch = Vec::new();
            for entry in self
                .expiry
                .range(cursor.clone()..=upper.clone())
                .keys()
                .take(wanted.min(SWEEP_BATCH))
            {
                let entry = entry.map_err(backend)?;
                batch.push(entry);
            }
            let Some(last) = batch.last() else {
                return Ok(removed);
            };
            // Continue strictly after the last entry seen, so entries skipped
            // below (damaged records) are not read again.
            cursor = last.to_vec();
            cursor.push(0);
            removed += self.transact(|tx| {
                let mut n = 0;
                for entry in &batch {
                    let (indexed_at, key) = parse_expiry_key(entry).or_abort()?;
                    let record = match tx.records.get(key.as_bytes())? {
                        Some(bytes) => match decode(key, &bytes) {
                            Ok(record) => record,
                            Err(e) => {
                                // Garbage collection must not stall on one
                                // damaged record: leave it for `load` to report.
                                tracing::warn!(error = %e, "sled sweep skipped a damaged record");
                                continue;
                            }
                        },
                        None => {
                            // An entry without a record (only after damage):
                            // drop the entry, count nothing.
                            tx.expiry.remove(&entry[..])?;
                            continue;
                        }
                    };
                    if record.is_live_at(now) {
                        continue; // renewed since the scan
                    }
                    if record.expires_at != indexed_at {
                        tx.expiry.remove(&expiry_key(indexed_at, &key)[..])?;
                    }
                    tx.remove(&record)?;
                    n += 1;
                }
                Ok(n)
            })?;
        }
    }

    fn verify_indexes(&self) -> Result<u64, Error> {
        let corrupt = |why: String| Error::Corrupt(format!("sled index check: {why}"));
        let mut records = 0u64;
        let mut expected_owner_entries = 0usize;
        for item in self.records.iter() {
            let (key, bytes) = item.map_err(backend)?;
            let key = StoreKey::from_slice(&key)?;
            let record = decode(key, &bytes)?;
            records += 1;
            if !self
                .expiry
                .contains_key(expiry_key(record.expires_at, &key))
                .map_err(backend)?
            {
                return Err(corrupt(format!("record {} has no expiry entry", key.short())));
            }
            if let Some(owner) = &record.owner {
                expected_owner_entries += 1;
                if !self.owners.contains_key(owner_key(owner, &key)?).map_err(backend)? {
                    return Err(corrupt(format!("record {} has no owner entry", key.short())));
                }
            }
        }
        for entry in self.expiry.iter().keys() {
            let entry = entry.map_err(backend)?;
            if entry.len() != EXPIRY_KEY_LEN {
                return Err(corrupt(format!("expiry entry of {} bytes", entry.len())));
            }
            let (at, key) = parse_expiry_key(&entry)?;
            match self.records.get(key.as_bytes()).map_err(backend)? {
                Some(bytes) if decode(key, &bytes)?.expires_at == at => {}
                _ => return Err(corrupt(format!("expiry entry for {} matches no record", key.short()))),
            }
        }
        let mut owner_entries = 0usize;
        for entry in self.owners.iter().keys() {
            let entry = entry.map_err(backend)?;
            let owner_len = entry
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| corrupt("owner entry shorter than its length prefix".into()))?;
            match entry.len().checked_sub(4 + owner_len) {
                Some(0) => {} // a generation counter
                Some(32) => {
                    owner_entries += 1;
                    let key = StoreKey::from_slice(&entry[4 + owner_len..])?;
                    let owner = std::str::from_utf8(&entry[4..4 + owner_len])
                        .map_err(|_| corrupt("owner is not UTF-8".into()))?;
                    match self.records.get(key.as_bytes()).map_err(backend)? {
                        Some(bytes) if decode(key, &bytes)?.owner.as_deref() == Some(owner) => {}
                        _ => return Err(corrupt(format!("owner entry for {} matches no record", key.short()))),
                    }
                }
                _ => return Err(corrupt(format!("owner entry of {} bytes", entry.len()))),
            }
        }
        if owner_entries != expected_owner_entries {
            return Err(corrupt(format!(
                "{owner_entries} owner entries for {expected_owner_entries} owned records"
            )));
        }
        Ok(records)
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        self.off_the_workers(move |inner| {
            inner.create(&record, now)?;
            inner.acknowledge(true)
        })
        .await
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        // Inline, on the calling task: a point read never waits for a flush
        // by itself, and the hand-off to the blocking pool cost more than
        // the read (see "Blocking calls" in the crate docs).
        self.inner.load(key, now)
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        let key = *key;
        self.off_the_workers(move |inner| {
            let version = inner.update(&key, &update, now)?;
            inner.acknowledge(true)?;
            Ok(version)
        })
        .await
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        let key = *key;
        self.off_the_workers(move |inner| {
            let (live, wrote) = inner.touch(&key, expires_at, now)?;
            inner.acknowledge(wrote)?;
            Ok(live)
        })
        .await
    }

    async fn rotate(&self, old_key: &StoreKey, new_key: &StoreKey, now: Timestamp) -> Result<(), Error> {
        let (old_key, new_key) = (*old_key, *new_key);
        self.off_the_workers(move |inner| {
            inner.rotate(&old_key, &new_key, now)?;
            inner.acknowledge(true)
        })
        .await
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let key = *key;
        self.off_the_workers(move |inner| {
            let (live, wrote) = inner.delete(&key, now)?;
            inner.acknowledge(wrote)?;
            Ok(live)
        })
        .await
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
