//! [`SledStore`]: the handle on an open database and its
//! [`SessionStore`] implementation. The operations themselves are
//! [`Database`]'s (see `database`); this layer decides what runs inline on
//! the calling task and what on tokio's blocking pool, and waits for the
//! flush that acknowledges a write. Opening is in `builder`.

use std::path::Path;
use std::sync::Arc;

use session_core::{Error, Overwrite, OwnedSession, Record, SessionStore, StoreKey, Timestamp, Update, async_trait};
use tokio::task::AbortHandle;

use crate::database::Database;
use crate::flush_policy::FlushPolicy;

/// A session store in an embedded sled database. Cheap to clone: clones share
/// the database.
///
/// See the [crate docs](crate) for its guarantees.
#[derive(Clone)]
pub struct SledStore {
    database: Arc<Database>,
    /// The sweeper task, if any, for `SledStore::sweeper_task_for_tests`.
    /// Stopping it is the database's job, so that it stops with the database.
    #[cfg(feature = "test-hooks")]
    sweeper: Option<AbortHandle>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.database.path())
            .field("flush", &self.database.flush_policy())
            .field("sweeper", &self.database.has_sweeper())
            .finish()
    }
}

impl SledStore {
    /// A handle on `database`, swept by the task `sweeper` (if any). Only the
    /// test hooks look at the task: dropping the database stops it.
    pub(crate) fn new(database: Arc<Database>, sweeper: Option<AbortHandle>) -> Self {
        #[cfg(not(feature = "test-hooks"))]
        let _ = sweeper;
        Self {
            database,
            #[cfg(feature = "test-hooks")]
            sweeper,
        }
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        self.database.path()
    }

    /// The flush policy the store was opened with.
    pub fn flush_policy(&self) -> FlushPolicy {
        self.database.flush_policy()
    }

    /// How many records and rotation marks are stored, live (in force) or
    /// not yet swept. (Counting the marks apart would take a scan.)
    pub fn len(&self) -> usize {
        self.database.len()
    }

    /// Whether no records and no rotation marks are stored.
    pub fn is_empty(&self) -> bool {
        self.database.is_empty()
    }

    /// Writes every pending change to disk and waits for the `fsync`. Useful
    /// under [`FlushPolicy::Periodic`] before a planned shutdown.
    pub async fn flush(&self) -> Result<(), Error> {
        self.off_the_workers(|database| database.flush()).await
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
        self.database.verify_indexes()
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
        self.database.leftover_index_entries()
    }

    /// Runs `op` on tokio's blocking pool when there is a runtime, inline
    /// otherwise: for the scans (owner operations, the sweep) and for the
    /// flush that acknowledges a write under [`FlushPolicy::EveryWrite`].
    /// Point operations run inline. See "Blocking calls" in the crate docs.
    async fn off_the_workers<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let database = Arc::clone(&self.database);
                runtime
                    .spawn_blocking(move || op(&database))
                    .await
                    .map_err(|e| Error::backend(format!("sled operation task failed: {e}"), true))?
            }
            Err(_) => op(&self.database),
        }
    }

    /// Called after a point operation, with whether it wrote: returns once
    /// the write may be acknowledged (under [`FlushPolicy::EveryWrite`],
    /// once it is on disk, waiting off the workers; otherwise at once).
    async fn acknowledged(&self, wrote: bool) -> Result<(), Error> {
        match self.database.ticket(wrote) {
            Some(ticket) => {
                self.off_the_workers(move |database| database.wait_durable(ticket))
                    .await
            }
            None => Ok(()),
        }
    }
}

/// Hooks for this crate's own tests, behind the `test-hooks` feature (see
/// `Cargo.toml`): hidden from the docs and not part of the API.
#[cfg(feature = "test-hooks")]
impl SledStore {
    /// Writes `bytes` as the stored value of `key`, bypassing every check and
    /// index. For tests of damaged storage only.
    #[doc(hidden)]
    pub fn overwrite_record_bytes_for_tests(&self, key: &StoreKey, bytes: &[u8]) -> Result<(), Error> {
        self.database.overwrite_record_bytes(key, bytes)
    }

    /// Lets the store make `writes` more sled writes (inserts and removals in
    /// any tree), then refuses every further one with [`Error::Backend`].
    /// sled recovers a prefix of its log after a crash, so a store stopped
    /// after *k* writes of an operation, flushed and reopened, holds what a
    /// crash after those *k* writes can leave: tests walk every *k* to check
    /// the write order. For tests only.
    #[doc(hidden)]
    pub fn stop_writing_after_for_tests(&self, writes: u64) {
        self.database.stop_writing_after(writes);
    }

    /// A handle on the background sweeper's task (`None` without a sweeper),
    /// so that tests can check deterministically that it runs and that it
    /// ends once the last handle of the store is dropped. For tests only.
    #[doc(hidden)]
    pub fn sweeper_task_for_tests(&self) -> Option<AbortHandle> {
        self.sweeper.clone()
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        self.database.create(&record, now)?;
        self.acknowledged(true).await
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.database.load(key, now)
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        let write = Overwrite {
            data: update.data,
            expires_at: update.expires_at,
            owner: update.owner,
        };
        let version = self
            .database
            .write_live(key, Some(update.expected_version), write, now)?;
        self.acknowledged(true).await?;
        Ok(version)
    }

    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        let version = self.database.write_live(key, None, write, now)?;
        self.acknowledged(true).await?;
        Ok(version)
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        let (live, wrote) = self.database.touch(key, expires_at, now)?;
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
        let moved = self.database.rotate(old_key, new_key, set_owner, now)?;
        self.acknowledged(true).await?;
        Ok(moved)
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        self.database.was_rotated(key, now)
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let (live, wrote) = self.database.delete(key, now)?;
        self.acknowledged(wrote).await?;
        Ok(live)
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        let owner = owner.to_owned();
        self.off_the_workers(move |database| database.list_by_owner(&owner, now))
            .await
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        let owner = owner.to_owned();
        self.off_the_workers(move |database| {
            let (live, wrote) = database.delete_by_owner(&owner, now)?;
            database.acknowledge(wrote)?;
            Ok(live)
        })
        .await
    }

    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        self.off_the_workers(move |database| {
            let removed = database.delete_expired(now, limit)?;
            database.acknowledge(removed > 0)?;
            Ok(removed)
        })
        .await
    }
}
