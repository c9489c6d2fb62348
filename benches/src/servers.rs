//! The servers the networked families talk to: where each is (its URL from
//! the environment, or the local port the tests use) and how to connect to
//! it. The one place in this crate that knows the default URLs.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use sqlx::Connection;

use crate::BenchError;

/// A server some contenders need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Redis, for `RedisStore`, redis-rs and the Redis peers.
    Redis,
    /// PostgreSQL, for `PostgresStore`, sqlx and the PostgreSQL peer.
    Postgres,
}

impl Server {
    /// The environment variable that names its URL.
    pub fn env(self) -> &'static str {
        match self {
            Server::Redis => "REDIS_URL",
            Server::Postgres => "DATABASE_URL",
        }
    }

    /// Its URL when [`Server::env`] is unset: the same server the tests use.
    pub fn default_url(self) -> &'static str {
        match self {
            Server::Redis => "redis://127.0.0.1:6379",
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
            Server::Postgres => postgres_connection(url).await.map(drop),
        }
    }
}

/// A multiplexed connection to Redis with timeouts long enough for the
/// preload's big pipelines, or why there is none.
pub async fn redis_connection(url: &str) -> Result<MultiplexedConnection, BenchError> {
    let client = redis::Client::open(url).map_err(|e| BenchError::new("Redis URL", e.category()))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| BenchError::new("connecting to Redis", e))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| BenchError::new("Redis PING", e))?;
    Ok(conn)
}

/// One PostgreSQL connection, or why there is none.
pub async fn postgres_connection(url: &str) -> Result<sqlx::PgConnection, BenchError> {
    tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url))
        .await
        .map_err(|_| BenchError("connecting to PostgreSQL timed out".into()))?
        .map_err(|e| BenchError::new("connecting to PostgreSQL", e))
}
