//! CPU per operation on the client and on the server, `RedisStore::load`
//! against a raw redis-rs `GET` of the same record and a raw `GET` of a
//! plain string, at 32 concurrent tasks: where the time of a Redis `load`
//! goes when the machine, not the network, is the limit. Then the server
//! CPU per call (`INFO commandstats`) of two of the store's scripts sent as
//! `EVALSHA` and as `FCALL` of the same code loaded as a function library,
//! which is how `docs/decisions/0010-redis-one-string-record.md` chose, and
//! the FCALLs again pipelined: one at a time, the server idles between calls
//! and each pays for cold caches; pipelined, it runs them back to back, as a
//! busy server does without this process competing for its CPU.
//!
//! ```sh
//! cargo run -p benches --release --bin redis_client_cost
//! ```
//!
//! Redis at `REDIS_URL` (default: the local port). Each measurement runs
//! twice; client CPU is this process's (from `/proc/self/stat`), server CPU
//! the difference of Redis's `INFO cpu`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use benches::BenchError;
use benches::fan_out::fan_out;
use benches::keys::{PRELOAD_STREAM, expiry, key, record};
use benches::namespace::{Namespace, unique_name};
use benches::servers::Server;
use redis::aio::MultiplexedConnection;
use session_core::{Bytes, SessionStore, StoreKey, Timestamp};
use store_redis::RedisStore;

const KEYS: usize = 10_000;
const OPS: usize = 200_000;
const TASKS: usize = 32;

/// User + system CPU seconds of this process, from /proc (in clock ticks
/// of 1/100 s).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn server_cpu(conn: &mut MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .filter(|l| l.starts_with("used_cpu_user:") || l.starts_with("used_cpu_sys:"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .sum()
}

/// Runs `op` [`OPS`] times over `keys` (each key in turn, wrapping around)
/// on [`TASKS`] tasks and prints throughput and CPU per operation.
async fn measure<F, Fut>(
    name: &str,
    conn: &mut MultiplexedConnection,
    keys: &Arc<[StoreKey]>,
    op: F,
) -> Result<(), BenchError>
where
    F: Fn(StoreKey) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BenchError>> + Send + 'static,
{
    let (client0, server0, wall0) = (process_cpu(), server_cpu(conn).await, Instant::now());
    fan_out(TASKS, Arc::clone(keys), op).await?;
    let wall = wall0.elapsed();
    let (client, server) = (process_cpu() - client0, server_cpu(conn).await - server0);
    let per = |s: f64| s * 1e6 / OPS as f64;
    println!(
        "{name:<22} {:>8.0} ops/s   client CPU {:>5.2} µs/op   server CPU {:>5.2} µs/op",
        OPS as f64 / wall.as_secs_f64(),
        per(client),
        per(server)
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = Server::Redis.url();
    let prefix = format!("{}:", unique_name("redis_client_cost"));
    let store = RedisStore::builder(&url).prefix(&prefix).connect().await?;
    // A plain connection, no timeouts: the raw commands pay for nothing
    // but the command.
    let mut raw = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let namespace = Namespace::RedisPrefix {
        conn: raw.clone(),
        prefix: prefix.clone(),
    };
    let now = Timestamp::now();
    let data = Bytes::from(vec![7u8; 256]);
    let keys: Vec<StoreKey> = (0..KEYS as u64).map(|i| key(PRELOAD_STREAM, i)).collect();
    for k in &keys {
        store.create(record(*k, data.clone(), now, expiry(now)), now).await?;
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}raw:{}", k.to_hex()))
            .arg(&data[..])
            .query_async(&mut raw)
            .await?;
    }
    // Task t of TASKS takes operations t, t + TASKS, ...: operation i is on
    // key i mod KEYS.
    let ops: Arc<[StoreKey]> = (0..OPS).map(|i| keys[i % KEYS]).collect();
    for _ in 0..2 {
        let s = store.clone();
        measure("ours: load (GET)", &mut raw, &ops, move |k| {
            let s = s.clone();
            async move {
                match s.load(&k, now).await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err(BenchError("load: a preloaded session is gone".into())),
                    Err(e) => Err(BenchError::new("load", e)),
                }
            }
        })
        .await?;
        let (c, s) = (raw.clone(), store.clone());
        measure("raw: GET of the record", &mut raw, &ops, move |k| {
            let (mut c, s) = (c.clone(), s.clone());
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(s.session_key(&k))
                    .query_async(&mut c)
                    .await
                    .map_err(|e| BenchError::new("GET", e))?;
                v.map(drop)
                    .ok_or_else(|| BenchError("GET: a preloaded record is gone".into()))
            }
        })
        .await?;
        let (c, p) = (raw.clone(), prefix.clone());
        measure("raw: GET", &mut raw, &ops, move |k| {
            let (mut c, p) = (c.clone(), p.clone());
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(format!("{p}raw:{}", k.to_hex()))
                    .query_async(&mut c)
                    .await
                    .map_err(|e| BenchError::new("GET", e))?;
                v.map(drop)
                    .ok_or_else(|| BenchError("GET: a preloaded key is gone".into()))
            }
        })
        .await?;
    }
    scripts(&store, &mut raw, &keys, now).await?;
    namespace.remove().await?;
    Ok(())
}

const RECORD_LUA: &str = include_str!("../../../store-redis/lua/record.lua");
const INDEX_LUA: &str = include_str!("../../../store-redis/lua/index.lua");
const TOUCH_LUA: &str = include_str!("../../../store-redis/lua/touch.lua");
const WRITE_LUA: &str = include_str!("../../../store-redis/lua/write.lua");

/// Calls per script and way of calling it.
const SCRIPT_CALLS: usize = 20_000;

/// Commands per pipeline when the calls are pipelined: the server then runs
/// them back to back, hot, which is the cost of a call on a busy server
/// without this process competing for its CPU. One at a time, the server
/// idles between calls, and each call pays for cold caches.
const PIPELINE: usize = 256;

async fn commandstat(conn: &mut MultiplexedConnection, name: &str) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    let prefix = format!("cmdstat_{name}:");
    let line = info.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or("");
    let field = |k: &str| {
        line.split(',')
            .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("calls"), field("usec"))
}

/// Server µs per call of the store's `touch` (a renewal that finds nothing
/// to move, and one that moves the expiry) and `overwrite` scripts on
/// sessions without an owner, as EVALSHA and as FCALL.
async fn scripts(
    store: &RedisStore,
    conn: &mut MultiplexedConnection,
    keys: &[StoreKey],
    now: Timestamp,
) -> Result<(), Box<dyn std::error::Error>> {
    let wrap =
        |name: &str, body: &str| format!("redis.register_function('{name}', function(KEYS, ARGV)\n{body}\nend)\n");
    let library = format!(
        "#!lua name=store_redis_cost\n{RECORD_LUA}\n{INDEX_LUA}\n{}{}",
        wrap("touch", TOUCH_LUA),
        wrap("write", WRITE_LUA)
    );
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(&library)
        .query_async(conn)
        .await?;
    let touch_sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg([RECORD_LUA, INDEX_LUA, TOUCH_LUA].concat())
        .query_async(conn)
        .await?;
    let write_sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg([RECORD_LUA, INDEX_LUA, WRITE_LUA].concat())
        .query_async(conn)
        .await?;
    let ms = |t: Timestamp| t.as_millis().to_be_bytes();
    let payload = [7u8; 256];
    for round in 0..2 {
        for (what, sha, function) in [
            ("touch, nothing to move", &touch_sha, "touch"),
            ("touch, moves the expiry", &touch_sha, "touch"),
            ("overwrite", &write_sha, "write"),
        ] {
            for (fcall, pipelined) in [(false, false), (true, false), (true, true)] {
                let cmd_name = if fcall { "fcall" } else { "evalsha" };
                let before = commandstat(conn, cmd_name).await;
                let mut pipe = redis::pipe();
                for i in 0..SCRIPT_CALLS {
                    let k = keys[i % keys.len()];
                    let session = store.session_key(&k);
                    let hex = k.to_hex();
                    let mut cmd = redis::cmd(if fcall { "FCALL" } else { "EVALSHA" });
                    cmd.arg(if fcall { function } else { sha.as_str() })
                        .arg(1)
                        .arg(&session)
                        .arg(store.prefix())
                        .arg("0")
                        .arg(&hex)
                        .arg(&ms(now));
                    if function == "touch" {
                        let shift = if what.contains("moves") {
                            (round * 4 + usize::from(fcall) * 2) * SCRIPT_CALLS + i + 1
                        } else {
                            0
                        };
                        let expires = expiry(now) + std::time::Duration::from_millis(shift as u64);
                        cmd.arg(&ms(expires)).arg(expires.as_millis()).arg(expires.as_millis());
                    } else {
                        let expires = expiry(now);
                        let mut value = vec![b'S'];
                        value.extend_from_slice(&1u64.to_be_bytes());
                        value.extend_from_slice(&0i64.to_be_bytes());
                        value.extend_from_slice(&ms(expires));
                        value.extend_from_slice(&[u8::from(fcall); 8]);
                        value.extend_from_slice(&((round * SCRIPT_CALLS + i) as u64).to_be_bytes());
                        value.extend_from_slice(&[0, 0]);
                        value.extend_from_slice(&payload);
                        let op = value[25..41].to_vec();
                        cmd.arg("").arg(value).arg(expires.as_millis()).arg(op);
                    }
                    if pipelined {
                        pipe.add_command(cmd);
                        if pipe.len() == PIPELINE || i + 1 == SCRIPT_CALLS {
                            let _: redis::Value = pipe.query_async(conn).await?;
                            pipe = redis::pipe();
                        }
                    } else {
                        let _: redis::Value = cmd.query_async(conn).await?;
                    }
                }
                let after = commandstat(conn, cmd_name).await;
                let (calls, usec) = (after.0 - before.0, after.1 - before.1);
                let how = if pipelined {
                    "pipelined (a busy server)"
                } else {
                    "one at a time"
                };
                println!(
                    "{what:<26} {cmd_name:<8} {:>5.2} µs per call (server, {calls} calls, {how})",
                    usec as f64 / calls.max(1) as f64
                );
            }
        }
    }
    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("store_redis_cost")
        .query_async(conn)
        .await?;
    Ok(())
}
