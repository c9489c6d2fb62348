//! [`SledStoreBuilder`]: where the database lives, how much memory it may
//! use, when it flushes, and whether a sweeper runs; and the checks that
//! make opening the wrong directory a clear error instead of damage.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use session_core::{Clock, Error, SystemClock};

use crate::flush_policy::FlushPolicy;
use crate::locks::Locks;
use crate::sled_error::backend;
use crate::store::{Inner, SledStore};
use crate::sweeper;

/// The default page cache: sled's own default is 1 GiB, far more than
/// session records need.
pub const DEFAULT_CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// Key (in sled's default tree) of the marker that says "this database
/// belongs to store-sled, record layout version 1".
const MARKER_KEY: &[u8] = b"store-sled/format";
const MARKER_V1: &[u8] = &[1];

const RECORDS_TREE: &[u8] = b"records";
const EXPIRY_TREE: &[u8] = b"expiry";
const OWNERS_TREE: &[u8] = b"owners";

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

impl SledStoreBuilder {
    pub(crate) fn new(path: PathBuf) -> Self {
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

    /// Bytes of sled's page cache. Default [`DEFAULT_CACHE_CAPACITY`] (64 MiB).
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
    /// [`open`](Self::open) must then be called inside one). It stops when
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
    /// reopening a directory right after closing it fails now and then.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Opens the database, creating it if the directory is missing or empty.
    ///
    /// Blocking file I/O (recovery reads the log): call it at startup, or
    /// from `spawn_blocking`.
    ///
    /// Errors ([`Error::Backend`], permanent, naming the path):
    /// - the path is a file, or a directory with other files and no sled
    ///   database (nothing is written into it);
    /// - the database is already open, in this process or another (sled
    ///   takes an exclusive lock on it);
    /// - the directory holds a sled database that is damaged, from another
    ///   sled version, or not a store-sled one;
    /// - a sweeper was asked for outside a tokio runtime.
    pub fn open(self) -> Result<SledStore, Error> {
        let path = self.path.clone();
        let failed = |why: String| {
            Error::backend_permanent(format!("cannot open sled session store at {}: {why}", path.display()))
        };
        check_directory(&path).map_err(failed)?;
        let runtime = match self.sweeper {
            Some(_) => Some(
                tokio::runtime::Handle::try_current()
                    .map_err(|_| failed("a sweeper needs a tokio runtime: call open() inside one".into()))?,
            ),
            None => None,
        };
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(self.cache_capacity)
            .temporary(self.temporary)
            .flush_every_ms(match self.flush {
                // Each write flushes itself; no background flusher needed.
                FlushPolicy::EveryWrite => None,
                FlushPolicy::Periodic(every) => Some(u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1)),
            });
        // sled may panic on some damaged files instead of returning an error;
        // no input may panic this store.
        let deadline = Instant::now() + self.lock_wait;
        let db = loop {
            let opened = catch_unwind(AssertUnwindSafe(|| config.open())).map_err(|_| {
                failed("sled panicked while reading the database files; they are damaged or not sled's".into())
            })?;
            match opened {
                Ok(db) => break db,
                // A store dropped an instant ago may still hold the lock in
                // sled's background threads: wait a bounded time for it.
                Err(e) if is_lock_error(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(failed(explain_open_error(e))),
            }
        };
        check_marker(&db).map_err(failed)?;
        let tree = |name: &[u8]| db.open_tree(name).map_err(backend);
        let records = tree(RECORDS_TREE)?;
        let expiry = tree(EXPIRY_TREE)?;
        let owners = tree(OWNERS_TREE)?;
        let (stop_sweeper, sweeper) = match (self.sweeper, runtime) {
            (Some((period, batch)), Some(runtime)) => {
                let (stop, prepared) = sweeper::prepare(period, batch, Arc::clone(&self.clock));
                (Some(stop), Some((runtime, prepared)))
            }
            _ => (None, None),
        };
        let inner = Arc::new(Inner {
            records,
            expiry,
            owners,
            locks: Locks::default(),
            flush: self.flush,
            committed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            flushing: Mutex::new(()),
            writes_left: AtomicU64::new(u64::MAX),
            path: path.clone(),
            _stop_sweeper: stop_sweeper,
            db,
        });
        // Only now that the store exists: a sweeper started sooner could take
        // the store for dropped (see the `sweeper` module).
        let sweeper = sweeper.map(|(runtime, prepared)| prepared.start(&runtime, Arc::downgrade(&inner)));
        Ok(SledStore { inner, sweeper })
    }
}

/// Refuses a path that cannot hold our database, before sled writes anything:
/// sled would otherwise create its files inside any directory it is given.
fn check_directory(path: &Path) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read the path: {e}")),
    };
    if !meta.is_dir() {
        return Err("the path is not a directory".into());
    }
    let mut entries = std::fs::read_dir(path).map_err(|e| format!("cannot list the directory: {e}"))?;
    if entries.next().is_none() {
        return Ok(()); // empty: a new database
    }
    let is_sled = SLED_FILES.iter().all(|f| path.join(f).is_file());
    if !is_sled {
        return Err("not a sled database: the directory holds other files and no sled `conf` and `db`; refusing to write into it".into());
    }
    Ok(())
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

fn explain_open_error(e: sled::Error) -> String {
    match e {
        e if is_lock_error(&e) => {
            "the database is in use: another SledStore (in this process or another) has it open, and sled allows one at a time".into()
        }
        sled::Error::Unsupported(why) => format!("not a usable sled database (damaged, or from an incompatible sled version): {why}"),
        sled::Error::Corruption { at, .. } => format!("the sled database is damaged (at {at:?})"),
        other => format!("sled could not open it: {other}"),
    }
}

/// A new database gets our marker; an existing one must have it, so that a
/// sled database of another application is never read as sessions.
fn check_marker(db: &sled::Db) -> Result<(), String> {
    let io = |e: sled::Error| format!("cannot read the database: {e}");
    match db.get(MARKER_KEY).map_err(io)? {
        Some(marker) if &marker[..] == MARKER_V1 => Ok(()),
        Some(marker) => Err(format!(
            "written by an unknown store-sled format {marker:?}; upgrade store-sled"
        )),
        None => {
            let ours = [RECORDS_TREE, EXPIRY_TREE, OWNERS_TREE];
            let default_name = db.name();
            let mut fresh = db.is_empty();
            for name in db.tree_names() {
                if name == default_name {
                    continue;
                }
                let empty = db.open_tree(&name).map_err(io)?.is_empty();
                fresh &= empty && ours.contains(&&name[..]);
            }
            if !fresh {
                return Err("a sled database, but not a store-sled one (no store-sled marker)".into());
            }
            db.insert(MARKER_KEY, MARKER_V1).map_err(io)?;
            db.flush().map_err(io)?;
            Ok(())
        }
    }
}
