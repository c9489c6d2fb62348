//! How long one `SledStore` operation blocks the calling thread, to decide
//! whether sled calls may run inline on tokio workers (see store-sled's
//! crate docs): the latency percentiles of create, load, update and touch
//! at 1, 4 and 32 tasks, of a flush after a write, and of loads beside
//! writers that flush every write.
//!
//! ```sh
//! cargo run -p benches --release --bin sled_op_latency -- --quick
//! ```
//!
//! `--quick` leaves out the 4-task run. 200-byte sessions,
//! `FlushPolicy::Periodic(500 ms)` unless noted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use benches::BenchError;
use benches::contenders::raw_sled::SLED_FLUSH_EVERY;
use benches::keys::{key, record};
use benches::namespace::Namespace;
use session_core::{Bytes, Record, SessionStore, StoreKey, Timestamp, Update};
use store_sled::{FlushPolicy, SledStore, SledStoreBuilder};

const OPS: usize = 20_000;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{name:<28} p50 {:>7.1?}  p99 {:>7.1?}  p99.9 {:>7.1?}  max {:>7.1?}",
        at(0.5),
        at(0.99),
        at(0.999),
        samples[samples.len() - 1]
    );
}

/// A store in a fresh directory, built by `configure`, and the directory to
/// remove afterwards.
fn open(configure: impl FnOnce(SledStoreBuilder) -> SledStoreBuilder) -> Result<(Arc<SledStore>, Namespace), Failure> {
    let namespace = Namespace::temp_directory("sled_op_latency");
    let Namespace::Directory(path) = &namespace else {
        return Err(BenchError("a sled store needs a directory".into()).into());
    };
    let store = configure(SledStore::builder(path.join("db"))).open()?;
    Ok((Arc::new(store), namespace))
}

/// A session of `data` that lives an hour from `now`.
fn session(key: StoreKey, data: &Bytes, now: Timestamp) -> Record {
    record(key, data.clone(), now, now + Duration::from_secs(3600))
}

async fn measure(tasks: usize) -> Result<(), Failure> {
    let (store, namespace) = open(|b| b.flush_policy(FlushPolicy::Periodic(SLED_FLUSH_EVERY)))?;
    let now = Timestamp::now();
    let data = Bytes::from(vec![7u8; 200]);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = Arc::clone(&store);
        let data = data.clone();
        handles.push(tokio::spawn(async move {
            let mut lat: [Vec<Duration>; 4] = Default::default();
            let keys: Vec<_> = (0..(OPS / tasks) as u64).map(|i| key(t as u64, i)).collect();
            for (i, k) in keys.iter().enumerate() {
                let record = Record {
                    owner: Some(format!("user-{}", i % 100 + t * 1000)),
                    ..session(*k, &data, now)
                };
                let s = Instant::now();
                store.create(record, now).await?;
                lat[0].push(s.elapsed());
            }
            for k in &keys {
                let s = Instant::now();
                store.load(k, now).await?;
                lat[1].push(s.elapsed());
            }
            for k in &keys {
                let update = Update {
                    expected_version: 1,
                    data: data.clone(),
                    expires_at: now + Duration::from_secs(7200),
                    owner: None,
                };
                let s = Instant::now();
                store.update(k, update, now).await?;
                lat[2].push(s.elapsed());
            }
            for k in &keys {
                let s = Instant::now();
                store.touch(k, now + Duration::from_secs(9000), now).await?;
                lat[3].push(s.elapsed());
            }
            Ok::<_, session_core::Error>(lat)
        }));
    }
    let mut all: [Vec<Duration>; 4] = Default::default();
    for h in handles {
        let lat = h.await??;
        for (a, l) in all.iter_mut().zip(lat) {
            a.extend(l);
        }
    }
    for (name, samples) in ["create", "load", "update", "touch"].iter().zip(all) {
        report(&format!("{name} ({tasks} tasks)"), samples);
    }

    let mut flushes = Vec::new();
    for i in 0..200 {
        let record = record(key(u64::MAX, i), data.clone(), now, now + Duration::from_secs(60));
        store.create(record, now).await?;
        let f = Instant::now();
        store.flush().await?;
        flushes.push(f.elapsed());
    }
    report("flush after a write (fsync)", flushes);
    drop(store);
    namespace.remove().await?;
    Ok(())
}

/// `load` while other tasks write under `FlushPolicy::EveryWrite` (the
/// builder's default), so that a flush (write + `fsync`) is nearly always
/// in progress: a read must not wait for it.
async fn loads_beside_durable_writers(readers: usize, writers: usize) -> Result<(), Failure> {
    let (store, namespace) = open(|b| b)?;
    let now = Timestamp::now();
    let data = Bytes::from(vec![7u8; 200]);
    let keys: Vec<_> = (0..1000).map(|i| key(0, i)).collect();
    for k in &keys {
        store.create(session(*k, &data, now), now).await?;
    }
    let keys = Arc::new(keys);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer_handles = Vec::new();
    for w in 0..writers {
        let (store, keys, stop, data) = (Arc::clone(&store), Arc::clone(&keys), Arc::clone(&stop), data.clone());
        writer_handles.push(tokio::spawn(async move {
            let mut i = w;
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let k = &keys[i % keys.len()];
                let Some(current) = store.load(k, now).await? else {
                    return Err(BenchError("a preloaded session is gone".into()).into());
                };
                let update = Update {
                    expected_version: current.version,
                    data: data.clone(),
                    expires_at: now + Duration::from_secs(3600),
                    owner: None,
                };
                match store.update(k, update, now).await {
                    Ok(_) | Err(session_core::Error::Conflict { .. }) => writes += 1,
                    Err(e) => return Err(e.into()),
                }
                i += writers;
            }
            Ok::<_, Failure>(writes)
        }));
    }
    let mut reader_handles = Vec::new();
    for r in 0..readers {
        let (store, keys) = (Arc::clone(&store), Arc::clone(&keys));
        reader_handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in 0..(OPS / 2 / readers) {
                let s = Instant::now();
                store.load(&keys[(i * 7 + r) % keys.len()], now).await?;
                lat.push(s.elapsed());
                // Let the writers' completions run on this worker too.
                tokio::task::yield_now().await;
            }
            Ok::<_, session_core::Error>(lat)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for h in reader_handles {
        all.extend(h.await??);
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for h in writer_handles {
        writes += h.await??;
    }
    report(&format!("load, {readers} readers + {writers} EveryWrite writers"), all);
    println!("  ({writes} durable writes in {elapsed:.1?})");
    drop(store);
    namespace.remove().await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Failure> {
    let quick = std::env::args().any(|a| a == "--quick");
    measure(1).await?;
    if !quick {
        measure(4).await?;
    }
    measure(32).await?;
    loads_beside_durable_writers(1, 4).await?;
    loads_beside_durable_writers(32, 4).await?;
    Ok(())
}
