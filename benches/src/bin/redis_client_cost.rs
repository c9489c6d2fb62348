//! CPU per operation on the client and on the server, `RedisStore::load`
//! against a raw redis-rs `HMGET` of the same five fields and a raw `GET`
//! of one string, at 32 concurrent tasks: where the time of a Redis `load`
//! goes when the machine, not the network, is the limit.
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
        measure("ours: load (HMGET)", &mut raw, &ops, move |k| {
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
        let (c, p) = (raw.clone(), prefix.clone());
        measure("raw: HMGET, 5 fields", &mut raw, &ops, move |k| {
            let (mut c, p) = (c.clone(), p.clone());
            async move {
                // The key `RedisStore` writes: the prefix, then the hex
                // key in braces.
                let v: redis::Value = redis::cmd("HMGET")
                    .arg(format!("{p}{{{}}}", k.to_hex()))
                    .arg(&["version", "data", "created_at", "expires_at", "owner"])
                    .query_async(&mut c)
                    .await
                    .map_err(|e| BenchError::new("HMGET", e))?;
                match v {
                    redis::Value::Array(_) => Ok(()),
                    other => Err(BenchError(format!("HMGET: unexpected reply {other:?}"))),
                }
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
    namespace.remove().await?;
    Ok(())
}
