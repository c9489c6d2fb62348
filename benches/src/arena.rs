//! An [`Arena`] is one contender with its preloaded sessions; [`Arena::run`]
//! performs `iters` operations of a workload and returns the time they
//! took, excluding any setup (fresh sessions for `delete` and `rotate`) and
//! cleanup (removing what `create` and `rotate` added, so the store keeps
//! its size). Criterion's `iter_custom` and the quick `compare` runner both
//! call it.
//!
//! At concurrency *c*, `iters` operations are split over *c* tokio tasks and
//! the wall time of all of them is returned: time per operation is then the
//! inverse of throughput, and the mean latency is *c* times it (Little's
//! law).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use session_core::StoreKey;

use crate::keys::{KeyPool, Rng, key, payload};
use crate::report::server_cpu::ServerWatch;
use crate::workload::{BASE_PAYLOAD, HOT_SESSIONS, Kind, MIX_LOAD, MIX_TOUCH, Workload};
use crate::{BenchError, Contender, Op};

/// How many keys [`Arena::keys_beside`] draws at most before it gives the
/// old keys still waiting a key anywhere.
const MAX_DRAWS: u64 = 1 << 24;

/// One contender with its preloaded sessions.
pub struct Arena {
    contender: Arc<dyn Contender>,
    pool: KeyPool,
    /// How many of the pool's sessions the current payload lives in.
    hot: Mutex<(usize, usize)>,
    /// Key streams for fresh sessions; each run takes new ones.
    next_stream: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Arena {
    /// Preloads `store_size` sessions of [`BASE_PAYLOAD`] bytes into
    /// `contender` (not timed).
    pub async fn preload(contender: Arc<dyn Contender>, store_size: usize) -> Result<Arc<Arena>, BenchError> {
        let pool = KeyPool::new(store_size);
        contender.preload(pool.keys(), &payload(BASE_PAYLOAD)).await?;
        Ok(Arc::new(Arena {
            contender,
            pool,
            hot: Mutex::new((store_size, BASE_PAYLOAD)),
            next_stream: AtomicU64::new(1_000),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }))
    }

    /// The contender.
    pub fn contender(&self) -> &Arc<dyn Contender> {
        &self.contender
    }

    /// Errors so far, and the first one's message.
    pub fn errors(&self) -> (u64, Option<String>) {
        (self.errors.load(Ordering::Relaxed), self.first_error.lock().clone())
    }

    fn record_error(&self, e: BenchError) {
        if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.first_error.lock() = Some(e.0);
        }
    }

    /// Makes the sessions that `workload` reads hold its payload: all of
    /// them for the base payload, [`HOT_SESSIONS`] of them otherwise (not
    /// timed).
    pub async fn prepare(&self, workload: &Workload) {
        let current = *self.hot.lock();
        let wanted = if workload.payload == BASE_PAYLOAD {
            (self.pool.len(), BASE_PAYLOAD)
        } else {
            (self.pool.len().min(HOT_SESSIONS), workload.payload)
        };
        if current.1 == wanted.1 {
            return;
        }
        // Rewrite the sessions that held another payload (the hot ones).
        let data = payload(wanted.1);
        let rewrite = current.0.min(wanted.0);
        for i in 0..rewrite {
            match self
                .contender
                .update(self.pool.key(i), self.pool.version(i), &data)
                .await
            {
                Ok(v) => self.pool.set_version(i, v),
                Err(e) => self.record_error(e),
            }
        }
        *self.hot.lock() = wanted;
    }

    fn hot(&self) -> usize {
        self.hot.lock().0.max(1)
    }

    fn fresh_keys(&self, n: u64) -> Arc<[StoreKey]> {
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| key(stream, i)).collect()
    }

    /// A fresh key for each of `olds`, in the same shard of the contender as
    /// its old key (see [`Contender::shard_of_key`]): drawn from a new key
    /// stream, each draw going to the first old key of its shard still
    /// waiting, until none waits (`n` keys over `s` shards take about
    /// `n + s·ln s` draws, not `n·s`). A contender without shards gets
    /// [`Arena::fresh_keys`]; one whose shard of an old key is never drawn,
    /// a key anywhere after 2^24 draws (its rotates may then fail, and
    /// show as errors).
    fn keys_beside(&self, olds: &[StoreKey]) -> Arc<[StoreKey]> {
        let shards: Option<Vec<u32>> = olds.iter().map(|k| self.contender.shard_of_key(k)).collect();
        let Some(shards) = shards else {
            return self.fresh_keys(olds.len() as u64);
        };
        let mut waiting: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, shard) in shards.iter().enumerate().rev() {
            waiting.entry(*shard).or_default().push(i);
        }
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let mut out: Vec<Option<StoreKey>> = vec![None; olds.len()];
        let mut left = olds.len();
        let mut draw = 0u64;
        while left > 0 && draw < MAX_DRAWS {
            let candidate = key(stream, draw);
            draw += 1;
            if let Some(i) = self
                .contender
                .shard_of_key(&candidate)
                .and_then(|s| waiting.get_mut(&s))
                .and_then(Vec::pop)
            {
                out[i] = Some(candidate);
                left -= 1;
            }
        }
        out.into_iter()
            .map(|k| {
                k.unwrap_or_else(|| {
                    draw += 1;
                    key(stream, draw)
                })
            })
            .collect()
    }

    /// Performs `iters` operations of `workload` and returns how long they
    /// took, setup and cleanup excluded.
    pub async fn run(self: &Arc<Self>, workload: &Workload, iters: u64) -> Duration {
        self.run_watched(workload, iters, None).await
    }

    /// [`run`](Self::run), with `watch` (if any) open over the timed loop
    /// alone: the servers' work on setup and cleanup is not counted.
    pub async fn run_watched(
        self: &Arc<Self>,
        workload: &Workload,
        iters: u64,
        mut watch: Option<&mut ServerWatch<'_>>,
    ) -> Duration {
        let data = payload(workload.payload);
        // Fresh sessions: created by the timed loop (create), or created
        // before it (delete, rotate) by the untimed preload.
        let (fresh, targets) = match workload.kind {
            Kind::Single(Op::Create) => (Some(self.fresh_keys(iters)), None),
            Kind::Single(Op::Delete) | Kind::Single(Op::Rotate) => {
                let fresh = self.fresh_keys(iters);
                if let Err(e) = self.contender.preload(&fresh, &data).await {
                    self.record_error(e);
                }
                let targets = (workload.kind == Kind::Single(Op::Rotate)).then(|| self.keys_beside(&fresh));
                (Some(fresh), targets)
            }
            _ => (None, None),
        };
        let c = workload.concurrency.max(1) as u64;
        if let Some(watch) = watch.as_deref_mut() {
            watch.open().await;
        }
        let elapsed = if c == 1 {
            let start = Instant::now();
            self.chunk(workload.kind, 0, iters, fresh.as_deref(), targets.as_deref(), &data, 0)
                .await;
            start.elapsed()
        } else {
            let start = Instant::now();
            let tasks: Vec<_> = (0..c)
                .map(|t| {
                    let (from, to) = (iters * t / c, iters * (t + 1) / c);
                    let (arena, fresh, targets, data) =
                        (Arc::clone(self), fresh.clone(), targets.clone(), data.clone());
                    let kind = workload.kind;
                    tokio::spawn(async move {
                        arena
                            .chunk(kind, from, to, fresh.as_deref(), targets.as_deref(), &data, t)
                            .await
                    })
                })
                .collect();
            for task in tasks {
                if let Err(e) = task.await {
                    self.record_error(BenchError::new("workload task", e));
                }
            }
            start.elapsed()
        };
        if let Some(watch) = watch {
            watch.close().await;
        }
        // Keep the store at its size: remove what this run added.
        let added = match workload.kind {
            Kind::Single(Op::Create) => fresh,
            Kind::Single(Op::Rotate) => targets,
            _ => None,
        };
        for key in added.iter().flat_map(|keys| keys.iter()) {
            if let Err(e) = self.contender.delete(key).await {
                self.record_error(e);
            }
        }
        elapsed
    }

    /// Operations `from..to` of one task.
    #[allow(clippy::too_many_arguments)]
    async fn chunk(
        &self,
        kind: Kind,
        from: u64,
        to: u64,
        fresh: Option<&[StoreKey]>,
        targets: Option<&[StoreKey]>,
        data: &Bytes,
        task: u64,
    ) {
        let mut rng = Rng::new(self.next_stream.load(Ordering::Relaxed) ^ (task << 32) ^ from);
        let hot = self.hot();
        let c = &self.contender;
        for j in from..to {
            let j = j as usize;
            let result = match kind {
                Kind::Single(Op::Load) => c.load(self.pool.key(rng.below(hot))).await.map(drop),
                Kind::Single(Op::Touch) => c.touch(self.pool.key(rng.below(hot)), data).await,
                Kind::Single(Op::Update) => self.update(rng.below(hot), data).await,
                Kind::Single(Op::Create) => match fresh {
                    Some(keys) => c.create(&keys[j], data).await,
                    None => Ok(()),
                },
                Kind::Single(Op::Delete) => match fresh {
                    Some(keys) => c.delete(&keys[j]).await,
                    None => Ok(()),
                },
                Kind::Single(Op::Rotate) => match (fresh, targets) {
                    (Some(old), Some(new)) => c.rotate(&old[j], &new[j], data).await,
                    _ => Ok(()),
                },
                Kind::Mix => {
                    let i = rng.below(hot);
                    match rng.below(100) {
                        r if r < MIX_LOAD => c.load(self.pool.key(i)).await.map(drop),
                        r if r < MIX_TOUCH => c.touch(self.pool.key(i), data).await,
                        _ => self.update(i, data).await,
                    }
                }
            };
            if let Err(e) = result {
                self.record_error(e);
            }
        }
    }

    async fn update(&self, i: usize, data: &Bytes) -> Result<(), BenchError> {
        let version = self
            .contender
            .update(self.pool.key(i), self.pool.version(i), data)
            .await?;
        self.pool.set_version(i, version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::{Backend, ContenderId, Role};

    /// A contender that only knows its shards: the first byte of a key, mod 4.
    struct FourShards(ContenderId);

    #[async_trait]
    impl Contender for FourShards {
        fn id(&self) -> &ContenderId {
            &self.0
        }

        fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
            Some(u32::from(key.as_bytes()[0] % 4))
        }

        async fn preload(&self, _: &[StoreKey], _: &Bytes) -> Result<(), BenchError> {
            Ok(())
        }

        async fn create(&self, _: &StoreKey, _: &Bytes) -> Result<(), BenchError> {
            Ok(())
        }

        async fn load(&self, _: &StoreKey) -> Result<bool, BenchError> {
            Ok(true)
        }

        async fn update(&self, _: &StoreKey, expected_version: u64, _: &Bytes) -> Result<u64, BenchError> {
            Ok(expected_version + 1)
        }

        async fn touch(&self, _: &StoreKey, _: &Bytes) -> Result<(), BenchError> {
            Ok(())
        }

        async fn rotate(&self, _: &StoreKey, _: &StoreKey, _: &Bytes) -> Result<(), BenchError> {
            Ok(())
        }

        async fn delete(&self, _: &StoreKey) -> Result<(), BenchError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_rotates_new_key_is_drawn_into_the_old_keys_shard() {
        let contender = Arc::new(FourShards(ContenderId {
            backend: Backend::Redis,
            role: Role::Raw,
        }));
        let arena = Arena::preload(contender.clone(), 10).await.expect("nothing to fail");
        let olds = arena.fresh_keys(1_000);
        let news = arena.keys_beside(&olds);
        assert_eq!(news.len(), olds.len());
        for (old, new) in olds.iter().zip(news.iter()) {
            assert_eq!(contender.shard_of_key(old), contender.shard_of_key(new));
        }
        let mut distinct: Vec<_> = olds.iter().chain(news.iter()).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 2_000, "every key is new");
    }
}
