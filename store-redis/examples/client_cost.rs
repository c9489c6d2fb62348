//! CPU per operation on the client and on the server, ours against a raw
//! redis-rs GET, at 32 concurrent tasks: where the time of a Redis `load`
//! goes when the machine, not the network, is the limit.
//!
//! `cargo run --release -p store-redis --example client_cost`

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use session_core::{Bytes, Record, SessionId, SessionStore, StoreKey, Timestamp};
use store_redis::RedisStore;

const KEYS: usize = 10_000;
const OPS: usize = 200_000;
const TASKS: usize = 32;

/// User + system CPU seconds of this process, from /proc.
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

async fn measure<F, Fut>(name: &str, conn: &mut MultiplexedConnection, keys: Arc<Vec<StoreKey>>, op: F)
where
    F: Fn(StoreKey) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (client0, server0, wall0) = (process_cpu(), server_cpu(conn).await, Instant::now());
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (keys, op) = (Arc::clone(&keys), op.clone());
            tokio::spawn(async move {
                for i in 0..OPS / TASKS {
                    op(keys[(i * TASKS + t) % keys.len()]).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let wall = wall0.elapsed();
    let (client, server) = (process_cpu() - client0, server_cpu(conn).await - server0);
    let per = |s: f64| s * 1e6 / OPS as f64;
    println!(
        "{name:<22} {:>8.0} ops/s   client CPU {:>5.2} µs/op   server CPU {:>5.2} µs/op",
        OPS as f64 / wall.as_secs_f64(),
        per(client),
        per(server)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("client_cost_{}:", std::process::id());
    let store = RedisStore::builder(&url).prefix(&prefix).build().await?;
    let client = redis::Client::open(url.as_str())?;
    let mut raw = client.get_multiplexed_async_connection().await?;
    let now = Timestamp::now();
    let data = Bytes::from(vec![7u8; 256]);
    let keys: Vec<StoreKey> = (0..KEYS)
        .map(|_| SessionId::generate().map(|id| id.store_key()))
        .collect::<Result<_, _>>()?;
    for k in &keys {
        let record = Record {
            key: *k,
            version: 1,
            data: data.clone(),
            created_at: now,
            expires_at: now + Duration::from_secs(3600),
            owner: None,
        };
        store.create(record, now).await?;
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}raw:{}", k.to_hex()))
            .arg(&data[..])
            .query_async(&mut raw)
            .await?;
    }
    let keys = Arc::new(keys);
    for _ in 0..2 {
        let s = store.clone();
        measure("ours: load (HMGET)", &mut raw, Arc::clone(&keys), move |k| {
            let s = s.clone();
            async move {
                s.load(&k, now).await.expect("load").expect("live");
            }
        })
        .await;
        let (c, p) = (raw.clone(), prefix.clone());
        measure("raw: HMGET, 5 fields", &mut raw, Arc::clone(&keys), move |k| {
            let (mut c, p) = (c.clone(), p.clone());
            async move {
                let v: redis::Value = redis::cmd("HMGET")
                    .arg(format!("{p}{{{}}}", k.to_hex()))
                    .arg(&["version", "data", "created_at", "expires_at", "owner"])
                    .query_async(&mut c)
                    .await
                    .expect("hmget");
                assert!(matches!(v, redis::Value::Array(_)));
            }
        })
        .await;
        let (c, p) = (raw.clone(), prefix.clone());
        measure("raw: GET", &mut raw, Arc::clone(&keys), move |k| {
            let (mut c, p) = (c.clone(), p.clone());
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(format!("{p}raw:{}", k.to_hex()))
                    .query_async(&mut c)
                    .await
                    .expect("get");
                assert!(v.is_some());
            }
        })
        .await;
    }
    let pattern = format!("{prefix}*");
    let stale: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut raw).await?;
    for chunk in stale.chunks(1000) {
        let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut raw).await?;
    }
    Ok(())
}
