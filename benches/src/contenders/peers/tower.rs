//! Any tower-sessions store (0.14 core) as a contender: the peers, and our
//! stores through compat-tower-sessions' `TowerStore`.
//!
//! tower-sessions has no touch or rotate in its store trait: its session
//! layer renews by saving the whole record, and `cycle_id` deletes the old
//! record and creates the new one. Those are the paths timed here under
//! `touch` and `rotate`. Update is `save` (no compare-and-swap).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use compat_tower_sessions::TowerStore;
use parking_lot::Mutex;
use session_core::StoreKey;
use time::OffsetDateTime;
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};

use crate::clock::BenchClock;
use crate::contenders::raw_sled::open_sled;
use crate::fan_out::fan_out;
use crate::namespace::{Namespace, unique_name};
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// How a peer's preload writes: `save` is an upsert in most stores, but
/// tower-sessions-redis-store's `save` is `SET XX` (existing keys only).
#[derive(Debug, Clone, Copy)]
pub enum Preload {
    /// `save`, this many at once.
    Save(usize),
    /// `create`, this many at once.
    Create(usize),
}

/// A tower-sessions store.
pub struct TowerPeer<S> {
    id: ContenderId,
    store: Arc<S>,
    clock: BenchClock,
    preload: Preload,
    namespace: Option<Namespace>,
    /// Ids this contender wrote (preloaded or created), for stores without
    /// a namespace to remove (tower-sessions-redis-store writes unprefixed
    /// keys).
    preloaded: Option<Mutex<Vec<Id>>>,
}

fn id_of(key: &StoreKey) -> Id {
    let mut half = [0u8; 16];
    half.copy_from_slice(&key.as_bytes()[..16]);
    Id(i128::from_le_bytes(half))
}

fn failed(op: &str) -> impl Fn(tower_sessions_core::session_store::Error) -> BenchError + '_ {
    move |e| BenchError::new(op, e)
}

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The record tower-sessions would hold: one entry whose value is the
/// payload as a JSON string.
fn record(key: &StoreKey, payload: &Bytes, expires_ms: i64) -> Record {
    let mut data = HashMap::with_capacity(1);
    data.insert(
        "payload".to_owned(),
        serde_json::Value::String(String::from_utf8_lossy(payload).into_owned()),
    );
    Record {
        id: id_of(key),
        data,
        expiry_date: datetime(expires_ms),
    }
}

impl<S: SessionStore> TowerPeer<S> {
    /// Notes an id the store created (its `create` may pick another id than
    /// the one asked for), so that `cleanup` removes it.
    fn remember(&self, id: Id) {
        if let Some(ids) = &self.preloaded {
            ids.lock().push(id);
        }
    }

    fn new(backend: Backend, name: &str, store: S, preload: Preload) -> Self {
        TowerPeer {
            id: ContenderId {
                backend,
                role: Role::Peer(name.to_owned()),
            },
            store: Arc::new(store),
            clock: BenchClock::new(),
            preload,
            namespace: None,
            preloaded: None,
        }
    }
}

#[async_trait]
impl<S: SessionStore> Contender for TowerPeer<S> {
    fn id(&self) -> &ContenderId {
        &self.id
    }

    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError> {
        if let Some(ids) = &self.preloaded {
            ids.lock().extend(keys.iter().map(id_of));
        }
        let (create, tasks) = match self.preload {
            Preload::Save(n) => (false, n),
            Preload::Create(n) => (true, n),
        };
        let (store, payload) = (Arc::clone(&self.store), payload.clone());
        let expiry = self.clock.expiry().as_millis();
        fan_out(tasks, keys.into(), move |key| {
            let (store, mut record) = (Arc::clone(&store), record(&key, &payload, expiry));
            async move {
                if create {
                    store.create(&mut record).await.map_err(failed("preload create"))
                } else {
                    store.save(&record).await.map_err(failed("preload save"))
                }
            }
        })
        .await
    }

    async fn create(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        let mut record = record(key, payload, self.clock.expiry().as_millis());
        self.store.create(&mut record).await.map_err(failed("create"))?;
        self.remember(record.id);
        Ok(())
    }

    async fn load(&self, key: &StoreKey) -> Result<bool, BenchError> {
        let record = self.store.load(&id_of(key)).await.map_err(failed("load"))?;
        Ok(record.is_some())
    }

    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError> {
        let record = record(key, payload, self.clock.expiry().as_millis());
        self.store.save(&record).await.map_err(failed("update (save)"))?;
        Ok(expected_version + 1)
    }

    async fn touch(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        let record = record(key, payload, self.clock.renewal().as_millis());
        self.store.save(&record).await.map_err(failed("touch (save)"))
    }

    async fn rotate(&self, old: &StoreKey, new: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        self.store
            .delete(&id_of(old))
            .await
            .map_err(failed("rotate (delete)"))?;
        let mut record = record(new, payload, self.clock.expiry().as_millis());
        self.store
            .create(&mut record)
            .await
            .map_err(failed("rotate (create)"))?;
        self.remember(record.id);
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BenchError> {
        self.store.delete(&id_of(key)).await.map_err(failed("delete"))
    }

    async fn cleanup(&self) -> Result<(), BenchError> {
        if let Some(ids) = &self.preloaded {
            let ids = std::mem::take(&mut *ids.lock());
            for id in ids {
                self.store.delete(&id).await.map_err(failed("cleanup delete"))?;
            }
        }
        match &self.namespace {
            Some(namespace) => namespace.remove().await,
            None => Ok(()),
        }
    }
}

/// tower-sessions-memory-store 0.14 (`Mutex<HashMap>` behind a tokio lock).
pub fn memory_store() -> TowerPeer<tower_sessions_memory_store::MemoryStore> {
    TowerPeer::new(
        Backend::Memory,
        "tower-sessions-memory-store",
        tower_sessions_memory_store::MemoryStore::default(),
        Preload::Save(1),
    )
}

/// tower-sessions-moka-store 0.15, bounded like our `MemoryStore`.
pub fn moka_store() -> TowerPeer<tower_sessions_moka_store::MokaStore> {
    TowerPeer::new(
        Backend::Memory,
        "tower-sessions-moka-store",
        tower_sessions_moka_store::MokaStore::new(Some(4_000_000)),
        Preload::Save(1),
    )
}

/// tower-sessions-sled-store 0.2 on a sled database with the shared sled
/// settings.
pub fn sled_store() -> Result<TowerPeer<tower_sessions_sled_store::SledStore>, BenchError> {
    let namespace = Namespace::temp_directory("peer_sled");
    let db = open_sled(&namespace)?;
    let tree = db.open_tree("sessions").map_err(|e| BenchError::new("sled tree", e))?;
    let mut peer = TowerPeer::new(
        Backend::Sled,
        "tower-sessions-sled-store",
        tower_sessions_sled_store::SledStore::new(tree),
        Preload::Save(1),
    );
    peer.namespace = Some(namespace);
    Ok(peer)
}

/// tower-sessions-redis-store 0.16 on a fred pool of 6, as its README shows.
pub async fn redis_store(
    url: &str,
) -> Result<
    TowerPeer<tower_sessions_redis_store::RedisStore<tower_sessions_redis_store::fred::prelude::Pool>>,
    BenchError,
> {
    use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
    let config = Config::from_url(url).map_err(|e| BenchError::new("fred config", e))?;
    let pool = Pool::new(config, None, None, None, 6).map_err(|e| BenchError::new("fred pool", e))?;
    pool.init().await.map_err(|e| BenchError::new("fred connect", e))?;
    let mut peer = TowerPeer::new(
        Backend::Redis,
        "tower-sessions-redis-store",
        tower_sessions_redis_store::RedisStore::new(pool),
        Preload::Create(64),
    );
    peer.preloaded = Some(Mutex::new(Vec::new()));
    Ok(peer)
}

/// tower-sessions-sqlx-store 0.15 (PostgreSQL) on `PgPool::connect`, as its
/// README shows, in a schema of its own.
pub async fn sqlx_store(url: &str) -> Result<TowerPeer<tower_sessions_sqlx_store::PostgresStore>, BenchError> {
    use tower_sessions_sqlx_store::sqlx::PgPool;
    let pool = PgPool::connect(url)
        .await
        .map_err(|e| BenchError::new("sqlx 0.8 pool", e))?;
    let schema = unique_name("peer_pg");
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool)
        .with_schema_name(&schema)
        .map_err(|e| BenchError::new("schema name", e))?;
    store.migrate().await.map_err(|e| BenchError::new("migrate", e))?;
    let mut peer = TowerPeer::new(Backend::Postgres, "tower-sessions-sqlx-store", store, Preload::Save(16));
    peer.namespace = Some(Namespace::PostgresTable {
        url: url.to_owned(),
        table: String::new(),
        schema: Some(schema),
    });
    Ok(peer)
}

/// One of our stores through `TowerStore`, as the `compat` contender of
/// `backend`; its cleanup removes `namespace`.
pub fn compat_store(
    backend: Backend,
    store: Arc<dyn session_core::SessionStore>,
    namespace: Option<Namespace>,
    preload_concurrency: usize,
) -> TowerPeer<TowerStore<Arc<dyn session_core::SessionStore>>> {
    let mut peer = TowerPeer::new(
        backend,
        "compat-tower-sessions",
        TowerStore::new(store),
        Preload::Create(preload_concurrency),
    );
    peer.id.role = Role::Compat;
    peer.namespace = namespace;
    peer
}
