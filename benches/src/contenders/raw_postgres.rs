//! The physical limit of a PostgreSQL store: sqlx, one statement per
//! operation by primary key, on dedicated connections (no pool, so no ping
//! before or after: exactly one round trip per operation). The table has
//! the columns a session store needs (version, data, created_at,
//! expires_at), so each statement does the same work a store's does, with
//! one difference the reader of a comparison should know: the raw table has
//! only its primary key. A session store also needs an index on `expires_at`
//! for its sweep, so every row it inserts (create, rotate) and every update
//! that moves the expiry (touch, which also cannot be a HOT update then)
//! writes one more index entry, and one more WAL record, than the raw
//! client. `update` is a compare-and-set on the version, as a store's is.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use session_core::StoreKey;
use sqlx::{AssertSqlSafe, PgConnection};
use tokio::sync::Mutex;

use crate::clock::BenchClock;
use crate::namespace::{Namespace, unique_name};
use crate::servers::postgres_connection;
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// Dedicated connections, as many as `PostgresStore` opens by default. One
/// task uses one; more tasks share them.
pub const RAW_POSTGRES_CONNECTIONS: usize = 10;

/// Rows per preload INSERT.
const PRELOAD_BATCH: usize = 5_000;

/// The statements, built once per table.
struct Statements {
    create: Arc<str>,
    load: Arc<str>,
    update: Arc<str>,
    touch: Arc<str>,
    rotate: Arc<str>,
    delete: Arc<str>,
    preload: Arc<str>,
}

/// Raw sqlx.
pub struct RawPostgres {
    id: ContenderId,
    connections: Vec<Mutex<PgConnection>>,
    next: AtomicUsize,
    sql: Statements,
    clock: BenchClock,
    namespace: Namespace,
}

fn failed(op: &str) -> impl Fn(sqlx::Error) -> BenchError + '_ {
    move |e| BenchError::new(op, e)
}

impl RawPostgres {
    /// Connects and creates a fresh table.
    pub async fn connect(url: &str) -> Result<Self, BenchError> {
        let table = unique_name("raw_pg");
        let mut connections = Vec::with_capacity(RAW_POSTGRES_CONNECTIONS);
        for _ in 0..RAW_POSTGRES_CONNECTIONS {
            connections.push(Mutex::new(postgres_connection(url).await?));
        }
        let ddl = format!(
            "CREATE TABLE {table} (key bytea PRIMARY KEY, version bigint NOT NULL, data bytea NOT NULL, \
             created_at bigint NOT NULL, expires_at bigint NOT NULL)"
        );
        sqlx::query(AssertSqlSafe(ddl))
            .execute(&mut *connections[0].lock().await)
            .await
            .map_err(failed("create table"))?;
        let s = |sql: String| -> Arc<str> { sql.into() };
        let sql = Statements {
            create: s(format!(
                "INSERT INTO {table} (key, version, data, created_at, expires_at) VALUES ($1, 1, $2, $3, $4)"
            )),
            load: s(format!(
                "SELECT version, data, created_at, expires_at FROM {table} WHERE key = $1 AND expires_at > $2"
            )),
            update: s(format!(
                "UPDATE {table} SET version = version + 1, data = $2, expires_at = $3 \
                 WHERE key = $1 AND version = $4 AND expires_at > $5 RETURNING version"
            )),
            touch: s(format!(
                "UPDATE {table} SET expires_at = GREATEST(expires_at, $2) WHERE key = $1 AND expires_at > $3"
            )),
            rotate: s(format!(
                "WITH old AS (DELETE FROM {table} WHERE key = $1 RETURNING data, created_at, expires_at) \
                 INSERT INTO {table} (key, version, data, created_at, expires_at) \
                 SELECT $2, 1, data, created_at, expires_at FROM old"
            )),
            delete: s(format!("DELETE FROM {table} WHERE key = $1")),
            preload: s(format!(
                "INSERT INTO {table} (key, version, data, created_at, expires_at) \
                 SELECT k, 1, $2, $3, $4 FROM UNNEST($1::bytea[]) AS k"
            )),
        };
        Ok(RawPostgres {
            id: ContenderId {
                backend: Backend::Postgres,
                role: Role::Raw,
            },
            connections,
            next: AtomicUsize::new(0),
            sql,
            clock: BenchClock::new(),
            namespace: Namespace::PostgresTable {
                url: url.to_owned(),
                table,
                schema: None,
            },
        })
    }

    /// A free connection if there is one, else the next in turn.
    async fn connection(&self) -> tokio::sync::MutexGuard<'_, PgConnection> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.connections.len();
        for i in 0..n {
            if let Ok(conn) = self.connections[(start + i) % n].try_lock() {
                return conn;
            }
        }
        self.connections[start % n].lock().await
    }
}

#[async_trait]
impl Contender for RawPostgres {
    fn id(&self) -> &ContenderId {
        &self.id
    }

    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError> {
        let mut conn = self.connection().await;
        for chunk in keys.chunks(PRELOAD_BATCH) {
            let keys: Vec<Vec<u8>> = chunk.iter().map(|k| k.as_bytes().to_vec()).collect();
            sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.preload)))
                .bind(keys)
                .bind(&payload[..])
                .bind(self.clock.now().as_millis())
                .bind(self.clock.expiry().as_millis())
                .execute(&mut *conn)
                .await
                .map_err(failed("preload"))?;
        }
        Ok(())
    }

    async fn create(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.create)))
            .bind(&key.as_bytes()[..])
            .bind(&payload[..])
            .bind(self.clock.now().as_millis())
            .bind(self.clock.expiry().as_millis())
            .execute(&mut *self.connection().await)
            .await
            .map_err(failed("create"))?;
        Ok(())
    }

    async fn load(&self, key: &StoreKey) -> Result<bool, BenchError> {
        let row: Option<(i64, Vec<u8>, i64, i64)> = sqlx::query_as(AssertSqlSafe(Arc::clone(&self.sql.load)))
            .bind(&key.as_bytes()[..])
            .bind(self.clock.now().as_millis())
            .fetch_optional(&mut *self.connection().await)
            .await
            .map_err(failed("load"))?;
        Ok(row.is_some())
    }

    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError> {
        let row: Option<(i64,)> = sqlx::query_as(AssertSqlSafe(Arc::clone(&self.sql.update)))
            .bind(&key.as_bytes()[..])
            .bind(&payload[..])
            .bind(self.clock.expiry().as_millis())
            .bind(expected_version as i64)
            .bind(self.clock.now().as_millis())
            .fetch_optional(&mut *self.connection().await)
            .await
            .map_err(failed("update"))?;
        // A lost race leaves the version unknown here; the next update of
        // this key then conflicts too, which costs the same round trip.
        Ok(row.map_or(expected_version, |(v,)| v as u64))
    }

    async fn touch(&self, key: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.touch)))
            .bind(&key.as_bytes()[..])
            .bind(self.clock.renewal().as_millis())
            .bind(self.clock.now().as_millis())
            .execute(&mut *self.connection().await)
            .await
            .map_err(failed("touch"))?;
        Ok(())
    }

    async fn rotate(&self, old: &StoreKey, new: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.rotate)))
            .bind(&old.as_bytes()[..])
            .bind(&new.as_bytes()[..])
            .execute(&mut *self.connection().await)
            .await
            .map_err(failed("rotate"))?;
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BenchError> {
        sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.delete)))
            .bind(&key.as_bytes()[..])
            .execute(&mut *self.connection().await)
            .await
            .map_err(failed("delete"))?;
        Ok(())
    }

    async fn cleanup(&self) -> Result<(), BenchError> {
        self.namespace.remove().await
    }
}
