//! Measures how long one store operation blocks the calling thread, to decide
//! whether sled calls may run inline on tokio workers (see the crate docs).
//!
//! `cargo run --release -p store-sled --example op_latency`

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{Bytes, Record, SessionId, SessionStore, Timestamp, Update};
use store_sled::{FlushPolicy, SledStore};

const OPS: usize = 20_000;

fn key() -> session_core::StoreKey {
    SessionId::generate().expect("OS random source").store_key()
}

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

async fn measure(tasks: usize) -> Result<(), session_core::Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(
        SledStore::builder(dir.path().join("db"))
            .flush_policy(FlushPolicy::Periodic(Duration::from_millis(500)))
            .open()?,
    );
    let now = Timestamp::now();
    let data = Bytes::from(vec![7u8; 200]);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = Arc::clone(&store);
        let data = data.clone();
        handles.push(tokio::spawn(async move {
            let mut lat: [Vec<Duration>; 4] = Default::default();
            let keys: Vec<_> = (0..OPS / tasks).map(|_| key()).collect();
            for (i, k) in keys.iter().enumerate() {
                let record = Record {
                    key: *k,
                    version: 1,
                    data: data.clone(),
                    created_at: now,
                    expires_at: now + Duration::from_secs(3600),
                    owner: Some(format!("user-{}", i % 100 + t * 1000)),
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
        let lat = h.await.expect("task")?;
        for (a, l) in all.iter_mut().zip(lat) {
            a.extend(l);
        }
    }
    for (name, samples) in ["create", "load", "update", "touch"].iter().zip(all) {
        report(&format!("{name} ({tasks} tasks)"), samples);
    }

    let mut flushes = Vec::new();
    for _ in 0..200 {
        let k = key();
        let record = Record {
            key: k,
            version: 1,
            data: data.clone(),
            created_at: now,
            expires_at: now + Duration::from_secs(60),
            owner: None,
        };
        store.create(record, now).await?;
        let f = Instant::now();
        store.flush().await?;
        flushes.push(f.elapsed());
    }
    report("flush after a write (fsync)", flushes);
    Ok(())
}

/// `load` while other tasks write under `FlushPolicy::EveryWrite`, so that a
/// flush (write + `fsync`) is nearly always in progress: a read must not
/// wait for it.
async fn loads_beside_durable_writers(readers: usize, writers: usize) -> Result<(), session_core::Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(SledStore::builder(dir.path().join("db")).open()?);
    let now = Timestamp::now();
    let data = Bytes::from(vec![7u8; 200]);
    let keys: Vec<_> = (0..1000).map(|_| key()).collect();
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
    }
    let keys = Arc::new(keys);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writer_handles = Vec::new();
    for w in 0..writers {
        let (store, keys, stop, data) = (Arc::clone(&store), Arc::clone(&keys), Arc::clone(&stop), data.clone());
        writer_handles.push(tokio::spawn(async move {
            let mut i = w;
            let mut writes = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = &keys[i % keys.len()];
                let current = store.load(k, now).await?.expect("a live record").version;
                let update = Update {
                    expected_version: current,
                    data: data.clone(),
                    expires_at: now + Duration::from_secs(3600),
                    owner: None,
                };
                match store.update(k, update, now).await {
                    Ok(_) | Err(session_core::Error::Conflict { .. }) => writes += 1,
                    Err(e) => return Err(e),
                }
                i += writers;
            }
            Ok::<_, session_core::Error>(writes)
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
        all.extend(h.await.expect("task")?);
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut writes = 0;
    for h in writer_handles {
        writes += h.await.expect("task")?;
    }
    report(&format!("load, {readers} readers + {writers} EveryWrite writers"), all);
    println!("  ({writes} durable writes in {elapsed:.1?})");
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), session_core::Error> {
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
