//! The physical limit of a Redis store: redis-rs on one multiplexed
//! connection, one plain command per operation (`SET NX`, `GET`, `SET`,
//! `PEXPIREAT`, `RENAMENX`, `DEL`), the value being the payload itself.

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use session_core::StoreKey;

use super::BenchClock;
use super::server::{Namespace, redis_connection, unique_name};
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// Commands per pipeline in the preload.
const PIPELINE: usize = 1_000;

/// Raw redis-rs.
pub struct RawRedis {
    id: ContenderId,
    conn: MultiplexedConnection,
    prefix: String,
    clock: BenchClock,
}

impl RawRedis {
    /// Connects, with a fresh key prefix.
    pub async fn connect(url: &str) -> Result<Self, BenchError> {
        Ok(RawRedis {
            id: ContenderId {
                backend: Backend::Redis,
                role: Role::Raw,
            },
            conn: redis_connection(url).await?,
            prefix: format!("{}:", unique_name("raw_redis")),
            clock: BenchClock::new(),
        })
    }

    /// What to remove afterwards.
    pub fn namespace(&self) -> Namespace {
        Namespace::RedisPrefix {
            conn: self.conn.clone(),
            prefix: self.prefix.clone(),
        }
    }

    fn key(&self, key: &StoreKey) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 32);
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(key.as_bytes());
        k
    }
}

fn failed(op: &str) -> impl Fn(redis::RedisError) -> BenchError + '_ {
    move |e| BenchError::new(op, e)
}

#[async_trait]
impl Contender for RawRedis {
    fn id(&self) -> &ContenderId {
        &self.id
    }

    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError> {
        let expiry = self.clock.expiry().as_millis();
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(PIPELINE) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("SET")
                    .arg(self.key(key))
                    .arg(&payload[..])
                    .arg("PXAT")
                    .arg(expiry)
                    .ignore();
            }
            let _: () = pipe.query_async(&mut conn).await.map_err(failed("preload"))?;
        }
        Ok(())
    }

    async fn create(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        let created: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(&payload[..])
            .arg("NX")
            .arg("PXAT")
            .arg(self.clock.expiry().as_millis())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(failed("create"))?;
        created
            .map(|_| ())
            .ok_or_else(|| BenchError("create: the key exists".into()))
    }

    async fn load(&self, key: &StoreKey) -> Result<bool, BenchError> {
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(failed("load"))?;
        Ok(value.is_some())
    }

    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError> {
        let _: () = redis::cmd("SET")
            .arg(self.key(key))
            .arg(&payload[..])
            .arg("PXAT")
            .arg(self.clock.expiry().as_millis())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(failed("update"))?;
        Ok(expected_version + 1)
    }

    async fn touch(&self, key: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        let _: i64 = redis::cmd("PEXPIREAT")
            .arg(self.key(key))
            .arg(self.clock.renewal().as_millis())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(failed("touch"))?;
        Ok(())
    }

    async fn rotate(&self, old: &StoreKey, new: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        let _: i64 = redis::cmd("RENAMENX")
            .arg(self.key(old))
            .arg(self.key(new))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(failed("rotate"))?;
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BenchError> {
        let _: i64 = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(failed("delete"))?;
        Ok(())
    }

    async fn cleanup(&self) -> Result<(), BenchError> {
        self.namespace().remove().await
    }
}
