//! Finding the servers, and the namespaces (key prefixes, tables,
//! directories) that keep every contender's data apart and get removed
//! afterwards.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use sqlx::Connection;

use crate::BenchError;

/// Default Redis, as the tests use it.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Default PostgreSQL, as the tests use it.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `REDIS_URL` or the default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// `DATABASE_URL` or the default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// A name no other contender of this or another concurrent run uses:
/// `bench_<pid>_<n>`, usable as a key prefix, a table name and a directory.
pub fn unique_name(kind: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench_{kind}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
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

/// Where one contender keeps its data, removed by [`Namespace::remove`].
#[derive(Clone)]
pub enum Namespace {
    /// Every Redis key starting with `prefix`.
    RedisPrefix {
        /// A connection to delete them with.
        conn: MultiplexedConnection,
        /// The prefix.
        prefix: String,
    },
    /// A PostgreSQL table (and its schema, if it has its own).
    PostgresTable {
        /// Where.
        url: String,
        /// `DROP TABLE IF EXISTS` argument (maybe schema-qualified).
        table: String,
        /// A schema to drop too.
        schema: Option<String>,
    },
    /// A directory on disk.
    Directory(PathBuf),
}

impl Namespace {
    /// A fresh directory path under the system's temporary directory.
    pub fn temp_directory(kind: &str) -> Namespace {
        Namespace::Directory(std::env::temp_dir().join(unique_name(kind)))
    }

    /// Deletes everything in the namespace.
    pub async fn remove(&self) -> Result<(), BenchError> {
        match self {
            Namespace::RedisPrefix { conn, prefix } => {
                let mut conn = conn.clone();
                let pattern = format!("{prefix}*");
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(10_000)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| BenchError::new("cleanup SCAN", e))?;
                    if !keys.is_empty() {
                        let _: () = redis::cmd("UNLINK")
                            .arg(keys)
                            .query_async(&mut conn)
                            .await
                            .map_err(|e| BenchError::new("cleanup UNLINK", e))?;
                    }
                    if next == 0 {
                        return Ok(());
                    }
                    cursor = next;
                }
            }
            Namespace::PostgresTable { url, table, schema } => {
                let mut conn = postgres_connection(url).await?;
                let drop = match schema {
                    Some(schema) => format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
                    None => format!("DROP TABLE IF EXISTS {table}"),
                };
                sqlx::query(sqlx::AssertSqlSafe(drop))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| BenchError::new("cleanup DROP", e))?;
                Ok(())
            }
            Namespace::Directory(path) => match std::fs::remove_dir_all(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(BenchError::new("cleanup directory", e)),
            },
        }
    }
}
