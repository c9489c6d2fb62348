//! The namespaces (key prefixes, tables, schemas, directories) that keep
//! the data of every contender, of this run and of concurrent ones, apart,
//! and that are removed afterwards.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::MultiplexedConnection;

use crate::BenchError;
use crate::servers::{postgres_connection, redis_cluster_masters};

/// A name no other contender of this or another concurrent run uses:
/// `bench_<kind>_<pid>_<n>`, usable as a key prefix, a table name and a directory.
pub fn unique_name(kind: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench_{kind}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
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
    /// Every key starting with `prefix` on every master of a Redis Cluster.
    RedisClusterPrefix {
        /// The seed nodes, comma-separated (`REDIS_CLUSTER_NODES`).
        nodes: String,
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
            Namespace::RedisPrefix { conn, prefix } => remove_prefix(&mut conn.clone(), prefix, true).await,
            Namespace::RedisClusterPrefix { nodes, prefix } => {
                for mut master in redis_cluster_masters(nodes).await? {
                    remove_prefix(&mut master, prefix, false).await?;
                }
                Ok(())
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

/// Deletes every key starting with `prefix` on the server behind `conn`:
/// each batch that `SCAN` returns in one `UNLINK` (`many_per_command`), or,
/// on a cluster node, where one command may name keys of one slot only, in
/// one `UNLINK` per key, pipelined.
async fn remove_prefix(
    conn: &mut MultiplexedConnection,
    prefix: &str,
    many_per_command: bool,
) -> Result<(), BenchError> {
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await
            .map_err(|e| BenchError::new("cleanup SCAN", e))?;
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            if many_per_command {
                pipe.cmd("UNLINK").arg(keys).ignore();
            } else {
                for key in keys {
                    pipe.cmd("UNLINK").arg(key).ignore();
                }
            }
            let _: () = pipe
                .query_async(conn)
                .await
                .map_err(|e| BenchError::new("cleanup UNLINK", e))?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
