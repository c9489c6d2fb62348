//! The servers the networked families talk to: where each is (its URL from
//! the environment, or the local port the tests use) and how to connect to
//! it. The one place in this crate that knows the default URLs.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use sqlx::Connection;

use crate::BenchError;

/// A server some contenders need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Redis, for `RedisStore`, redis-rs and the Redis peers.
    Redis,
    /// A Redis Cluster, for `RedisStore` in cluster mode and redis-rs's
    /// cluster client. Its "URL" is a comma-separated list of seed nodes.
    RedisCluster,
    /// PostgreSQL, for `PostgresStore`, sqlx and the PostgreSQL peer.
    Postgres,
}

impl Server {
    /// The environment variable that names its URL.
    pub fn env(self) -> &'static str {
        match self {
            Server::Redis => "REDIS_URL",
            Server::RedisCluster => "REDIS_CLUSTER_NODES",
            Server::Postgres => "DATABASE_URL",
        }
    }

    /// Its URL when [`Server::env`] is unset: the same server the tests use;
    /// none (empty) for a cluster, which is measured only where named.
    pub fn default_url(self) -> &'static str {
        match self {
            Server::Redis => "redis://127.0.0.1:6379",
            Server::RedisCluster => "",
            Server::Postgres => "postgres://postgres@127.0.0.1:5432/test",
        }
    }

    /// The URL from [`Server::env`], or the default.
    pub fn url(self) -> String {
        std::env::var(self.env()).unwrap_or_else(|_| self.default_url().to_owned())
    }

    /// Whether it answers at `url`, with a short timeout, so that a missing
    /// server skips its family with one message instead of failing each
    /// contender.
    pub async fn answers(self, url: &str) -> Result<(), BenchError> {
        match self {
            Server::Redis => redis_connection(url).await.map(drop),
            Server::RedisCluster => redis_cluster_connection(url).await.map(drop),
            Server::Postgres => postgres_connection(url).await.map(drop),
        }
    }
}

/// How long connecting to a Redis server may take.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a Redis reply may take: long enough for the preload's big
/// pipelines.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// `conn`, once it answered a `PING`: a connection that opened may still
/// refuse commands (a server loading its data, a password missing).
async fn pinged<C: ConnectionLike>(mut conn: C, what: &str) -> Result<C, BenchError> {
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| BenchError::new(&format!("{what} PING"), e))?;
    Ok(conn)
}

/// A multiplexed connection to Redis with timeouts long enough for the
/// preload's big pipelines, or why there is none.
pub async fn redis_connection(url: &str) -> Result<MultiplexedConnection, BenchError> {
    let client = redis::Client::open(url).map_err(|e| BenchError::new("Redis URL", e.category()))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
        .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
    let conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| BenchError::new("connecting to Redis", e))?;
    pinged(conn, "Redis").await
}

/// The seed nodes in a comma-separated list (`REDIS_CLUSTER_NODES`).
pub fn cluster_nodes(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A cluster connection through the seed nodes in `nodes` (comma-separated),
/// with the timeouts of [`redis_connection`], or why there is none. It
/// reads from masters only, as `RedisStore` does.
pub async fn redis_cluster_connection(nodes: &str) -> Result<ClusterConnection, BenchError> {
    let nodes = cluster_nodes(nodes);
    if nodes.is_empty() {
        return Err(BenchError("no seed nodes".into()));
    }
    let client = redis::cluster::ClusterClient::builder(nodes)
        .connection_timeout(REDIS_CONNECT_TIMEOUT)
        .response_timeout(REDIS_RESPONSE_TIMEOUT)
        .build()
        .map_err(|e| BenchError::new("Redis Cluster nodes", e.category()))?;
    let conn = client
        .get_async_connection()
        .await
        .map_err(|e| BenchError::new("connecting to the Redis Cluster", e))?;
    pinged(conn, "Redis Cluster").await
}

/// A connection to each master of the cluster behind `nodes`
/// (comma-separated seed nodes), from `CLUSTER NODES`: where its keys are
/// scanned and its `INFO` read, which a cluster connection would send to one
/// node only.
pub async fn redis_cluster_masters(nodes: &str) -> Result<Vec<MultiplexedConnection>, BenchError> {
    let topology: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut redis_cluster_connection(nodes).await?)
        .await
        .map_err(|e| BenchError::new("CLUSTER NODES", e))?;
    let mut masters = Vec::new();
    // `<id> <host:port@bus> <flags> ...`; a failed master holds no slots.
    for line in topology.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
            continue;
        }
        let addr = addr.split('@').next().unwrap_or_default();
        masters.push(redis_connection(&format!("redis://{addr}")).await?);
    }
    if masters.is_empty() {
        return Err(BenchError("CLUSTER NODES lists no live master".into()));
    }
    Ok(masters)
}

/// One PostgreSQL connection, or why there is none.
pub async fn postgres_connection(url: &str) -> Result<sqlx::PgConnection, BenchError> {
    tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url))
        .await
        .map_err(|_| BenchError("connecting to PostgreSQL timed out".into()))?
        .map_err(|e| BenchError::new("connecting to PostgreSQL", e))
}
