//! The contenders, everything the workloads can measure: the [`Contender`]
//! trait, the names ([`ContenderId`]) the report knows them by, and the
//! implementations, one file per kind of client: our stores through
//! `SessionStore`, the raw clients, and (feature `peers`) the peer stores.

pub mod ours;
pub mod raw_map;
pub mod raw_postgres;
pub mod raw_redis;
pub mod raw_sled;

#[cfg(feature = "peers")]
pub mod peers;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use session_core::StoreKey;

use crate::{BenchError, Op};

/// Which backend family a contender belongs to: it is compared with the
/// raw client and the peers of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// In-process memory.
    Memory,
    /// Embedded sled.
    Sled,
    /// Redis over loopback.
    Redis,
    /// A Redis Cluster over loopback (`REDIS_CLUSTER_NODES`).
    RedisCluster,
    /// PostgreSQL over loopback.
    Postgres,
}

impl Backend {
    /// Every family, in the order of the report.
    pub const ALL: [Backend; 5] = [
        Backend::Memory,
        Backend::Sled,
        Backend::Redis,
        Backend::RedisCluster,
        Backend::Postgres,
    ];

    /// The lowercase name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sled => "sled",
            Backend::Redis => "redis",
            Backend::RedisCluster => "redis-cluster",
            Backend::Postgres => "postgres",
        }
    }

    /// The inverse of [`Backend::name`].
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// What a contender is, relative to its family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// This workspace's backend, through `SessionStore`.
    Ours,
    /// The client underneath, doing the minimal round trip per operation.
    Raw,
    /// Another project's store, through its own trait; the crate name.
    Peer(String),
    /// This workspace's backend through `compat-tower-sessions`' `TowerStore`,
    /// driven as the tower-sessions peers are (feature `peers`).
    Compat,
}

/// The name of a contender: its family and role. Its [`Display`](fmt::Display)
/// form is the criterion function id: `memory`, `memory:raw`,
/// `memory:peer:tower-sessions-moka-store`, `memory:compat`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContenderId {
    /// The family.
    pub backend: Backend,
    /// Ours, raw or a peer.
    pub role: Role,
}

impl ContenderId {
    /// Parses the [`Display`](fmt::Display) form back.
    pub fn parse(text: &str) -> Option<ContenderId> {
        let mut parts = text.splitn(3, ':');
        let backend = Backend::from_name(parts.next()?)?;
        let role = match (parts.next(), parts.next()) {
            (None, _) => Role::Ours,
            (Some("raw"), None) => Role::Raw,
            (Some("compat"), None) => Role::Compat,
            (Some("peer"), Some(name)) => Role::Peer(name.to_owned()),
            _ => return None,
        };
        Some(ContenderId { backend, role })
    }

    /// A short column label for tables and plots.
    pub fn label(&self) -> String {
        match &self.role {
            Role::Ours => format!("{} (ours)", self.backend.name()),
            Role::Raw => format!("{} raw", self.backend.name()),
            Role::Peer(name) => name.clone(),
            Role::Compat => format!("{} (ours via tower-sessions)", self.backend.name()),
        }
    }
}

impl fmt::Display for ContenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            Role::Ours => write!(f, "{}", self.backend.name()),
            Role::Raw => write!(f, "{}:raw", self.backend.name()),
            Role::Peer(name) => write!(f, "{}:peer:{name}", self.backend.name()),
            Role::Compat => write!(f, "{}:compat", self.backend.name()),
        }
    }
}

/// A contender freshly made, or why it could not be.
pub type Made = Result<Arc<dyn Contender>, BenchError>;

/// `contender`, type-erased for the lineup.
pub fn made<C: Contender>(contender: Result<C, BenchError>) -> Made {
    contender.map(|c| Arc::new(c) as Arc<dyn Contender>)
}

/// Something the workloads can measure.
///
/// Keys are always [`StoreKey`]s; a contender maps them to its own key
/// type (a prefixed Redis key, a tower-sessions `Id`, ...). Payloads are
/// [`Bytes`]; a peer wraps them in its own record type, and pays for its own
/// encoding as it would in an application.
///
/// Each operation is the contender's one way of doing that operation. A
/// contender that has no such operation says so in [`Contender::supports`]
/// and is left out of that workload.
#[async_trait]
pub trait Contender: Send + Sync + 'static {
    /// Its name in the report.
    fn id(&self) -> &ContenderId;

    /// Whether it has this operation (a peer may lack touch or rotate).
    fn supports(&self, op: Op) -> bool {
        let _ = op;
        true
    }

    /// Writes many new sessions quickly (pipelines and batches where the
    /// client allows), for the store-size preload. Not timed.
    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError>;

    /// The shard `key` is in, for a contender that splits its records into
    /// shards and moves a session in one atomic step only within one (a
    /// Redis Cluster); `None` (the default) where any two keys will do. A
    /// workload that rotates draws each new key into the old key's shard,
    /// as `SessionManager` mints the new id of a rotate that keeps its owner
    /// (`session_core::mint_id`).
    fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
        let _ = key;
        None
    }

    /// Inserts a new session under `key`.
    async fn create(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError>;

    /// Reads the session; `true` if it was found.
    async fn load(&self, key: &StoreKey) -> Result<bool, BenchError>;

    /// Writes new data. Contenders with versions compare-and-swap on
    /// `expected_version` and return the version now stored (the new one, or
    /// the current one after a conflict); the others return
    /// `expected_version + 1`.
    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError>;

    /// Extends the expiry. `payload` is the session's current data, for
    /// stores whose renewal rewrites the whole record (tower-sessions).
    async fn touch(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError>;

    /// Moves the session from `old` to `new`. `payload` is the session's
    /// current data, for stores whose rotation re-creates the record.
    async fn rotate(&self, old: &StoreKey, new: &StoreKey, payload: &Bytes) -> Result<(), BenchError>;

    /// Removes the session.
    async fn delete(&self, key: &StoreKey) -> Result<(), BenchError>;

    /// Removes everything this contender wrote (its key prefix, table or
    /// directory). Called once when it is no longer needed.
    async fn cleanup(&self) -> Result<(), BenchError> {
        Ok(())
    }
}
