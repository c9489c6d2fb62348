//! Who runs: our backends, their raw clients and (feature `peers`) the peer
//! stores, each freshly made with its own namespace.
//!
//! **Every one of our backends is built in exactly one function below**
//! (`memory_store`, `sled_store`, `redis_store`, `postgres_store`): when a
//! backend's builder changes, that function is the one place to follow it.
//!
//! Redis and PostgreSQL join when their server answers at `REDIS_URL` /
//! `DATABASE_URL` (defaults: the local ports); otherwise they are skipped
//! with a message. `SESSIONS_BENCH_BACKENDS=memory,sled` limits the run to
//! some families.

use std::sync::Arc;

use session_core::SessionStore;

use crate::contenders::ours::Ours;
use crate::contenders::raw_map::RawMap;
use crate::contenders::raw_postgres::RawPostgres;
use crate::contenders::raw_redis::RawRedis;
use crate::contenders::raw_sled::RawSled;
use crate::namespace::{Namespace, unique_name};
use crate::servers::{Server, postgres_connection, redis_connection};
use crate::{Backend, BenchError, Contender};

/// The contenders of one store size, and what was left out and why.
pub struct Lineup {
    /// In report order: per family, ours, raw, peers.
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

/// `SledStore` with the cache and flush interval every sled contender uses.
fn sled_store(namespace: &Namespace) -> Result<Arc<dyn SessionStore>, BenchError> {
    use crate::contenders::raw_sled::{SLED_CACHE_BYTES, SLED_FLUSH_EVERY};
    let Namespace::Directory(path) = namespace else {
        return Err(BenchError("SledStore needs a directory".into()));
    };
    let store = store_sled::SledStore::builder(path)
        .cache_capacity(SLED_CACHE_BYTES)
        .flush_policy(store_sled::FlushPolicy::Periodic(SLED_FLUSH_EVERY))
        .open()
        .map_err(|e| BenchError::new("opening SledStore", e))?;
    Ok(Arc::new(store))
}

/// `RedisStore` under a fresh key prefix.
async fn redis_store(url: &str, prefix: &str) -> Result<Arc<dyn SessionStore>, BenchError> {
    let store = store_redis::RedisStore::builder(url)
        .prefix(prefix)
        .response_timeout(std::time::Duration::from_secs(10))
        .build()
        .await
        .map_err(|e| BenchError::new("connecting RedisStore", e))?;
    Ok(Arc::new(store))
}

/// `PostgresStore` in a fresh table.
async fn postgres_store(url: &str, table: &str) -> Result<Arc<dyn SessionStore>, BenchError> {
    let store = store_postgres::PostgresStore::builder()
        .url(url)
        .table(table)
        .migrate_on_connect(true)
        .connect()
        .await
        .map_err(|e| BenchError::new("connecting PostgresStore", e))?;
    Ok(Arc::new(store))
}

impl Lineup {
    /// Makes every contender that can run here.
    pub async fn assemble() -> Lineup {
        let mut lineup = Lineup {
            contenders: Vec::new(),
            skipped: Vec::new(),
        };
        if wanted(Backend::Memory) {
            lineup.add(Ok(Arc::new(Ours::new(Backend::Memory, memory_store()))));
            lineup.add(Ok(Arc::new(RawMap::new())));
            #[cfg(feature = "peers")]
            crate::contenders::peers::memory(&mut lineup);
        }
        if wanted(Backend::Sled) {
            {
                let namespace = Namespace::temp_directory("sled");
                let ours = sled_store(&namespace).map(|store| {
                    Arc::new(Ours::new(Backend::Sled, store).with_namespace(namespace)) as Arc<dyn Contender>
                });
                lineup.add(ours);
            }
            lineup.add(RawSled::open().map(|c| Arc::new(c) as Arc<dyn Contender>));
            #[cfg(feature = "peers")]
            crate::contenders::peers::sled(&mut lineup);
        }
        if wanted(Backend::Redis) {
            let url = Server::Redis.url();
            match redis_connection(&url).await {
                Err(e) => lineup.skipped.push(format!(
                    "redis: SKIPPED, no server at REDIS_URL ({e}); start one or set REDIS_URL"
                )),
                Ok(conn) => {
                    {
                        let prefix = format!("{}:", unique_name("redis"));
                        let ours = match redis_store(&url, &prefix).await {
                            Ok(store) => Ok(Arc::new(Ours::new(Backend::Redis, store).with_namespace(
                                Namespace::RedisPrefix {
                                    conn: conn.clone(),
                                    prefix,
                                },
                            )) as Arc<dyn Contender>),
                            Err(e) => Err(e),
                        };
                        lineup.add(ours);
                    }
                    lineup.add(RawRedis::connect(&url).await.map(|c| Arc::new(c) as Arc<dyn Contender>));
                    #[cfg(feature = "peers")]
                    crate::contenders::peers::redis(&mut lineup, &url).await;
                }
            }
        }
        if wanted(Backend::Postgres) {
            let url = Server::Postgres.url();
            match postgres_connection(&url).await {
                Err(e) => lineup.skipped.push(format!(
                    "postgres: SKIPPED, no server at DATABASE_URL ({e}); start one or set DATABASE_URL"
                )),
                Ok(_) => {
                    {
                        let table = unique_name("pg");
                        let ours = match postgres_store(&url, &table).await {
                            Ok(store) => Ok(Arc::new(Ours::new(Backend::Postgres, store).with_namespace(
                                Namespace::PostgresTable {
                                    url: url.clone(),
                                    // The store's table and its migrations table.
                                    table: format!("{table}, {table}_migrations"),
                                    schema: None,
                                },
                            )) as Arc<dyn Contender>),
                            Err(e) => Err(e),
                        };
                        lineup.add(ours);
                    }
                    lineup.add(
                        RawPostgres::connect(&url)
                            .await
                            .map(|c| Arc::new(c) as Arc<dyn Contender>),
                    );
                    #[cfg(feature = "peers")]
                    crate::contenders::peers::postgres(&mut lineup, &url).await;
                }
            }
        }
        lineup
    }

    /// Adds a contender, or notes why it could not be made.
    pub fn add(&mut self, contender: Result<Arc<dyn Contender>, BenchError>) {
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
