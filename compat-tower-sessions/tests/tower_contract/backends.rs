//! The backends the adapter is tested on, each made fresh and isolated
//! (a temporary directory, a key prefix, a table), and what a test can see
//! of the bytes each keeps at rest.

use std::path::Path;
use std::sync::Arc;

use conformance::Unavailable;
use session_core::SessionStore;

use sqlx::Connection as _;

use crate::wire::Wire;

/// A backend of this workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sled,
    Redis,
    /// The Redis store in cluster mode, on the cluster of
    /// `store_redis::testing::cluster_nodes` (a local one this test process
    /// starts, unless `REDIS_CLUSTER_NODES` names one).
    RedisCluster,
    Postgres,
}

/// A fresh store and what it needs kept alive or cleaned up.
pub struct Made {
    pub store: Arc<dyn SessionStore>,
    /// The sled directory, removed when dropped.
    dir: Option<tempfile::TempDir>,
    /// The Redis servers (one, or a cluster's masters) and the key prefix,
    /// whose keys are deleted on cleanup.
    redis: Option<(Vec<String>, String)>,
    /// The counting proxy a networked store talks to its server through.
    pub wire: Option<Wire>,
    /// The PostgreSQL store, whose table is dropped on cleanup.
    postgres: Option<store_postgres::PostgresStore>,
}

/// The PostgreSQL of the test run.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `host:port` of a `scheme://[user@]host:port[/path]` URL.
fn host_port(url: &str) -> Result<String, Unavailable> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    let host_port = rest.split('/').next().unwrap_or(rest);
    if host_port.contains(':') {
        Ok(host_port.to_owned())
    } else {
        Err(Unavailable(format!("no port in {url}")))
    }
}

/// `url` with its `host:port` replaced by the proxy's.
async fn through_wire(url: &str) -> Result<(String, Wire), Unavailable> {
    let upstream = host_port(url)?;
    let wire = Wire::start(upstream.clone())
        .await
        .map_err(|e| Unavailable(format!("a loopback proxy: {e}")))?;
    Ok((url.replacen(&upstream, &format!("127.0.0.1:{}", wire.port), 1), wire))
}

/// The Redis of the test run.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sled => "sled",
            Backend::Redis => "redis",
            Backend::RedisCluster => "redis-cluster",
            Backend::Postgres => "postgres",
        }
    }

    /// Whether the server removes expired records by itself, so a sweep has
    /// nothing to do.
    pub fn expires_by_itself(self) -> bool {
        matches!(self, Backend::Redis | Backend::RedisCluster)
    }

    pub async fn make(self) -> Result<Made, Unavailable> {
        match self {
            Backend::Memory => Ok(Made {
                store: Arc::new(store_memory::MemoryStore::new()),
                dir: None,
                redis: None,
                wire: None,
                postgres: None,
            }),
            Backend::Sled => {
                let dir = tempfile::tempdir().map_err(|e| Unavailable(format!("a temporary directory: {e}")))?;
                // Every write flushed (the default), so the files hold
                // every record as soon as an operation returns.
                let store = store_sled::SledStore::builder(dir.path())
                    .cache_capacity(8 << 20)
                    .open()
                    .map_err(|e| Unavailable(format!("opening sled: {e}")))?;
                Ok(Made {
                    store: Arc::new(store),
                    dir: Some(dir),
                    redis: None,
                    wire: None,
                    postgres: None,
                })
            }
            Backend::Redis => {
                let (url, prefix) = (
                    redis_url(),
                    format!("test:compat:{}:", conformance::fresh_key().short()),
                );
                let (proxied, wire) = through_wire(&url).await?;
                let store = store_redis::RedisStore::builder(proxied)
                    .prefix(prefix.as_str())
                    .connect()
                    .await
                    .map_err(|e| Unavailable(format!("Redis at {url}: {e}")))?;
                Ok(Made {
                    store: Arc::new(store),
                    dir: None,
                    redis: Some((vec![url], prefix)),
                    wire: Some(wire),
                    postgres: None,
                })
            }
            Backend::RedisCluster => {
                let nodes =
                    store_redis::testing::cluster_nodes().map_err(|e| Unavailable(format!("no Redis Cluster: {e}")))?;
                let prefix = format!("test:compat:{}:", conformance::fresh_key().short());
                let store = store_redis::RedisStore::cluster_builder(nodes.clone())
                    .prefix(prefix.as_str())
                    .connect()
                    .await
                    .map_err(|e| Unavailable(format!("Redis Cluster at {nodes:?}: {e}")))?;
                Ok(Made {
                    store: Arc::new(store),
                    dir: None,
                    redis: Some((cluster_masters(&nodes[0]).await, prefix)),
                    // The cluster client talks to every master: no one proxy
                    // can count its round trips.
                    wire: None,
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let url = database_url();
                let (proxied, wire) = through_wire(&url).await?;
                let table = format!("compat_{}", conformance::fresh_key().short());
                let store = store_postgres::PostgresStore::builder()
                    .url(proxied)
                    .schema("compat_tower_sessions_tests")
                    .table(&table)
                    // The concurrent rules save from 16 tasks at once.
                    .max_connections(4)
                    .migrate_on_connect(true)
                    .connect()
                    .await
                    .map_err(|e| Unavailable(format!("PostgreSQL at {url}: {e}")))?;
                Ok(Made {
                    store: Arc::new(store.clone()),
                    dir: None,
                    redis: None,
                    wire: Some(wire),
                    postgres: Some(store),
                })
            }
        }
    }
}

impl Made {
    /// Every byte the backend keeps at rest, where a test can read them:
    /// sled's files, every key name and value under the Redis prefix,
    /// every row of the PostgreSQL table (as text, with each `bytea`'s hex
    /// decoded too). `None` for memory (nothing at rest).
    pub async fn bytes_at_rest(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(dir) = &self.dir {
            read_files(dir.path(), &mut out);
        } else if let Some((urls, prefix)) = &self.redis {
            for url in urls {
                let mut conn = redis_connection(url).await;
                for key in redis_keys(&mut conn, prefix).await {
                    let kind: String = query(&mut conn, redis::cmd("TYPE").arg(&key)).await;
                    let value: Vec<Vec<u8>> = match kind.as_str() {
                        "hash" => query(&mut conn, redis::cmd("HGETALL").arg(&key)).await,
                        "zset" => query(&mut conn, redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1)).await,
                        "string" => vec![query(&mut conn, redis::cmd("GET").arg(&key)).await],
                        _ => vec![query(&mut conn, redis::cmd("DUMP").arg(&key)).await],
                    };
                    out.extend(key);
                    value.into_iter().for_each(|v| out.extend(v));
                }
            }
        } else if let Some(store) = &self.postgres {
            let mut conn = sqlx::PgConnection::connect(&database_url())
                .await
                .expect("the PostgreSQL the store reached is reachable");
            let sql = format!("SELECT coalesce(string_agg(t::text, ' '), '') FROM {} t", store.table());
            let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .expect("reading the test's own table");
            out.extend(rows.as_bytes());
            out.extend(decode_hex_runs(&rows));
        } else {
            return None;
        }
        Some(out)
    }

    pub async fn cleanup(self) {
        drop(self.store);
        drop(self.dir);
        if let Some(store) = self.postgres {
            store.drop_table().await.expect("dropping the test's own table");
            store.close().await;
        }
        if let Some((urls, prefix)) = self.redis {
            for url in urls {
                let mut conn = redis_connection(&url).await;
                // One key at a time: on a cluster a DEL of keys of several
                // slots is refused, even on one node.
                for key in redis_keys(&mut conn, &prefix).await {
                    let () = query(&mut conn, redis::cmd("DEL").arg(key)).await;
                }
            }
        }
    }
}

fn read_files(dir: &Path, out: &mut Vec<u8>) {
    let entries = std::fs::read_dir(dir).expect("the test's own directory is readable");
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            read_files(&path, out);
        } else {
            out.extend(std::fs::read(&path).expect("the test's own file is readable"));
        }
    }
}

/// The masters of the cluster behind `seed` (`CLUSTER NODES`), as URLs.
async fn cluster_masters(seed: &str) -> Vec<String> {
    let mut conn = redis_connection(seed).await;
    let nodes: String = query(&mut conn, redis::cmd("CLUSTER").arg("NODES")).await;
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let master = fields.get(2)?.contains("master") && !fields[2].contains("fail");
            master.then(|| format!("redis://{}", fields[1].split('@').next().unwrap_or_default()))
        })
        .collect()
}

async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("the test's Redis URL is well formed");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("the Redis the store reached is reachable")
}

async fn query<T: redis::FromRedisValue>(conn: &mut redis::aio::MultiplexedConnection, cmd: &redis::Cmd) -> T {
    cmd.query_async(conn).await.expect("a command on the test's own keys")
}

/// Every key under `prefix` (SCAN, not KEYS: the server is shared).
async fn redis_keys(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<Vec<u8>> {
    let (mut cursor, mut keys) = (0_u64, Vec::new());
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = query(
            conn,
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(500),
        )
        .await;
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// The bytes of every `\x<hex>` run in PostgreSQL's text form of rows.
fn decode_hex_runs(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for run in text.split("\\x").skip(1) {
        let digits: Vec<u8> = run.bytes().take_while(u8::is_ascii_hexdigit).collect();
        for pair in digits.chunks_exact(2) {
            let hex = std::str::from_utf8(pair).expect("hex digits are ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
        }
    }
    out
}
