//! [`SledStoreBuilder`] and [`SledStore::open`]: where the database lives,
//! how much memory it may use, when it flushes, and whether a sweeper runs;
//! and the checks that make opening the wrong directory a clear error
//! instead of damage.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{Clock, Error, SystemClock};

use crate::database::{Database, TREE_NAMES};
use crate::error::{cannot_open, cannot_open_io, config, may_pass};
use crate::flush_policy::FlushPolicy;
use crate::store::SledStore;
use crate::sweeper;

/// The default page cache: sled's own default is 1 GiB, far more than
/// session records need.
pub const DEFAULT_CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// The smallest page cache sled accepts, in bytes (it panics on less).
const MIN_CACHE_CAPACITY: u64 = 256;

/// Key (in sled's default tree) of the marker that says "this database
/// belongs to store-sled". Its value is the marker's own format, 1; the
/// values of the `records` tree carry their layout version themselves (see
/// `record_layout`).
const MARKER_KEY: &[u8] = b"store-sled/format";
const MARKER_V1: &[u8] = &[1];

/// The files sled keeps at the top of its directory.
const SLED_FILES: [&str; 2] = ["conf", "db"];

/// Configures and opens a [`SledStore`].
///
/// ```
/// use std::time::Duration;
/// use store_sled::{FlushPolicy, SledStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::Error> {
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let store = SledStore::builder(dir.path().join("sessions"))
///     .cache_capacity(16 * 1024 * 1024)
///     .flush_policy(FlushPolicy::Periodic(Duration::from_millis(200)))
///     .sweeper(Duration::from_secs(60), 1_000)
///     .open()?;
/// assert_eq!(store.flush_policy(), FlushPolicy::Periodic(Duration::from_millis(200)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SledStoreBuilder {
    path: PathBuf,
    cache_capacity: u64,
    flush: FlushPolicy,
    temporary: bool,
    sweeper: Option<(Duration, usize)>,
    clock: Arc<dyn Clock>,
    lock_wait: Duration,
}

/// How long [`SledStoreBuilder::open`] waits, by default, for a database
/// lock that a store dropped an instant ago has not released yet.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(2);

impl std::fmt::Debug for SledStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStoreBuilder")
            .field("path", &self.path)
            .field("cache_capacity", &self.cache_capacity)
            .field("flush", &self.flush)
            .field("temporary", &self.temporary)
            .field("sweeper", &self.sweeper)
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
}

impl SledStoreBuilder {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            flush: FlushPolicy::default(),
            temporary: false,
            sweeper: None,
            clock: Arc::new(SystemClock),
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    /// Bytes of sled's page cache. Default [`DEFAULT_CACHE_CAPACITY`] (64 MiB);
    /// [`open`](Self::open) refuses less than 256 bytes, sled's minimum.
    pub fn cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    /// When writes reach the disk. Default [`FlushPolicy::EveryWrite`].
    pub fn flush_policy(mut self, policy: FlushPolicy) -> Self {
        self.flush = policy;
        self
    }

    /// Deletes the directory when the store is dropped. For tests.
    pub fn temporary(mut self, yes: bool) -> Self {
        self.temporary = yes;
        self
    }

    /// Runs a background sweeper that removes up to `batch` expired records
    /// every `period` (on the current tokio runtime, so
    /// [`open`](Self::open) must then be called inside one, or it refuses
    /// the `sweeper` setting with [`Error::Config`]). It stops when
    /// the last handle of the store is dropped. Without a sweeper, call
    /// [`delete_expired`](session_core::SessionStore::delete_expired)
    /// yourself: expired records are invisible but take space until swept.
    pub fn sweeper(mut self, period: Duration, batch: usize) -> Self {
        self.sweeper = Some((period.max(Duration::from_millis(1)), batch));
        self
    }

    /// The clock the sweeper judges expiry by. Default: the system clock.
    /// Give the same clock the application's operations use.
    pub fn sweeper_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long `open` waits for the database lock to be released before it
    /// reports the database as in use. Default [`DEFAULT_LOCK_WAIT`].
    ///
    /// sled releases its file lock from its own background I/O threads, a
    /// moment after the last handle of a store is dropped: without this wait,
    /// reopening a directory right after closing it fails now and then. A
    /// wait too long to add to the clock (such as `Duration::MAX`) is
    /// refused by [`open`](Self::open) with [`Error::Config`].
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Opens the database, creating it if the directory is missing or empty.
    ///
    /// Blocking file I/O (recovery reads the log): call it at startup, or
    /// from `spawn_blocking`.
    ///
    /// Errors, each naming the setting or the path:
    /// - [`Error::Config`], before anything is written: a cache under 256
    ///   bytes (`cache_capacity`), a lock wait too long to add to the clock
    ///   (`lock_wait`), a sweeper asked for outside a tokio runtime
    ///   (`sweeper`), or a `path` that cannot hold a store: a file, a
    ///   directory with other files and no sled database, a sled database of
    ///   another application, or one written by an unknown store-sled
    ///   format;
    /// - [`Error::Backend`], permanent: the database is already open, in
    ///   this process or another (sled takes an exclusive lock on it), or
    ///   its files are damaged or from another sled version;
    /// - [`Error::Backend`] for an I/O failure, retryable when the failure
    ///   may pass (interrupted, timed out).
    pub fn open(self) -> Result<SledStore, Error> {
        // The settings first: a refused one touches no file.
        if self.cache_capacity < MIN_CACHE_CAPACITY {
            return Err(config(
                "cache_capacity",
                format!(
                    "{} bytes, under sled's minimum of {MIN_CACHE_CAPACITY}",
                    self.cache_capacity
                ),
            ));
        }
        let lock_deadline = Instant::now()
            .checked_add(self.lock_wait)
            .ok_or_else(|| config("lock_wait", format!("{:?} is too long to wait", self.lock_wait)))?;
        let runtime = match self.sweeper {
            Some(_) => Some(
                tokio::runtime::Handle::try_current()
                    .map_err(|_| config("sweeper", "a sweeper runs on the tokio runtime: call open() inside one"))?,
            ),
            None => None,
        };
        let path = self.path.clone();
        check_directory(&path)?;
        let db = self.open_sled(lock_deadline)?;
        check_marker(&path, &db)?;
        let (stop_sweeper, sweeper) = match (self.sweeper, runtime) {
            (Some((period, batch)), Some(runtime)) => {
                let (stop, prepared) = sweeper::prepare(period, batch, Arc::clone(&self.clock));
                (Some(stop), Some((runtime, prepared)))
            }
            _ => (None, None),
        };
        let database = Arc::new(Database::new(db, path, self.flush, stop_sweeper)?);
        // Only now that the store exists: a sweeper started sooner could take
        // the store for dropped (see the `sweeper` module).
        let sweeper = sweeper.map(|(runtime, prepared)| prepared.start(&runtime, Arc::downgrade(&database)));
        Ok(SledStore::new(database, sweeper))
    }

    /// Opens the sled database, waiting until `lock_deadline` for a lock
    /// that a store dropped an instant ago may still hold.
    fn open_sled(&self, lock_deadline: Instant) -> Result<sled::Db, Error> {
        let config = sled::Config::new()
            .path(&self.path)
            .cache_capacity(self.cache_capacity)
            .temporary(self.temporary)
            .flush_every_ms(match self.flush {
                // Each write flushes itself; no background flusher needed.
                FlushPolicy::EveryWrite => None,
                FlushPolicy::Periodic(every) => Some(u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1)),
            });
        loop {
            // sled may panic on some damaged files instead of returning an
            // error; no input may panic this store.
            let opened = catch_unwind(AssertUnwindSafe(|| config.open())).map_err(|_| {
                let why = "sled panicked while reading the database files; they are damaged or not sled's";
                cannot_open(&self.path, why, false)
            })?;
            match opened {
                Ok(db) => return Ok(db),
                // sled releases the lock from its own background threads, a
                // moment after the last handle is dropped: wait a bounded time.
                Err(e) if is_lock_error(&e) && Instant::now() < lock_deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) if is_lock_error(&e) => {
                    let why = "the database is in use: another SledStore (in this process or another) has it open, and sled allows one at a time";
                    return Err(cannot_open(&self.path, why, false));
                }
                Err(sled::Error::Unsupported(why)) => {
                    let why =
                        format!("not a usable sled database (damaged, or from an incompatible sled version): {why}");
                    return Err(cannot_open(&self.path, why, false));
                }
                Err(sled::Error::Corruption { at, .. }) => {
                    let why = format!("the sled database is damaged (at {at:?})");
                    return Err(cannot_open(&self.path, why, false));
                }
                Err(e) => {
                    let retryable = may_pass(&e);
                    return Err(cannot_open(
                        &self.path,
                        format!("sled could not open it: {e}"),
                        retryable,
                    ));
                }
            }
        }
    }
}

/// Refuses a path that cannot hold our database, before sled writes anything:
/// sled would otherwise create its files inside any directory it is given.
fn check_directory(path: &Path) -> Result<(), Error> {
    let refused = |problem: &str| config("path", format!("{}: {problem}", path.display()));
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(cannot_open_io(path, "cannot read the path", &e)),
    };
    if !meta.is_dir() {
        return Err(refused("not a directory"));
    }
    let mut entries = std::fs::read_dir(path).map_err(|e| cannot_open_io(path, "cannot list the directory", &e))?;
    if entries.next().is_none() {
        return Ok(()); // empty: a new database
    }
    let is_sled = SLED_FILES.iter().all(|f| path.join(f).is_file());
    if !is_sled {
        return Err(refused(
            "not a sled database: the directory holds other files and no sled `conf` and `db`; refusing to write into it",
        ));
    }
    Ok(())
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// A new database gets our marker; an existing one must have it, so that a
/// sled database of another application is never read as sessions.
fn check_marker(path: &Path, db: &sled::Db) -> Result<(), Error> {
    let refused = |problem: String| config("path", format!("{}: {problem}", path.display()));
    let io = |e: sled::Error| {
        let retryable = may_pass(&e);
        cannot_open(path, format!("cannot read the database: {e}"), retryable)
    };
    match db.get(MARKER_KEY).map_err(io)? {
        Some(marker) if &marker[..] == MARKER_V1 => Ok(()),
        Some(marker) => Err(refused(format!(
            "written by an unknown store-sled format {marker:?}; upgrade store-sled"
        ))),
        None => {
            let default_name = db.name();
            let mut fresh = db.is_empty();
            for name in db.tree_names() {
                if name == default_name {
                    continue;
                }
                let empty = db.open_tree(&name).map_err(io)?.is_empty();
                fresh &= empty && TREE_NAMES.contains(&&name[..]);
            }
            if !fresh {
                return Err(refused(
                    "a sled database, but not a store-sled one (no store-sled marker)".into(),
                ));
            }
            db.insert(MARKER_KEY, MARKER_V1).map_err(io)?;
            db.flush().map_err(io)?;
            Ok(())
        }
    }
}
