//! Who runs: per backend family, our store, its raw client and (feature
//! `peers`) the peer stores, each freshly made with its own namespace.
//!
//! **Every family is one entry of [`FAMILIES`]**, and every one of our
//! backends is built in exactly one function below (`memory_store`,
//! `sled_store`, `redis_store`, `redis_cluster_store`, `postgres_store`): when a backend's builder
//! changes, that function is the one place to follow it. Benchmarking a new
//! backend takes a [`Backend`] variant, an entry here, its raw client in
//! `contenders/` and its row in the README.
//!
//! With the peers comes one more contender per family that has peers,
//! `compat`: our store (a second one, in its own namespace) through
//! compat-tower-sessions' `TowerStore`, timed exactly as the tower-sessions
//! peers are.
//!
//! A family with a [`Server`] joins when the server answers at its URL
//! (`REDIS_URL` / `DATABASE_URL`, defaults: the local ports;
//! `REDIS_CLUSTER_NODES`, no default); otherwise it is skipped with a
//! message. `SESSIONS_BENCH_BACKENDS=memory,sled` limits
//! the run to some families.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use session_core::SessionStore;

use crate::contenders::ours::Ours;
use crate::contenders::raw_map::RawMap;
use crate::contenders::raw_postgres::RawPostgres;
use crate::contenders::raw_redis::RawRedis;
use crate::contenders::raw_sled::{RawSled, SLED_CACHE_BYTES, SLED_FLUSH_EVERY};
use crate::contenders::{Made, made};
use crate::namespace::{Namespace, unique_name};
use crate::servers::{Server, cluster_nodes, redis_connection};
use crate::{Backend, BenchError, Contender};

#[cfg(feature = "peers")]
use crate::contenders::peers;

/// What a family's constructors return: a future, boxed so that every
/// family's constructors have one type and fit in one table.
pub type Making<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One of our stores as its family makes it, and the namespace it writes
/// in (removed on cleanup), if it has one.
pub type OurStore = (Arc<dyn SessionStore>, Option<Namespace>);

/// How to make the contenders of one backend family. Each constructor gets
/// the family's server URL (empty for an in-process family).
pub struct Family {
    /// The family.
    pub backend: Backend,
    /// The server its contenders talk to; `None` for in-process stores.
    pub server: Option<Server>,
    /// How many creates our store's preload keeps in flight: 1 for the
    /// in-process map, more where a write waits (on sled's disk, on a
    /// server's round trip), so the preload is not bound by one write at a
    /// time.
    pub preload_concurrency: usize,
    /// Our store.
    pub ours: fn(&str) -> Making<'_, Result<OurStore, BenchError>>,
    /// The raw client underneath it.
    pub raw: fn(&str) -> Making<'_, Made>,
    /// The peer stores of the family.
    #[cfg(feature = "peers")]
    pub peers: fn(&str) -> Making<'_, Vec<Made>>,
    /// Whether ours also runs through the tower-sessions adapter: where
    /// there are tower-sessions stores to hold it against.
    #[cfg(feature = "peers")]
    pub compat: bool,
}

/// Every family, in report order.
pub const FAMILIES: [Family; 5] = [
    Family {
        backend: Backend::Memory,
        server: None,
        preload_concurrency: 1,
        ours: |_| Box::pin(async { Ok((memory_store(), None)) }),
        raw: |_| Box::pin(async { made(Ok(RawMap::new())) }),
        #[cfg(feature = "peers")]
        peers: |_| Box::pin(async { peers::memory() }),
        #[cfg(feature = "peers")]
        compat: true,
    },
    Family {
        backend: Backend::Sled,
        server: None,
        preload_concurrency: 2,
        ours: |_| Box::pin(async { sled_store() }),
        raw: |_| Box::pin(async { made(RawSled::open()) }),
        #[cfg(feature = "peers")]
        peers: |_| Box::pin(async { peers::sled() }),
        #[cfg(feature = "peers")]
        compat: true,
    },
    Family {
        backend: Backend::Redis,
        server: Some(Server::Redis),
        preload_concurrency: 64,
        ours: |url| Box::pin(redis_store(url)),
        raw: |url| Box::pin(async move { made(RawRedis::connect(url).await) }),
        #[cfg(feature = "peers")]
        peers: |url| Box::pin(peers::redis(url)),
        #[cfg(feature = "peers")]
        compat: true,
    },
    // Ours and the raw client only: the peers take one server's URL.
    Family {
        backend: Backend::RedisCluster,
        server: Some(Server::RedisCluster),
        preload_concurrency: 64,
        ours: |nodes| Box::pin(redis_cluster_store(nodes)),
        raw: |nodes| Box::pin(async move { made(RawRedis::connect_cluster(nodes).await) }),
        #[cfg(feature = "peers")]
        peers: |_| Box::pin(async { Vec::new() }),
        #[cfg(feature = "peers")]
        compat: false,
    },
    Family {
        backend: Backend::Postgres,
        server: Some(Server::Postgres),
        preload_concurrency: 64,
        ours: |url| Box::pin(postgres_store(url)),
        raw: |url| Box::pin(async move { made(RawPostgres::connect(url).await) }),
        #[cfg(feature = "peers")]
        peers: |url| Box::pin(peers::postgres(url)),
        #[cfg(feature = "peers")]
        compat: true,
    },
];

/// The contenders of one store size, and what was left out and why.
pub struct Lineup {
    /// In report order: per family, ours, raw, peers, ours through the
    /// tower-sessions adapter (`compat`, with the peers).
    pub contenders: Vec<Arc<dyn Contender>>,
    /// One line per family or contender that could not join.
    pub skipped: Vec<String>,
}

/// Whether `SESSIONS_BENCH_BACKENDS` (if set) includes `backend`.
pub fn wanted(backend: Backend) -> bool {
    match std::env::var("SESSIONS_BENCH_BACKENDS") {
        Ok(list) => list.split(',').any(|b| b.trim() == backend.name()),
        Err(_) => true,
    }
}

/// `MemoryStore`, with room for the largest store size plus what a
/// benchmark adds, so eviction never runs during a measurement.
fn memory_store() -> Arc<dyn SessionStore> {
    Arc::new(store_memory::MemoryStore::builder().max_sessions(4_000_000).build())
}

/// `SledStore` in a fresh directory, with the cache and flush interval
/// every sled contender uses.
fn sled_store() -> Result<OurStore, BenchError> {
    let namespace = Namespace::temp_directory("sled");
    let Namespace::Directory(path) = &namespace else {
        return Err(BenchError("SledStore needs a directory".into()));
    };
    let store = store_sled::SledStore::builder(path)
        .cache_capacity(SLED_CACHE_BYTES)
        .flush_policy(store_sled::FlushPolicy::Periodic(SLED_FLUSH_EVERY))
        .open()
        .map_err(|e| BenchError::new("opening SledStore", e))?;
    Ok((Arc::new(store), Some(namespace)))
}

/// `RedisStore` under a fresh key prefix.
async fn redis_store(url: &str) -> Result<OurStore, BenchError> {
    let prefix = format!("{}:", unique_name("redis"));
    let store = store_redis::RedisStore::builder(url)
        .prefix(&prefix)
        .response_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| BenchError::new("connecting RedisStore", e))?;
    let namespace = Namespace::RedisPrefix {
        conn: redis_connection(url).await?,
        prefix,
    };
    Ok((Arc::new(store), Some(namespace)))
}

/// `RedisStore` on the Redis Cluster behind `nodes` (comma-separated seed
/// nodes), under a fresh key prefix.
async fn redis_cluster_store(nodes: &str) -> Result<OurStore, BenchError> {
    let prefix = format!("{}:", unique_name("redis_cluster"));
    let store = store_redis::RedisStore::cluster_builder(cluster_nodes(nodes))
        .prefix(&prefix)
        .response_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| BenchError::new("connecting RedisStore to the cluster", e))?;
    let namespace = Namespace::RedisClusterPrefix {
        nodes: nodes.to_owned(),
        prefix,
    };
    Ok((Arc::new(store), Some(namespace)))
}

/// `PostgresStore` in a fresh table.
async fn postgres_store(url: &str) -> Result<OurStore, BenchError> {
    let table = unique_name("pg");
    let store = store_postgres::PostgresStore::builder()
        .url(url)
        .table(&table)
        .migrate_on_connect(true)
        .connect()
        .await
        .map_err(|e| BenchError::new("connecting PostgresStore", e))?;
    let namespace = Namespace::PostgresTable {
        url: url.to_owned(),
        // The store's table and its migrations table.
        table: format!("{table}, {table}_migrations"),
        schema: None,
    };
    Ok((Arc::new(store), Some(namespace)))
}

impl Lineup {
    /// Makes every contender that can run here.
    pub async fn assemble() -> Lineup {
        let mut lineup = Lineup {
            contenders: Vec::new(),
            skipped: Vec::new(),
        };
        for family in FAMILIES.iter().filter(|f| wanted(f.backend)) {
            lineup.join(family).await;
        }
        lineup
    }

    /// Adds the contenders of `family`, or notes why its server is missing.
    async fn join(&mut self, family: &Family) {
        let url = match family.server {
            None => String::new(),
            Some(server) => {
                let url = server.url();
                if let Err(e) = server.answers(&url).await {
                    self.skipped.push(format!(
                        "{}: SKIPPED, no server at {env} ({e}); start one or set {env}",
                        family.backend.name(),
                        env = server.env()
                    ));
                    return;
                }
                url
            }
        };
        let ours = (family.ours)(&url).await.map(|(store, namespace)| {
            Arc::new(Ours::new(family.backend, store, family.preload_concurrency, namespace)) as Arc<dyn Contender>
        });
        self.add(ours);
        self.add((family.raw)(&url).await);
        #[cfg(feature = "peers")]
        {
            for peer in (family.peers)(&url).await {
                self.add(peer);
            }
            // A second store of ours, in its own namespace, so that it holds
            // the same number of sessions as every other contender.
            if family.compat {
                let compat = match (family.ours)(&url).await {
                    Ok((store, namespace)) => {
                        peers::compat(family.backend, store, namespace, family.preload_concurrency)
                    }
                    Err(e) => Err(e),
                };
                self.add(compat);
            }
        }
    }

    /// Adds a contender, or notes why it could not be made.
    fn add(&mut self, contender: Made) {
        match contender {
            Ok(c) => self.contenders.push(c),
            Err(e) => self.skipped.push(format!("SKIPPED: {e}")),
        }
    }

    /// Removes what every contender wrote.
    pub async fn cleanup(&self) {
        for c in &self.contenders {
            if let Err(e) = c.cleanup().await {
                eprintln!("cleanup of {} failed: {e}", c.id());
            }
        }
    }
}
