//! # store-redis: sessions in Redis, one atomic command or script per operation
//!
//! [`RedisStore`] implements the [`SessionStore`] contract on Redis. Pick it
//! when several application processes must share sessions and a fast
//! in-memory server is at hand; pick `store-postgres` when sessions must be
//! as durable as the rest of your data, `store-memory` for one process.
//!
//! ## Example
//!
//! ```no_run
//! use std::time::Duration;
//! use session_core::{Record, SessionId, SessionStore, Timestamp};
//! use store_redis::RedisStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::Error> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379")
//!     .prefix("myapp:session:")
//!     .connect()
//!     .await?;
//! let now = Timestamp::now();
//! let key = SessionId::generate()?.store_key();
//! store
//!     .create(
//!         Record {
//!             key,
//!             version: 1,
//!             data: Default::default(),
//!             created_at: now,
//!             expires_at: now + Duration::from_secs(1800),
//!             owner: Some("user-42".into()),
//!         },
//!         now,
//!     )
//!     .await?;
//! assert!(store.load(&key, now).await?.is_some());
//! assert_eq!(store.list_by_owner("user-42", now).await?.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! `examples/basic.rs` is a longer walk through every operation;
//! `examples/cluster.rs` a login and "log out everywhere" on a Redis Cluster
//! through the manager.
//!
//! ## Guarantees
//!
//! - **Atomic, linearizable, one round trip.** `load` is one `GET` and
//!   `was_rotated` one `GETRANGE` of the header; a `create` without an owner
//!   is one `SET NX` (and, only when the key holds an expired record, a
//!   rotation mark or a deletion receipt, which a fresh id never meets, the
//!   create function after it); every other operation is one `FCALL` of a
//!   Lua function of this crate's library (loaded again only when the server
//!   does not have it, for example after a restart without persistence). Redis runs a command or function to completion before
//!   serving anything else, so each operation takes effect at one instant.
//!   Functions validate everything they touch before their first write,
//!   because Redis does not roll back a function that fails half way. [`delete_expired`](SessionStore::delete_expired) sends nothing
//!   and returns 0: the server expires records by itself.
//! - **Liveness by the caller's clock.** A record is live iff
//!   `now < expires_at`, with `now` the argument of the operation; the
//!   server's clock never decides it. Every record carries a server TTL at
//!   `expires_at` plus an optional [grace](RedisStoreBuilder::ttl_grace),
//!   never earlier; `touch` only ever moves it later.
//! - **Rotation marks.** `rotate` returns the moved record and leaves under
//!   the old key a mark in force until `min(old expires_at, now + 60 s)`,
//!   which only `was_rotated` reads (by its `now`). The mark keeps the old
//!   record's server TTL, so a caller whose clock runs behind the server's
//!   still sees it. Every other operation reads it as no session.
//! - **A write sent twice reports its first outcome.** Every write carries an
//!   operation id stored with what it wrote; if its reply is lost and the
//!   same write is sent again (with the same id, as a resending client does),
//!   it reports the original success instead of a false `Conflict`,
//!   `AlreadyExists` or `NotFound`, as long as no other write came in
//!   between (and within 60 s for `delete` and `delete_by_owner`, which
//!   leave a short-lived receipt).
//! - **Owner index that stays small.** Each owner has a sorted set of session
//!   keys scored by `expires_at`, with a TTL at its longest-lived entry and
//!   trimmed of what the server has expired whenever an entry is added.
//!   Reads check every entry against its record. Writes touch it only when
//!   the owner or the expiry changes.
//! - **Bad bytes are errors.** A record this crate did not write (another
//!   type, a truncated header, an unknown format byte, version 0, an owner
//!   length past the end, a non-UTF-8 owner) gives [`Error::Corrupt`], and
//!   the operation writes nothing. `delete` and `delete_by_owner` still
//!   remove it (ending a session must work) without counting it live;
//!   `list_by_owner` skips it and logs its key's short prefix. Nothing panics.
//! - **Errors say what failed.** Lost connections and timeouts give a
//!   retryable [`Error::Backend`] whose message names the operation and, for
//!   a timeout, the configured durations; a refused prefix or URL is an
//!   [`Error::Config`] from [`connect`](RedisStoreBuilder::connect). No
//!   message holds a key, a token or session data.
//! - **Reconnects by itself.** Clones of the store share one multiplexed
//!   connection, replaced when it breaks. The operation that meets the
//!   broken connection fails (its outcome is unknown if it was a write:
//!   resending it is safe, see above); later ones use the new connection.
//!
//! ## Layout
//!
//! ```text
//! <prefix>s:{<64 hex digits of the store key>}   string: header + owner + data
//! <prefix>o:{<owner>}                            sorted set: the owner's sessions
//! <prefix>d:{<owner>}                            string: the last delete_by_owner's receipt (60 s)
//! ```
//!
//! A record is one string: a 43-byte header (a format byte `S`, the version,
//! `created_at`, `expires_at`, the operation id, the owner's length; numbers
//! big-endian), the owner, then the data. A rotation mark (`M`) and a
//! deletion receipt (`D`) are a header alone. So `load` is one `GET` decoded
//! without copying the data, and the scripts read only the header. Prefixes
//! may not contain braces, and two prefixes never see each other's keys,
//! even when one extends the other.
//!
//! **Upgrading from 0.1's hash layout** (`<prefix>{<hex>}` hashes and
//! `<prefix>owner:{<owner>}` sorted sets): the new keys have other names, so
//! records of the old layout are not read, and deploying the new version
//! logs every user out once. The old keys expire at their own TTLs; to free
//! the memory sooner, `SCAN MATCH <prefix>{*` and `<prefix>owner:{*` and
//! `UNLINK` what they find.
//!
//! ## What survives a Redis restart
//!
//! Exactly what Redis persisted. With AOF (`appendonly yes`,
//! `appendfsync everysec`) at most about a second of writes is lost; with RDB
//! snapshots only, everything since the last snapshot; with persistence off,
//! every session is gone and all users are logged out. Nothing is corrupted
//! or resurrected by a restart: a restored record carries its absolute TTL,
//! and liveness is still judged by `expires_at`. The function library
//! reloads itself and the store reconnects. Replication is asynchronous: a
//! failover may lose the last writes, as for any Redis data.
//!
//! ## Scaling out: Redis Cluster
//!
//! One server runs a store at close to its raw round-trip rate; the
//! server's CPU bounds throughput (see `benches/README.md` for measured
//! numbers). Past that, [`RedisStore::cluster_builder`] talks to a Redis
//! Cluster through `redis::cluster_async` (it follows `MOVED` and `ASK`,
//! resends after `TRYAGAIN`, `CLUSTERDOWN` and lost connections with short
//! waits, and never reads from replicas, which could miss the last write).
//!
//! **Layout.** A cluster runs a function only if every key it touches is
//! declared and all lie in one slot. So records are split into [`SHARDS`]
//! (1024) shards, each one hash tag and so one slot: a session's shard is
//! the top 10 bits of its store key, an owner's the top 10 bits of a hash
//! of the owner, and the shard's owner index is two sorted sets in that
//! slot. An owned session must be in its owner's shard: the store says so
//! through [`SessionStore::shard_of_owner`], and
//! [`SessionManager`](session_core::SessionManager) mints every id into the
//! right shard with [`session_core::mint_id`] (about a thousand SHA-256
//! draws, well under a millisecond). A direct caller that creates or
//! updates an owned record whose key is in another shard gets
//! [`Error::WrongShard`] and nothing is written; a change of owner goes
//! through `rotate`, as a login does. The key names are in the
//! `session_key` and `owner_index_key` docs.
//!
//! **What a cluster promises, exactly:**
//!
//! - Every operation but one is **one atomic function in one slot**, as
//!   linearizable as on one server: `create`, `load`, `update`, `overwrite`,
//!   `touch`, `delete`, and a `rotate` whose new key is in the old one's
//!   shard (the manager's rotate without a change of owner).
//!   `list_by_owner` and `delete_by_owner` are too, but take **two round
//!   trips** when the owner has sessions: the function can only touch
//!   declared keys and learns them from the index, so it answers the first
//!   call with the keys to declare, writing nothing, and runs whole on the
//!   second (again, if the index changed in between).
//! - A **`rotate` into another shard** (a login, or a switch of user, whose
//!   new owner's sessions live elsewhere) is three steps: *seal* the old
//!   record into a rotation mark that keeps a copy of it, *publish* the copy
//!   under the new key with the new owner, *retire* the copy from the mark.
//!   Never are both keys live; between seal and publish neither is (a
//!   request then finds no session, and `was_rotated` says the old key was
//!   rotated); no write to the old key after the seal can succeed, so none
//!   is lost; `created_at` and `expires_at` carry over. If the client dies
//!   after the seal, the session is lost (the user logs in again) and the
//!   mark ends within 60 s; if the new key turns out to be live, the old
//!   record is put back and the rotate fails with `AlreadyExists`. The
//!   conformance suite declares exactly this difference
//!   (`atomic_cross_shard_rotate`).
//! - **Acknowledged writes can be lost in an unplanned failover** (a master
//!   that dies before its replica has the write): Redis replicates
//!   asynchronously. A lost `delete` brings a session back, a lost `update`
//!   lets a later writer reuse its version. A manual failover
//!   (`CLUSTER FAILOVER`) loses nothing.
//! - **Resent writes are safe**: the cluster client resends a command
//!   after a lost connection, so a write may run twice; operation ids (see
//!   Guarantees) make the second run report the first one's outcome.
//! - **During a slot migration** an operation may wait for the client's
//!   resends (`TRYAGAIN`) or fail with a retryable [`Error::Backend`]; it
//!   never writes half.
//!
//! The function library is loaded on every master when a master lacks it
//! (after a failover to a replica that never saw it, or a new node).
//! Redis 7.0 or newer is required (`PEXPIRETIME`, script error codes
//! passed through).

mod builder;
mod connection;
mod error;
mod keys;
mod record;
mod reply;
mod scripts;
#[cfg(feature = "test-hooks")]
pub mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::{Cmd, Value};
use session_core::{
    Error, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, SessionStore, StoreKey, Timestamp, Update, async_trait,
};

pub use builder::{
    DEFAULT_CLUSTER_MAX_RETRY_WAIT, DEFAULT_CLUSTER_MIN_RETRY_WAIT, DEFAULT_CLUSTER_OPERATION_TIMEOUT,
    DEFAULT_CLUSTER_RETRIES, DEFAULT_CONNECTION_TIMEOUT, DEFAULT_PREFIX, DEFAULT_RECONNECT_RETRIES,
    DEFAULT_RESPONSE_TIMEOUT, RedisStoreBuilder,
};
pub use keys::SHARDS;

use connection::Conn;
use error::Timeouts;
use keys::KeyLayout;
use record::{HEADER_LEN, OpId};
use scripts::LIBRARY;

/// A session store on Redis. Cheap to clone: clones share one connection.
///
/// ```no_run
/// # async fn example() -> Result<(), session_core::Error> {
/// let store = store_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
/// let shared = store.clone(); // the same connection
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    // Multiplexed: concurrent operations are pipelined on one socket, which
    // is how Redis is fastest; replaced when the socket dies.
    connection: Arc<Conn>,
    keys: KeyLayout,
    // Passed to the scripts as a decimal string; see ttl_grace.
    grace: Arc<str>,
    grace_ms: i64,
    // For error messages: a timeout says which duration ran out.
    timeouts: Timeouts,
    ops: Arc<OpIds>,
}

/// Where operation ids come from: 8 random bytes per store (from the
/// standard library's OS-seeded hasher keys) and a counter, so ids are
/// unique across processes and writes without a system call per write.
struct OpIds {
    seed: [u8; 8],
    next: AtomicU64,
}

impl OpIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Self {
            seed: h.finish().to_be_bytes(),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> OpId {
        let mut op = [0; 16];
        op[..8].copy_from_slice(&self.seed);
        op[8..].copy_from_slice(&self.next.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        op
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the connection: its URL may hold a password.
        f.debug_struct("RedisStore")
            .field("cluster", &self.keys.is_cluster())
            .field("prefix", &self.keys.prefix())
            .field("grace_ms", &self.grace_ms)
            .field("response_timeout", &self.timeouts.response)
            .field("connection_timeout", &self.timeouts.connection)
            .finish()
    }
}

/// What `update` and `overwrite` write; `expected` is `None` for `overwrite`.
struct Write<'a> {
    expected: Option<u64>,
    data: &'a [u8],
    expires_at: Timestamp,
    owner: Option<&'a str>,
}

fn millis(t: Timestamp) -> [u8; 8] {
    t.as_millis().to_be_bytes()
}

impl RedisStore {
    /// A builder for the server at `url` (`redis://[user:password@]host:port[/db]`,
    /// or `rediss://` with TLS support compiled into redis-rs).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::builder("redis://127.0.0.1:6379")
    ///     .prefix("myapp:session:")
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url.into())
    }

    /// A builder for a Redis Cluster reached through any of `nodes` (seed
    /// URLs, `redis://host:port`; the rest of the cluster is discovered).
    /// The same settings as [`builder`](Self::builder), plus
    /// [`cluster_retries`](RedisStoreBuilder::cluster_retries) and
    /// [`cluster_operation_timeout`](RedisStoreBuilder::cluster_operation_timeout).
    /// See the crate docs, "Redis Cluster", for the layout and for exactly
    /// what a cluster promises less than one server.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::cluster_builder(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
    ///     .prefix("myapp:session:")
    ///     .connect()
    ///     .await?;
    /// assert!(store.is_cluster());
    /// # Ok(())
    /// # }
    /// ```
    pub fn cluster_builder<I, N>(nodes: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = N>,
        N: Into<String>,
    {
        RedisStoreBuilder::new_cluster(nodes.into_iter().map(Into::into).collect())
    }

    /// Whether this store talks to a Redis Cluster.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert!(!store.is_cluster());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_cluster(&self) -> bool {
        self.keys.is_cluster()
    }

    /// Connects to `url` with the default prefix and timeouts.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: impl Into<String>) -> Result<Self, Error> {
        Self::builder(url).connect().await
    }

    pub(crate) fn from_parts(connection: Conn, keys: KeyLayout, grace_ms: i64, timeouts: Timeouts) -> Self {
        Self {
            connection: Arc::new(connection),
            keys,
            grace: grace_ms.to_string().into(),
            grace_ms,
            timeouts,
            ops: Arc::new(OpIds::new()),
        }
    }

    /// The prefix of every key of this store.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert_eq!(store.prefix(), store_redis::DEFAULT_PREFIX);
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// The Redis key of `key`'s record, for operators and tests:
    /// `<prefix>s:{<64 hex digits>}`, or on a cluster
    /// `<prefix>s:{ttt}<64 hex digits>` with `ttt` the key's shard (its top
    /// 10 bits) in three hex digits. It holds one string: a 43-byte header
    /// (kind `S`, version, `created_at`, `expires_at`, operation id, owner
    /// length), the owner and the data; after a `rotate` away from `key`, a
    /// rotation mark (kind `M`); for 60 s after a `delete`, a deletion
    /// receipt (kind `D`). See the crate docs.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// let key = session_core::SessionId::generate()?.store_key();
    /// assert!(store.session_key(&key).starts_with("session:s:{"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn session_key(&self, key: &StoreKey) -> String {
        String::from_utf8(self.keys.session(key)).expect("a prefix is UTF-8 and the rest is ASCII")
    }

    /// The Redis key of the owner index of `owner`, `<prefix>o:{<owner>}`:
    /// a sorted set of hex store keys scored by their `expires_at`. On a
    /// cluster, the index of the owner's shard, `<prefix>i:{ttt}` (`ttt` the
    /// shard in three hex digits): a sorted set of `owner "\0" hex` members
    /// scored 0, beside `<prefix>e:{ttt}`, the same members scored by
    /// `expires_at`.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert_eq!(store.owner_index_key("ada"), "session:o:{ada}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn owner_index_key(&self, owner: &str) -> String {
        self.keys.owner_index(owner)
    }

    /// The configured response timeout.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), session_core::Error> {
    /// let store = store_redis::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert_eq!(store.response_timeout(), store_redis::DEFAULT_RESPONSE_TIMEOUT);
    /// # Ok(())
    /// # }
    /// ```
    pub fn response_timeout(&self) -> Duration {
        self.timeouts.response
    }

    /// An FCALL of `function` with `keys` keys.
    fn script(&self, function: &str, keys: usize) -> Cmd {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(function).arg(keys);
        cmd
    }

    /// The prefix and grace every function takes first; on a cluster the
    /// prefix is empty, which tells the functions that every name comes in
    /// KEYS.
    fn common_args(&self, cmd: &mut Cmd) {
        let prefix = if self.keys.is_cluster() { "" } else { self.keys.prefix() };
        cmd.arg(prefix).arg(&*self.grace);
    }

    /// An FCALL of `function` on the session key `session` and, on a
    /// cluster, the owner index of its shard.
    fn session_script(&self, function: &str, key: &StoreKey, session: &[u8]) -> Cmd {
        if self.keys.is_cluster() {
            let [byowner, byexpiry] = self.keys.shard_index(keys::shard_of_key(key));
            let mut cmd = self.script(function, 3);
            cmd.arg(session).arg(byowner).arg(byexpiry);
            cmd
        } else {
            let mut cmd = self.script(function, 1);
            cmd.arg(session);
            cmd
        }
    }

    /// On a cluster, an owned record must be in its owner's shard.
    fn check_shard(&self, key: &StoreKey, owner: Option<&str>) -> Result<(), Error> {
        if let (true, Some(owner)) = (self.keys.is_cluster(), owner) {
            let (key_shard, owner_shard) = (keys::shard_of_key(key), keys::shard_of_owner(owner));
            if key_shard != owner_shard {
                return Err(Error::WrongShard { key_shard, owner_shard });
            }
        }
        Ok(())
    }

    /// Runs a function for operation `op`: FCALL, and FUNCTION LOAD + FCALL
    /// again only when the server does not have the library (a restart
    /// without persistence, a `FUNCTION FLUSH`, a new version of this crate).
    async fn run(&self, op: &'static str, cmd: &Cmd) -> Result<Value, Error> {
        match self.connection.send(cmd).await {
            Err(e) if e.detail().is_some_and(|d| d.starts_with("Function not found")) => {
                let mut load = redis::cmd("FUNCTION");
                load.arg("LOAD").arg("REPLACE").arg(LIBRARY.source.as_str());
                self.connection
                    .send(&load)
                    .await
                    .map_err(|e| error::error(op, self.timeouts, e))?;
                self.connection
                    .send(cmd)
                    .await
                    .map_err(|e| error::error(op, self.timeouts, e))
            }
            other => other.map_err(|e| error::error(op, self.timeouts, e)),
        }
    }

    /// Sends one plain command for operation `op`.
    async fn query(&self, op: &'static str, cmd: &Cmd) -> Result<Value, Error> {
        self.connection
            .send(cmd)
            .await
            .map_err(|e| error::error(op, self.timeouts, e))
    }

    /// The server TTL instant for a record expiring at `expires_at`.
    fn ttl_at(&self, expires_at: Timestamp) -> i64 {
        expires_at.as_millis().saturating_add(self.grace_ms)
    }

    async fn create_as(&self, record: Record, now: Timestamp, op: OpId) -> Result<(), Error> {
        self.check_shard(&record.key, record.owner.as_deref())?;
        let value = record::encode(
            1,
            record.created_at,
            record.expires_at,
            &op,
            record.owner.as_deref(),
            &record.data,
        )?;
        self.create_value(&record.key, value, record.expires_at, record.owner.as_deref(), now, op)
            .await
    }

    /// The create function on a record already encoded (a cluster's
    /// rotate publishes the sealed record with it).
    async fn create_value(
        &self,
        key: &StoreKey,
        value: Vec<u8>,
        expires_at: Timestamp,
        owner: Option<&str>,
        now: Timestamp,
        op: OpId,
    ) -> Result<(), Error> {
        let session = self.keys.session(key);
        let ttl_at = self.ttl_at(expires_at);
        // Without an owner there is no index to keep, and a fresh key (every
        // new session's) needs no script: one SET NX, as cheap for the server
        // as a plain SET. What it finds there decides the rest.
        if owner.is_none() && ttl_at > 0 {
            let mut set = redis::cmd("SET");
            set.arg(&session)
                .arg(&value)
                .arg("NX")
                .arg("GET")
                .arg("PXAT")
                .arg(ttl_at);
            match self.query("create", &set).await? {
                Value::Nil => return Ok(()),
                Value::BulkString(old) => match record::header(&old, true) {
                    // A live session: this create's own (sent again after a
                    // lost reply) or another's. Nothing was written.
                    Ok(h) if h.kind == record::SESSION && now < h.expires_at => {
                        return if h.op == op { Ok(()) } else { Err(Error::AlreadyExists) };
                    }
                    // An expired record, a mark, a receipt, or bytes this
                    // crate did not write: the function replaces the first
                    // three and refuses the last, as for an owned create.
                    _ => {}
                },
                other => return Err(error::impossible("a string or nil", &other)),
            }
        }
        let mut cmd = self.session_script(&LIBRARY.create, key, &session);
        self.common_args(&mut cmd);
        cmd.arg(self.keys.hex_of(&session))
            .arg(&millis(now))
            .arg(value)
            .arg(ttl_at)
            .arg(&op);
        if let Some(owner) = owner {
            cmd.arg(owner).arg(expires_at.as_millis());
        }
        match reply::flag("a create result", &self.run("create", &cmd).await?)? {
            true => Ok(()),
            false => Err(Error::AlreadyExists),
        }
    }

    /// `update` (with an expected version) and `overwrite` (without): one
    /// script, whose version check an empty expected version turns off.
    async fn write_as(
        &self,
        op_name: &'static str,
        key: &StoreKey,
        write: Write<'_>,
        now: Timestamp,
        op: OpId,
    ) -> Result<u64, Error> {
        self.check_shard(key, write.owner)?;
        let session = self.keys.session(key);
        // Version and created_at are placeholders: the script fills them in.
        let value = record::encode(
            1,
            Timestamp::from_millis(0),
            write.expires_at,
            &op,
            write.owner,
            write.data,
        )?;
        let mut cmd = self.session_script(&LIBRARY.write, key, &session);
        self.common_args(&mut cmd);
        cmd.arg(self.keys.hex_of(&session)).arg(&millis(now));
        match write.expected {
            Some(v) => cmd.arg(&v.to_be_bytes()),
            None => cmd.arg(""),
        };
        cmd.arg(value).arg(self.ttl_at(write.expires_at)).arg(&op);
        if let Some(owner) = write.owner {
            cmd.arg(owner).arg(write.expires_at.as_millis());
        }
        let value = self.run(op_name, &cmd).await?;
        reply::written(&value, write.expected.is_some())
    }

    async fn rotate_as(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
        op: OpId,
    ) -> Result<Record, Error> {
        if let Some(owner) = set_owner {
            session_core::validate_owner(owner)?;
        }
        self.check_shard(new_key, set_owner)?;
        let old = self.keys.session(old_key);
        let new = self.keys.session(new_key);
        let cluster = self.keys.is_cluster();
        if cluster && keys::shard_of_key(old_key) != keys::shard_of_key(new_key) {
            return self.rotate_across_shards(old_key, new_key, set_owner, now, op).await;
        }
        let mut cmd = self.script(&LIBRARY.rotate, if cluster { 4 } else { 2 });
        cmd.arg(&old).arg(&new);
        if cluster {
            let [byowner, byexpiry] = self.keys.shard_index(keys::shard_of_key(old_key));
            cmd.arg(byowner).arg(byexpiry);
        }
        self.common_args(&mut cmd);
        cmd.arg(self.keys.hex_of(&old))
            .arg(self.keys.hex_of(&new))
            .arg(&millis(now))
            // The mark's cap, summed here on i64; the script takes the
            // earlier of it and the old expiry.
            .arg(&millis(now.saturating_add(ROTATION_MARK_TTL)))
            .arg(&op);
        if let Some(owner) = set_owner {
            cmd.arg(owner);
        }
        reply::moved_record(self.run("rotate", &cmd).await?, *new_key)
    }

    /// A cluster's rotate between two shards, in three steps: `seal` turns
    /// the old record into a rotation mark (from then on nothing can change
    /// it: writes to it fail as to a rotated session) and returns it;
    /// `create` publishes it under the new key; `retire` drops the copy of
    /// the record from the mark. Never are both keys live; between the
    /// first two steps neither is. If the new key is taken (a live
    /// session), the old record is put back as it was and the rotate fails
    /// with `AlreadyExists`.
    async fn rotate_across_shards(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
        op: OpId,
    ) -> Result<Record, Error> {
        let old = self.keys.session(old_key);
        let mut seal = self.session_script(&LIBRARY.seal, old_key, &old);
        self.common_args(&mut seal);
        seal.arg(self.keys.hex_of(&old))
            .arg(&millis(now))
            .arg(&millis(now.saturating_add(ROTATION_MARK_TTL)))
            .arg(&op);
        let sealed = match self.run("rotate", &seal).await? {
            Value::Int(1) => return Err(Error::NotFound),
            Value::Int(3) => return self.rotated_by(new_key, &op).await,
            Value::BulkString(bytes) => bytes,
            other => return Err(error::impossible("a sealed record", &other)),
        };
        let Some(record) = record::session(*old_key, sealed.clone())? else {
            return Err(error::impossible("a sealed session", &Value::Nil));
        };
        let owner = set_owner.or(record.owner.as_deref());
        // The old owner's shard is the old key's: without `set_owner`, the
        // new key must be there too.
        let published = match self.check_shard(new_key, owner) {
            Ok(()) => {
                let value = record::encode(1, record.created_at, record.expires_at, &op, owner, &record.data)?;
                self.create_value(new_key, value, record.expires_at, owner, now, op)
                    .await
            }
            Err(e) => Err(e),
        };
        match published {
            Ok(()) => {}
            Err(Error::AlreadyExists | Error::WrongShard { .. }) => {
                // Put the old record back as it was (a create over its own
                // mark); concurrent writes meanwhile found no session.
                let e = published.expect_err("matched an error");
                self.create_value(old_key, sealed, record.expires_at, record.owner.as_deref(), now, op)
                    .await?;
                return Err(e);
            }
            // The outcome of the publish is unknown (a lost reply): the
            // caller may resend the rotate with the same op id, which finds
            // the seal and publishes again.
            Err(e) => return Err(e),
        }
        let mut retire = self.script(&LIBRARY.retire, 1);
        retire.arg(&old).arg(&op);
        if let Err(e) = self.run("rotate", &retire).await {
            // Best effort: the mark still ends at its TTL, with the copy.
            tracing::warn!(error = %e, "store-redis: could not drop the record copy from a rotation mark");
        }
        Ok(Record {
            key: *new_key,
            version: 1,
            data: record.data,
            created_at: record.created_at,
            expires_at: record.expires_at,
            owner: owner.map(str::to_owned),
        })
    }

    /// A resent rotate across shards whose first run went through: the
    /// record it published, if the new key still holds it.
    async fn rotated_by(&self, new_key: &StoreKey, op: &OpId) -> Result<Record, Error> {
        let mut get = redis::cmd("GET");
        get.arg(self.keys.session(new_key));
        let bytes = match self.query("rotate", &get).await? {
            Value::BulkString(bytes) => bytes,
            _ => return Err(Error::NotFound),
        };
        if record::header(&bytes, true)?.op != *op {
            return Err(Error::NotFound);
        }
        record::session(*new_key, bytes)?.ok_or(Error::NotFound)
    }

    async fn delete_as(&self, key: &StoreKey, now: Timestamp, op: OpId) -> Result<bool, Error> {
        let session = self.keys.session(key);
        let mut cmd = self.session_script(&LIBRARY.delete, key, &session);
        self.common_args(&mut cmd);
        cmd.arg(self.keys.hex_of(&session)).arg(&millis(now)).arg(&op);
        reply::flag("a delete result", &self.run("delete", &cmd).await?)
    }

    async fn delete_by_owner_as(&self, owner: &str, now: Timestamp, op: OpId) -> Result<u64, Error> {
        session_core::validate_owner(owner)?;
        let value = self
            .run_declaring("delete_by_owner", |declared| {
                let mut cmd = self.owner_script(&LIBRARY.delete_by_owner, owner, true, declared);
                cmd.arg(owner).arg(&millis(now)).arg(&op);
                cmd
            })
            .await?;
        let n = reply::int("a count", &value)?;
        u64::try_from(n).map_err(|_| error::impossible("a count", &Value::Int(n)))
    }

    /// An FCALL of an owner's function: on one server its index (and its
    /// receipt); on a cluster its shard's index, (its receipt,) and the
    /// `declared` session keys, then the common arguments.
    fn owner_script(&self, function: &str, owner: &str, receipt: bool, declared: &[Vec<u8>]) -> Cmd {
        let mut cmd;
        if self.keys.is_cluster() {
            let [byowner, byexpiry] = self.keys.shard_index(keys::shard_of_owner(owner));
            cmd = self.script(function, 2 + usize::from(receipt) + declared.len());
            cmd.arg(byowner).arg(byexpiry);
        } else {
            cmd = self.script(function, 1 + usize::from(receipt));
            cmd.arg(self.keys.owner_index(owner));
        }
        if receipt {
            cmd.arg(self.keys.owner_receipt(owner));
        }
        for key in declared {
            cmd.arg(key);
        }
        self.common_args(&mut cmd);
        cmd
    }

    /// Runs an owner's function. On a cluster every key a function touches
    /// must be declared, and the session keys are known only from the
    /// index: the function answers `again` with the keys it found
    /// undeclared (before writing anything), and is sent again declaring
    /// them, until the index stops changing between two calls (a few
    /// tries; then a retryable error). One server needs one call.
    async fn run_declaring(&self, op_name: &'static str, build: impl Fn(&[Vec<u8>]) -> Cmd) -> Result<Value, Error> {
        const TRIES: usize = 8;
        let mut declared: Vec<Vec<u8>> = Vec::new();
        for _ in 0..TRIES {
            let value = self.run(op_name, &build(&declared)).await?;
            let Some(missing) = reply::again(&value)? else {
                return Ok(value);
            };
            for hex in missing {
                declared.push(self.keys.session(&hex));
            }
        }
        Err(Error::backend(
            format!("store-redis: {op_name}: the owner's index kept changing over {TRIES} tries"),
            true,
        ))
    }
}

/// Writes with a given operation id, for tests that resend a write whose
/// reply was lost: the second call must report what the first did. Not a
/// public API: behind the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
impl RedisStore {
    pub async fn create_with_op_id(&self, record: Record, now: Timestamp, op: [u8; 16]) -> Result<(), Error> {
        self.create_as(record, now, op).await
    }

    pub async fn update_with_op_id(
        &self,
        key: &StoreKey,
        u: Update,
        now: Timestamp,
        op: [u8; 16],
    ) -> Result<u64, Error> {
        let write = Write {
            expected: Some(u.expected_version),
            data: &u.data,
            expires_at: u.expires_at,
            owner: u.owner.as_deref(),
        };
        self.write_as("update", key, write, now, op).await
    }

    pub async fn overwrite_with_op_id(
        &self,
        key: &StoreKey,
        o: Overwrite,
        now: Timestamp,
        op: [u8; 16],
    ) -> Result<u64, Error> {
        let write = Write {
            expected: None,
            data: &o.data,
            expires_at: o.expires_at,
            owner: o.owner.as_deref(),
        };
        self.write_as("overwrite", key, write, now, op).await
    }

    pub async fn rotate_with_op_id(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
        op: [u8; 16],
    ) -> Result<Record, Error> {
        self.rotate_as(old_key, new_key, set_owner, now, op).await
    }

    pub async fn delete_with_op_id(&self, key: &StoreKey, now: Timestamp, op: [u8; 16]) -> Result<bool, Error> {
        self.delete_as(key, now, op).await
    }

    pub async fn delete_by_owner_with_op_id(&self, owner: &str, now: Timestamp, op: [u8; 16]) -> Result<u64, Error> {
        self.delete_by_owner_as(owner, now, op).await
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        self.create_as(record, now, self.ops.next()).await
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        // One GET, atomic by itself: no script. The reply's bytes become the
        // record's data without a copy; validation and liveness (by the
        // caller's `now`) are decided here.
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.keys.session(key));
        let bytes = match self.query("load", &cmd).await? {
            Value::Nil => return Ok(None),
            Value::BulkString(bytes) => bytes,
            other => return Err(error::impossible("a string", &other)),
        };
        Ok(record::session(*key, bytes)?.filter(|r| now < r.expires_at))
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        let write = Write {
            expected: Some(update.expected_version),
            data: &update.data,
            expires_at: update.expires_at,
            owner: update.owner.as_deref(),
        };
        self.write_as("update", key, write, now, self.ops.next()).await
    }

    async fn overwrite(&self, key: &StoreKey, overwrite: Overwrite, now: Timestamp) -> Result<u64, Error> {
        let write = Write {
            expected: None,
            data: &overwrite.data,
            expires_at: overwrite.expires_at,
            owner: overwrite.owner.as_deref(),
        };
        self.write_as("overwrite", key, write, now, self.ops.next()).await
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        let session = self.keys.session(key);
        let mut cmd = self.session_script(&LIBRARY.touch, key, &session);
        self.common_args(&mut cmd);
        cmd.arg(self.keys.hex_of(&session))
            .arg(&millis(now))
            .arg(&millis(expires_at))
            .arg(self.ttl_at(expires_at))
            .arg(expires_at.as_millis());
        reply::flag("a touch result", &self.run("touch", &cmd).await?)
    }

    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        self.rotate_as(old_key, new_key, set_owner, now, self.ops.next()).await
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        // The header only (one GETRANGE, atomic by itself): a mark's end is
        // its expires_at field. The caller's clock decides whether the mark
        // is in force, never the server's.
        let mut cmd = redis::cmd("GETRANGE");
        cmd.arg(self.keys.session(key)).arg(0).arg(HEADER_LEN - 1);
        let bytes = match self.query("was_rotated", &cmd).await? {
            Value::BulkString(bytes) => bytes,
            other => return Err(error::impossible("a string", &other)),
        };
        if bytes.is_empty() {
            return Ok(false);
        }
        let h = record::header(&bytes, false)?;
        Ok(h.kind == record::MARK && now < h.expires_at)
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        self.delete_as(key, now, self.ops.next()).await
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        session_core::validate_owner(owner)?;
        let value = self
            .run_declaring("list_by_owner", |declared| {
                let mut cmd = self.owner_script(&LIBRARY.list_by_owner, owner, false, declared);
                cmd.arg(owner).arg(&millis(now)).arg(now.as_millis());
                cmd
            })
            .await?;
        let (sessions, skipped) = reply::owner_listing(&value)?;
        // Left out, not fatal: a "your devices" page still shows the rest.
        // The log names the key by its short prefix, never the owner or data.
        for s in skipped {
            let key = s.key.map_or_else(|| "(not a store key)".to_owned(), |k| k.short());
            tracing::warn!(key = %key, reason = %s.reason, "store-redis: list_by_owner skipped a damaged session record");
        }
        Ok(sessions)
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        self.delete_by_owner_as(owner, now, self.ops.next()).await
    }

    /// Returns 0 without a round trip: Redis removes every record, mark and
    /// receipt at its TTL by itself, and expired records are already
    /// invisible.
    async fn delete_expired(&self, _now: Timestamp, _limit: usize) -> Result<u64, Error> {
        Ok(0)
    }

    /// On a cluster, the top 10 bits of the key (see [`SHARDS`]); `None` on
    /// one server.
    fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
        self.keys.is_cluster().then(|| keys::shard_of_key(key))
    }

    /// On a cluster, the top 10 bits of the FNV-1a hash of the owner;
    /// `None` on one server.
    fn shard_of_owner(&self, owner: &str) -> Option<u32> {
        self.keys.is_cluster().then(|| keys::shard_of_owner(owner))
    }
}
