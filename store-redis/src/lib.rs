//! # store-redis: sessions in Redis, one atomic script per operation
//!
//! [`RedisStore`] implements the [`SessionStore`] contract on Redis. Pick it
//! when several application processes must share sessions and a fast
//! in-memory server is at hand; pick `store-postgres` when sessions must be
//! as durable as the rest of your data, `store-memory` for one process.
//!
//! ## Guarantees
//!
//! - **Atomic, linearizable, one round trip.** `load` is one plain `HMGET`
//!   of the record's fields, atomic as any single command; the store then
//!   validates the fields and judges liveness itself. `was_rotated` is one
//!   `HMGET` too. Every other operation is one Lua script sent with EVALSHA
//!   (the script is loaded again only when the server answers NOSCRIPT, for
//!   example after a restart). Redis runs a command or script to completion
//!   before serving anything else, so each operation takes effect at one
//!   instant. Scripts validate everything they will touch before their first
//!   write, because Redis does not roll back a script that fails half way.
//!   [`delete_expired`](SessionStore::delete_expired) sends nothing and
//!   returns 0: the server expires records (and rotation marks) by itself.
//! - **Liveness by the caller's clock.** A record is live iff
//!   `now < expires_at`, with `now` the argument of the operation; the
//!   server's clock never decides it. Every record carries a server TTL
//!   (`PEXPIREAT`) at `expires_at` plus an optional
//!   [grace](RedisStoreBuilder::ttl_grace), never earlier, so Redis removes
//!   what is expired and nothing that is live (given clocks in sync within
//!   the grace). `touch` only ever moves the TTL later.
//! - **Rotation marks by the caller's clock too.** `rotate` returns the
//!   moved record (read in the same script) and leaves under the old key a
//!   hash with the one field `rotated_until`, `min(old expires_at,
//!   now + ROTATION_MARK_TTL)`, which only `was_rotated` reads, comparing it
//!   with its `now`. The mark keeps the old record's server TTL rather than
//!   one at its own end, so a caller whose clock runs behind the server's
//!   still sees it in force; it costs about 150 bytes of server memory
//!   (`MEMORY USAGE`, default prefix) until the old session would have
//!   expired. Every other operation reads it as no session; `create` and
//!   `rotate` onto the key replace it, `delete` removes it.
//! - **Owner index that stays small.** Each owner has a sorted set of session
//!   keys scored by `expires_at`. Reads check every entry against its record
//!   (expired or moved entries are skipped); every write that adds an entry
//!   first drops the entries whose record the server has already expired,
//!   and every write gives the set a TTL at its longest-lived entry, so an
//!   index never outgrows its owner's sessions. (Renewals only rescore an
//!   entry and `rotate` renames one, so they skip the trimming: the index
//!   grows only by additions.) A `rotate` with `set_owner` (a login or a
//!   user switch) moves the entry from the old owner's index to the new
//!   owner's in the same script, as an `update` that changes the owner
//!   does. Owners are part of the index's key name, and any two owners the
//!   contract accepts (braces, the longest ones) give two distinct names.
//! - **Bad bytes are errors.** A key holding something other than a session
//!   hash (`WRONGTYPE` territory), a missing field, a malformed number or a
//!   version over `u64::MAX` gives [`Error::Corrupt`], and the operation
//!   writes nothing; so does an `update` or `overwrite` of a record at
//!   version `u64::MAX`, which cannot be incremented. (A hash holding none of
//!   the session fields, such as a rotation mark, reads as absent for `load`
//!   and the scripts alike.) `delete` and `delete_by_owner` go ahead: ending
//!   a session must work even when its record is damaged, so they remove it
//!   and do not count it as live. `list_by_owner` skips a damaged record and
//!   logs it (`tracing::warn!` with the key's short prefix, never the owner
//!   or data): one damaged record never hides an owner's other sessions
//!   (a foreign value under the index's own name still gives
//!   [`Error::Corrupt`]: then nothing can be listed). Nothing panics.
//! - **Errors say what failed.** Lost connections and timeouts give a
//!   transient [`Error::Backend`] whose message names the operation and, for
//!   a timeout, the configured durations, e.g. ``store-redis: `load` got no
//!   reply within the response timeout of 300 ms (or no connection within
//!   the connection timeout of 300 ms)`` (redis-rs reports both timeouts
//!   alike). No message holds a key, a token or session data. A refused
//!   prefix or URL is an [`Error::Config`] from
//!   [`build`](RedisStoreBuilder::build).
//! - **Reconnects by itself.** The store holds a redis-rs
//!   `ConnectionManager`: one multiplexed connection shared by all clones of
//!   the store, replaced in the background when it breaks. The operation that
//!   meets the broken connection fails (its outcome is unknown if it was a
//!   write); later ones use the new connection. Timeouts are
//!   [configurable](RedisStoreBuilder).
//!
//! ## What survives a Redis restart
//!
//! Exactly what Redis persisted. With AOF (`appendonly yes`,
//! `appendfsync everysec`) at most about a second of writes is lost; with RDB
//! snapshots only, everything since the last snapshot; with persistence off
//! (`save ""`, `appendonly no`), every session is gone and all users are
//! logged out. Nothing is ever corrupted or resurrected by a restart: a
//! restored record carries its absolute `PEXPIREAT`, and liveness is still
//! judged by `expires_at`. The scripts reload themselves after a restart.
//! The application needs no restart either: the same store reconnects.
//!
//! ## Scaling out, and what changes for Redis Cluster
//!
//! On one Redis server (optionally with replicas for failover) a store runs
//! at close to the server's raw round-trip rate. The server's CPU is what
//! bounds throughput: `load` is one plain `HMGET` (about 1 µs of server
//! time), each write one script of about 5-10 µs without an owner and
//! 10-15 µs with one, `rotate` (rarer: a login) about twice that, as it also
//! returns the moved record and writes the mark (see `src/scripts.rs` for
//! the measurements and what each costs), against about 1 µs for a plain
//! `GET`/`SET`. When client
//! and server share a small machine, the client's CPU counts as much:
//! `examples/client_cost.rs` (32 tasks, 256-byte sessions, 2 shared cores,
//! two runs) measured `load` at 6.6–6.8 µs of client CPU and 3.4–5.8 µs of
//! server CPU per operation, a raw `HMGET` of the same five fields at
//! 6.8–7.0 and 5.2, and a raw `GET` of one string at 4.3–5.2 and 3.4–3.6.
//! The store's own overhead (the connection manager, validation) is lost in
//! the noise; the five-field reply is what costs: a record kept as one
//! string could be read as cheaply as a `GET`, at the price of scripts that
//! edit a packed header (not done). Replication is asynchronous: a failover
//! may lose the last writes, as it would for any Redis data.
//!
//! Keys are laid out for Redis Cluster already (see [`RedisStore::session_key`]
//! and [`RedisStore::owner_index_key`]): `<prefix>{<hex store key>}` and
//! `<prefix>owner:{<owner>}`. The braces are hash tags, so each session is in
//! the slot of its own key (sessions spread over the cluster) and each owner
//! index in the slot of its owner. The prefix may not contain braces (the
//! builder refuses it), so it can never move a tag. This version talks to
//! one server only, where key names are plain binary strings: any two owners
//! the contract accepts give two distinct index names, braces included. On
//! Cluster, a script may touch only keys of one slot that it receives in
//! `KEYS`, which changes four things:
//!
//! 1. `load`, `was_rotated`, `touch`, and `create`/`update`/`overwrite`/
//!    `delete` of a session without an owner touch one key: they stay one
//!    atomic script or command.
//! 2. The owner index lives in another slot than the sessions it lists, so
//!    maintaining it becomes a separate step after the record's script (the
//!    record script returns the old owner so the client can fix both
//!    indexes), and `list_by_owner`/`delete_by_owner` read the index, then
//!    each record by its own script. The index is already treated as a hint
//!    here (every entry is checked against its record), so a missing step
//!    only leaves an entry that later reads skip and later writes trim;
//!    `delete_by_owner` is then per session rather than one instant.
//! 3. `rotate` moves a record between two slots and leaves the mark in the
//!    first. It needs either a two-step protocol (write the new key only if
//!    absent, then turn the old one into a mark only if its version is
//!    unchanged, undoing the first step otherwise) or a hash tag per *store*
//!    (`<prefix>{}` for all keys: one slot, atomic everything, no
//!    spreading). A `rotate` with `set_owner` touches two indexes besides:
//!    two more separate steps, as for an `update` that changes the owner.
//!    The choice is left to the Cluster issue.
//! 4. An owner holding a brace does not get a tag of its own: Redis hashes
//!    the text between the first `{` and the first `}` after it, so
//!    `a}b` and `a}c` share the tag `a` (and the slot of owner `a`), and
//!    `}a{` gives an empty tag, which makes Redis hash the whole name.
//!    Correct, as every slot is computed from the name alone, but owners
//!    sharing a tag share a slot. Cluster support should tag the index by
//!    an encoding of the owner without braces (hex, or a digest), which is a
//!    key layout change and needs a migration of existing indexes.
//!
//! Redis 7.0 or newer is required (tested with 7.0.15): older servers do
//! not pass a script's own error codes through, so damaged records would
//! surface as backend errors instead of [`Error::Corrupt`], and have no
//! `PEXPIRETIME`, which `rotate` uses to give the mark the old record's
//! TTL.
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
//!     .build()
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

mod builder;
mod keys;
mod reply;
mod scripts;

use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionManager;
use redis::{Script, ScriptInvocation};
use session_core::{
    Bytes, Error, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, SessionStore, StoreKey, Timestamp, Update,
    async_trait,
};

pub use builder::{
    DEFAULT_CONNECTION_TIMEOUT, DEFAULT_PREFIX, DEFAULT_RECONNECT_RETRIES, DEFAULT_RESPONSE_TIMEOUT, RedisStoreBuilder,
};

use keys::KeyLayout;
use reply::Timeouts;
use scripts::SCRIPTS;

/// A session store on Redis. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct RedisStore {
    // Multiplexed: concurrent operations are pipelined on one socket, which
    // is how Redis is fastest; it reconnects by itself when the socket dies.
    connection: ConnectionManager,
    keys: KeyLayout,
    // Passed to the scripts as a decimal string; see ttl_grace.
    grace_ms: i64,
    // For error messages: a timeout says which duration ran out.
    timeouts: Timeouts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the connection: its URL may hold a password.
        f.debug_struct("RedisStore")
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
    data: &'a Bytes,
    expires_at: Timestamp,
    owner: Option<&'a str>,
}

impl RedisStore {
    /// A builder for the server at `url` (`redis://[user:password@]host:port[/db]`,
    /// or `rediss://` with TLS support compiled into redis-rs).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url.into())
    }

    /// Connects to `url` with the default prefix and timeouts.
    pub async fn connect(url: impl Into<String>) -> Result<Self, Error> {
        Self::builder(url).build().await
    }

    /// The prefix of every key of this store.
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// The Redis key of the session hash of `key`, for operators and tests.
    /// Its fields are `version`, `data`, `created_at`, `expires_at` (decimal
    /// milliseconds) and `owner` (absent when none). After a `rotate` away
    /// from `key` it holds a rotation mark instead: a hash with the one field
    /// `rotated_until` (decimal milliseconds) and the old record's server TTL.
    pub fn session_key(&self, key: &StoreKey) -> String {
        self.keys.session(key)
    }

    /// The Redis key of the owner index of `owner`: a sorted set of hex store
    /// keys scored by their `expires_at`.
    pub fn owner_index_key(&self, owner: &str) -> String {
        self.keys.owner_index(owner)
    }

    /// The configured response timeout.
    pub fn response_timeout(&self) -> Duration {
        self.timeouts.response
    }

    /// An invocation of `script` with the arguments every script starts with:
    /// the key prefix and the TTL grace.
    fn invocation<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(self.keys.prefix()).arg(self.grace_ms);
        invocation
    }

    /// Runs a script for operation `op`: EVALSHA, and SCRIPT LOAD + EVALSHA
    /// only after NOSCRIPT.
    async fn run(&self, op: &'static str, invocation: &ScriptInvocation<'_>) -> Result<Value, Error> {
        // A clone of the manager is a handle to the same connection.
        let mut connection = self.connection.clone();
        invocation
            .invoke_async::<Value>(&mut connection)
            .await
            .map_err(|e| reply::error(op, self.timeouts, e))
    }

    /// Sends one plain command for operation `op`.
    async fn query(&self, op: &'static str, cmd: &redis::Cmd) -> Result<Value, Error> {
        let mut connection = self.connection.clone();
        cmd.query_async(&mut connection)
            .await
            .map_err(|e| reply::error(op, self.timeouts, e))
    }

    /// The server TTL instant for a record expiring at `expires_at`.
    fn ttl_at(&self, expires_at: Timestamp) -> i64 {
        expires_at.as_millis().saturating_add(self.grace_ms)
    }

    /// `update` (with an expected version) and `overwrite` (without): one
    /// script, whose version check an empty expected version turns off.
    async fn write(&self, op: &'static str, key: &StoreKey, write: Write<'_>, now: Timestamp) -> Result<u64, Error> {
        let mut inv = self.invocation(&SCRIPTS.write);
        inv.key(self.keys.session(key)).arg(key.to_hex()).arg(now.as_millis());
        match write.expected {
            Some(v) => inv.arg(v),
            None => inv.arg(""),
        };
        inv.arg(write.data.as_ref())
            .arg(write.expires_at.as_millis())
            .arg(self.ttl_at(write.expires_at));
        if let Some(owner) = write.owner {
            inv.arg(owner);
        }
        let value = self.run(op, &inv).await?;
        let items = reply::array("a write result", &value)?.unwrap_or_default();
        match (reply::status(items)?, items.get(1)) {
            ("ok", Some(v)) => reply::version(v),
            ("conflict", Some(v)) if write.expected.is_some() => Err(Error::Conflict {
                current: reply::version(v)?,
            }),
            ("notfound", None) => Err(Error::NotFound),
            (other, _) => Err(Error::Corrupt(format!("{op} returned the status {other:?}"))),
        }
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        let mut inv = self.invocation(&SCRIPTS.create);
        inv.key(self.keys.session(&record.key))
            .arg(record.key.to_hex())
            .arg(now.as_millis())
            .arg(record.data.as_ref())
            .arg(record.created_at.as_millis())
            .arg(record.expires_at.as_millis())
            .arg(self.ttl_at(record.expires_at));
        if let Some(owner) = &record.owner {
            inv.arg(owner.as_str());
        }
        match reply::int(&self.run("create", &inv).await?)? {
            1 => Ok(()),
            0 => Err(Error::AlreadyExists),
            n => Err(Error::Corrupt(format!("create returned {n}"))),
        }
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        // One command, so atomic by itself: no script needed. Validation and
        // liveness (by the caller's `now`) are decided here, exactly on i64.
        // A rotation mark holds none of these fields, so it reads as absent.
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.session(key))
            .arg(&["version", "data", "created_at", "expires_at", "owner"]);
        let Some(f) = reply::hmget_fields(self.query("load", &cmd).await?)? else {
            return Ok(None);
        };
        if now >= f.expires_at {
            return Ok(None);
        }
        Ok(Some(Record {
            key: *key,
            version: f.version,
            data: f.data,
            created_at: f.created_at,
            expires_at: f.expires_at,
            owner: f.owner,
        }))
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        let write = Write {
            expected: Some(update.expected_version),
            data: &update.data,
            expires_at: update.expires_at,
            owner: update.owner.as_deref(),
        };
        self.write("update", key, write, now).await
    }

    async fn overwrite(&self, key: &StoreKey, overwrite: Overwrite, now: Timestamp) -> Result<u64, Error> {
        let write = Write {
            expected: None,
            data: &overwrite.data,
            expires_at: overwrite.expires_at,
            owner: overwrite.owner.as_deref(),
        };
        self.write("overwrite", key, write, now).await
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        let mut inv = self.invocation(&SCRIPTS.touch);
        inv.key(self.keys.session(key))
            .arg(key.to_hex())
            .arg(now.as_millis())
            .arg(expires_at.as_millis())
            .arg(self.ttl_at(expires_at));
        match reply::int(&self.run("touch", &inv).await?)? {
            1 => Ok(true),
            0 => Ok(false),
            n => Err(Error::Corrupt(format!("touch returned {n}"))),
        }
    }

    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let mut inv = self.invocation(&SCRIPTS.rotate);
        inv.key(self.keys.session(old_key))
            .key(self.keys.session(new_key))
            .arg(old_key.to_hex())
            .arg(new_key.to_hex())
            .arg(now.as_millis())
            // The mark's cap, summed here on i64 (Lua has only doubles); the
            // script takes the earlier of it and the old expiry.
            .arg(now.saturating_add(ROTATION_MARK_TTL).as_millis());
        if let Some(owner) = set_owner {
            inv.arg(owner);
        }
        reply::moved_record(self.run("rotate", &inv).await?, *new_key)
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        // One HMGET, atomic by itself, like load: the mark's end, and the
        // session fields that tell a mark from a record (the same five as
        // load's, so the two agree on what is a session; `data` comes back
        // only when a record is there, rare after a load that found none).
        // The caller's clock decides whether the mark is in force, never the
        // server's.
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.session(key)).arg(&reply::MARK_FIELDS);
        let until = reply::mark_until(&self.query("was_rotated", &cmd).await?)?;
        Ok(until.is_some_and(|until| now < until))
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        let mut inv = self.invocation(&SCRIPTS.delete);
        inv.key(self.keys.session(key)).arg(key.to_hex()).arg(now.as_millis());
        match reply::int(&self.run("delete", &inv).await?)? {
            1 => Ok(true),
            0 => Ok(false),
            n => Err(Error::Corrupt(format!("delete returned {n}"))),
        }
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        let mut inv = self.invocation(&SCRIPTS.list_by_owner);
        inv.key(self.keys.owner_index(owner)).arg(owner).arg(now.as_millis());
        let (sessions, skipped) = reply::owner_listing(&self.run("list_by_owner", &inv).await?)?;
        // Left out, not fatal: a "your devices" page still shows the rest.
        // The log names the key by its short prefix, never the owner or data.
        for s in skipped {
            let key = s.key.map_or_else(|| "(not a store key)".to_owned(), |k| k.short());
            tracing::warn!(key = %key, reason = %s.reason, "store-redis: list_by_owner skipped a damaged session record");
        }
        Ok(sessions)
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        let mut inv = self.invocation(&SCRIPTS.delete_by_owner);
        inv.key(self.keys.owner_index(owner)).arg(owner).arg(now.as_millis());
        let n = reply::int(&self.run("delete_by_owner", &inv).await?)?;
        u64::try_from(n).map_err(|_| Error::Corrupt(format!("delete_by_owner returned {n}")))
    }

    /// Returns 0 without a round trip: Redis removes every record, and every
    /// rotation mark, at its `PEXPIREAT` by itself, and expired records are
    /// already invisible.
    async fn delete_expired(&self, _now: Timestamp, _limit: usize) -> Result<u64, Error> {
        Ok(0)
    }
}
