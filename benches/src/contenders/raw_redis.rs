//! The physical limit of a Redis store: redis-rs on one multiplexed
//! connection, the one round trip each operation needs and nothing more;
//! and of a Redis Cluster: the same commands and script on redis-rs's
//! cluster connection, which sends each to the master of its key's slot.
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
//!
//! On a cluster a key is `<prefix>{ttt}<32 key bytes>`: the hash tag `ttt`
//! is the key's top 10 bits in three hex digits, the split `RedisStore`
//! uses on a cluster (1024 shards, one slot each), so both spread over the
//! same slots and `RENAMENX`, which needs both keys in one slot, moves a
//! session within its shard, as ours does (the workload draws the new key
//! into the old one's shard, see [`Contender::shard_of_key`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use session_core::StoreKey;

use crate::clock::BenchClock;
use crate::fan_out::fan_out;
use crate::namespace::{Namespace, unique_name};
use crate::servers::{redis_cluster_connection, redis_connection};
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// Commands per pipeline in the preload.
const PIPELINE: usize = 1_000;

/// Pipelines in flight in a cluster's preload, where each holds the few
/// keys of one slot.
const CLUSTER_PRELOAD_TASKS: usize = 16;

const HEX: &[u8; 16] = b"0123456789abcdef";

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

/// The shard of a key on a cluster: its top 10 bits (as `RedisStore`'s).
fn shard(key: &StoreKey) -> u32 {
    let b = key.as_bytes();
    (u32::from(b[0]) << 2) | (u32::from(b[1]) >> 6)
}

/// What the raw client sends on: the two connections `RedisStore` uses. A
/// clone of either is a handle on the same connection(s).
#[derive(Clone)]
enum Link {
    /// One server's multiplexed connection.
    One(MultiplexedConnection),
    /// A connection to every master, routing each command by its key.
    Cluster {
        conn: ClusterConnection,
        /// The seed nodes, for the cleanup.
        nodes: String,
    },
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::One(c) => c.req_packed_command(cmd),
            Link::Cluster { conn, .. } => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::One(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster { conn, .. } => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::One(c) => c.get_db(),
            Link::Cluster { conn, .. } => conn.get_db(),
        }
    }
}

/// Raw redis-rs.
pub struct RawRedis {
    id: ContenderId,
    conn: Link,
    prefix: String,
    clock: BenchClock,
    cas: redis::Script,
}

impl RawRedis {
    /// Connects to one server, with a fresh key prefix.
    pub async fn connect(url: &str) -> Result<Self, BenchError> {
        let conn = Link::One(redis_connection(url).await?);
        Ok(Self::new(Backend::Redis, conn, "raw_redis"))
    }

    /// Connects to the Redis Cluster behind `nodes` (comma-separated seed
    /// nodes), with a fresh key prefix.
    pub async fn connect_cluster(nodes: &str) -> Result<Self, BenchError> {
        let conn = Link::Cluster {
            conn: redis_cluster_connection(nodes).await?,
            nodes: nodes.to_owned(),
        };
        Ok(Self::new(Backend::RedisCluster, conn, "raw_redis_cluster"))
    }

    fn new(backend: Backend, conn: Link, kind: &str) -> Self {
        RawRedis {
            id: ContenderId {
                backend,
                role: Role::Raw,
            },
            conn,
            prefix: format!("{}:", unique_name(kind)),
            clock: BenchClock::new(),
            cas: redis::Script::new(CAS),
        }
    }

    /// What to remove afterwards.
    pub fn namespace(&self) -> Namespace {
        match &self.conn {
            Link::One(conn) => Namespace::RedisPrefix {
                conn: conn.clone(),
                prefix: self.prefix.clone(),
            },
            Link::Cluster { nodes, .. } => Namespace::RedisClusterPrefix {
                nodes: nodes.clone(),
                prefix: self.prefix.clone(),
            },
        }
    }

    fn key(&self, key: &StoreKey) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 37);
        k.extend_from_slice(self.prefix.as_bytes());
        if let Some(shard) = self.shard_of_key(key) {
            k.push(b'{');
            k.extend([8, 4, 0].map(|shift| HEX[((shard >> shift) & 0xf) as usize]));
            k.push(b'}');
        }
        k.extend_from_slice(key.as_bytes());
        k
    }

    /// The preload's pipelines: [`PIPELINE`] `SET`s each; on a cluster,
    /// where a pipeline goes to one slot, one (or more) per shard.
    fn preload_pipelines(&self, keys: &[StoreKey], payload: &Bytes) -> Vec<Pipeline> {
        let expiry = self.clock.expiry().as_millis();
        let value = value(1, payload);
        let mut groups: BTreeMap<Option<u32>, Vec<&StoreKey>> = BTreeMap::new();
        for key in keys {
            groups.entry(self.shard_of_key(key)).or_default().push(key);
        }
        let mut pipelines = Vec::new();
        for group in groups.values() {
            for chunk in group.chunks(PIPELINE) {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.cmd("SET")
                        .arg(self.key(key))
                        .arg(&value[..])
                        .arg("PXAT")
                        .arg(expiry)
                        .ignore();
                }
                pipelines.push(pipe);
            }
        }
        pipelines
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

    fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
        matches!(self.conn, Link::Cluster { .. }).then(|| shard(key))
    }

    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError> {
        // One server: one pipeline at a time, as big as they come. A
        // cluster: many small ones (a slot's keys each) in flight.
        let tasks = match self.conn {
            Link::One(_) => 1,
            Link::Cluster { .. } => CLUSTER_PRELOAD_TASKS,
        };
        let conn = self.conn.clone();
        fan_out(tasks, self.preload_pipelines(keys, payload).into(), move |pipe| {
            let mut conn = conn.clone();
            async move { pipe.query_async::<()>(&mut conn).await.map_err(failed("preload")) }
        })
        .await
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
