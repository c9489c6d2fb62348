//! The workloads, written once for every contender.
//!
//! A [`Workload`] is an operation (or the web-shaped mix), a payload size, a
//! store size and a concurrency. An [`Arena`] is one contender with its
//! preloaded sessions; [`Arena::run`] performs `iters` operations of a
//! workload and returns the time they took, excluding any setup (fresh
//! sessions for `delete` and `rotate`) and cleanup (removing what `create`
//! and `rotate` added, so the store keeps its size). Criterion's
//! `iter_custom` and the quick `compare` runner both call it.
//!
//! At concurrency *c*, `iters` operations are split over *c* tokio tasks and
//! the wall time of all of them is returned: time per operation is then the
//! inverse of throughput, and the mean latency is *c* times it (Little's
//! law).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use session_core::StoreKey;

use crate::keys::{KeyPool, Rng, key, payload};
use crate::{BenchError, Contender, Op};

/// Payload sizes: 256 B, 4 KiB, 64 KiB.
pub const PAYLOADS: [usize; 3] = [256, 4 * 1024, 64 * 1024];

/// The payload of the preloaded sessions and of the mix.
pub const BASE_PAYLOAD: usize = 256;

/// Store sizes: 10,000 and (opt-in) 1,000,000 sessions.
pub const STORE_SIZES: [usize; 2] = [10_000, 1_000_000];

/// Concurrencies of the mix.
pub const CONCURRENCIES: [usize; 3] = [1, 8, 32];

/// With payloads larger than [`BASE_PAYLOAD`], reads and writes go to this
/// many preloaded sessions (rewritten with the larger payload first), not
/// to all of them: rewriting a million sessions with 64 KiB would take
/// 64 GB.
pub const HOT_SESSIONS: usize = 2_000;

/// The mix: 90% load, 8% touch, 2% update (percent thresholds).
const MIX_LOAD: usize = 90;
const MIX_TOUCH: usize = 98;

/// What a workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One operation, over and over, on random preloaded (or fresh) sessions.
    Single(Op),
    /// The web-shaped mix: 90% load, 8% touch, 2% update.
    Mix,
}

impl Kind {
    /// The name in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Single(op) => op.name(),
            Kind::Mix => "mix",
        }
    }

    /// Whether a contender that supports these operations can run it.
    pub fn supported_by(self, contender: &dyn Contender) -> bool {
        match self {
            Kind::Single(op) => contender.supports(op),
            Kind::Mix => [Op::Load, Op::Touch, Op::Update]
                .into_iter()
                .all(|op| contender.supports(op)),
        }
    }
}

/// One workload. Its [`Display`](fmt::Display) form is the criterion group
/// id: `load/256B/10k/c1`, `mix/256B/1M/c32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    /// What it does.
    pub kind: Kind,
    /// Bytes of session data.
    pub payload: usize,
    /// Sessions in the store.
    pub store_size: usize,
    /// Tasks issuing operations at once.
    pub concurrency: usize,
}

fn size_label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n.is_multiple_of(1_000_000) => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n.is_multiple_of(1_000) => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn bytes_label(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{}KiB", n / 1024)
    } else {
        format!("{n}B")
    }
}

fn parse_size(text: &str) -> Option<usize> {
    let (digits, factor) = match text.as_bytes().last()? {
        b'M' => (&text[..text.len() - 1], 1_000_000),
        b'k' => (&text[..text.len() - 1], 1_000),
        _ => (text, 1),
    };
    digits.parse::<usize>().ok().map(|n| n * factor)
}

fn parse_bytes(text: &str) -> Option<usize> {
    if let Some(kib) = text.strip_suffix("KiB") {
        return kib.parse::<usize>().ok().map(|n| n * 1024);
    }
    text.strip_suffix('B')?.parse().ok()
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/c{}",
            self.kind.name(),
            bytes_label(self.payload),
            size_label(self.store_size),
            self.concurrency
        )
    }
}

impl Workload {
    /// Parses the [`Display`](fmt::Display) form back.
    pub fn parse(text: &str) -> Option<Workload> {
        let mut parts = text.split('/');
        let kind = match parts.next()? {
            "mix" => Kind::Mix,
            op => Kind::Single(Op::from_name(op)?),
        };
        let payload = parse_bytes(parts.next()?)?;
        let store_size = parse_size(parts.next()?)?;
        let concurrency = parts.next()?.strip_prefix('c')?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Workload {
            kind,
            payload,
            store_size,
            concurrency,
        })
    }

    /// The label of its payload ("256B", "4KiB").
    pub fn payload_label(&self) -> String {
        bytes_label(self.payload)
    }

    /// The label of its store size ("10k", "1M").
    pub fn store_size_label(&self) -> String {
        size_label(self.store_size)
    }
}

/// The full matrix for one store size: every operation at every payload at
/// concurrency 1, every operation at 256 B and concurrency 32, and the mix
/// at every concurrency. At the large store size, 256 B only.
pub fn full_matrix(store_size: usize) -> Vec<Workload> {
    let payloads: &[usize] = if store_size > STORE_SIZES[0] {
        &[BASE_PAYLOAD]
    } else {
        &PAYLOADS
    };
    let mut out = Vec::new();
    for &payload in payloads {
        for op in Op::ALL {
            out.push(Workload {
                kind: Kind::Single(op),
                payload,
                store_size,
                concurrency: 1,
            });
        }
    }
    out.extend(
        quick_matrix(store_size)
            .into_iter()
            .filter(|w| w.concurrency > 1 || w.kind == Kind::Mix),
    );
    out
}

/// The quick matrix for one store size: 256 B only; every operation at
/// concurrency 1 and 32; the mix at 1, 8 and 32.
pub fn quick_matrix(store_size: usize) -> Vec<Workload> {
    let w = |kind, concurrency| Workload {
        kind,
        payload: BASE_PAYLOAD,
        store_size,
        concurrency,
    };
    let mut out: Vec<_> = Op::ALL.into_iter().map(|op| w(Kind::Single(op), 1)).collect();
    out.extend(Op::ALL.into_iter().map(|op| w(Kind::Single(op), 32)));
    out.extend(CONCURRENCIES.into_iter().map(|c| w(Kind::Mix, c)));
    out
}

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

    /// Performs `iters` operations of `workload` and returns how long they
    /// took, setup and cleanup excluded.
    pub async fn run(self: &Arc<Self>, workload: &Workload, iters: u64) -> Duration {
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
                let targets = (workload.kind == Kind::Single(Op::Rotate)).then(|| self.fresh_keys(iters));
                (Some(fresh), targets)
            }
            _ => (None, None),
        };
        let c = workload.concurrency.max(1) as u64;
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
