//! The physical limit of a Redis store: redis-rs on one multiplexed
//! connection, the one round trip each operation needs and nothing more.
//!
//! A session is one string: an 8-byte big-endian version, then the payload.
//! The version lives in the value so that `update` can compare and swap it
//! in the same round trip, and a string (not a hash) keeps `create` and
//! `load` at one plain command each. Each operation, and why:
//!
//! - `create`: `SET key v1+payload NX PXAT t`, insert-if-absent with its
//!   expiry in one command.
//! - `load`: `GET key`, the cheapest read there is.
//! - `update`: one `EVALSHA` of `CAS` (below), which reads the version
//!   (`GETRANGE 0 7`), compares it with the expected one and writes the new
//!   value with its expiry (`SET ... PXAT`). A compare-and-swap cannot be one
//!   plain command, and a plain `SET` would be a blind write: not the same
//!   operation as ours, and not the round trip a CAS costs.
//! - `touch`: `PEXPIREAT key t GT`, which only ever moves the expiry later,
//!   like ours (whose renewal also checks liveness by the caller's clock and
//!   rewrites a field; this one trusts the server's TTL).
//! - `rotate`: `RENAMENX old new`, a move that refuses to overwrite.
//! - `delete`: `DEL key`.
//!
//! What the raw client skips, and ours pays for: liveness judged by the
//! caller's clock, validation of every field, the owner index, a version
//! reset on rotate.

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use session_core::StoreKey;

use crate::clock::BenchClock;
use crate::namespace::{Namespace, unique_name};
use crate::servers::redis_connection;
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// Commands per pipeline in the preload.
const PIPELINE: usize = 1_000;

/// The minimal compare-and-swap. KEYS: session. ARGV: expected version (8
/// bytes), new value (new version + payload), expiry (ms). Returns 1 when
/// swapped, the current version when another was stored, nil when absent.
const CAS: &str = r#"
local current = redis.call('GETRANGE', KEYS[1], 0, 7)
if current == '' then return false end
if current ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return 1
"#;

/// The version as stored in front of the payload.
fn version_bytes(version: u64) -> [u8; 8] {
    version.to_be_bytes()
}

/// A stored value: the version, then the payload.
fn value(version: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&version_bytes(version));
    v.extend_from_slice(payload);
    v
}

/// Raw redis-rs.
pub struct RawRedis {
    id: ContenderId,
    conn: MultiplexedConnection,
    prefix: String,
    clock: BenchClock,
    cas: redis::Script,
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
            cas: redis::Script::new(CAS),
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
        let value = value(1, payload);
        for chunk in keys.chunks(PIPELINE) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("SET")
                    .arg(self.key(key))
                    .arg(&value[..])
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
            .arg(value(1, payload))
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
        match value {
            Some(v) if v.len() >= 8 => Ok(true),
            Some(_) => Err(BenchError("load: a value shorter than its version".into())),
            None => Ok(false),
        }
    }

    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError> {
        let new_version = expected_version + 1;
        let reply: redis::Value = self
            .cas
            .key(self.key(key))
            .arg(&version_bytes(expected_version)[..])
            .arg(value(new_version, payload))
            .arg(self.clock.expiry().as_millis())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(failed("update"))?;
        match reply {
            redis::Value::Int(1) => Ok(new_version),
            redis::Value::BulkString(current) => <[u8; 8]>::try_from(current.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| BenchError("update: a malformed stored version".into())),
            redis::Value::Nil => Err(BenchError("update: no such session".into())),
            other => Err(BenchError(format!("update: unexpected reply {other:?}"))),
        }
    }

    async fn touch(&self, key: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        let _: i64 = redis::cmd("PEXPIREAT")
            .arg(self.key(key))
            .arg(self.clock.renewal().as_millis())
            .arg("GT")
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
