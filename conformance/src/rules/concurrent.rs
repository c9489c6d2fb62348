//! The concurrent rule: many tasks hammer a few keys at once, every
//! operation is recorded ([`Recorder`]), and each round's history must be
//! linearizable against the model ([`linearizability::check`]).
//!
//! # The workload
//!
//! Each round uses a fresh store and `tasks` tasks (8) doing `ops_per_task`
//! (200) operations each on a multi-thread runtime. The keys are few
//! (`groups` × `keys_per_group`, 3 × 3) so operations collide constantly:
//! creates over live and expired records, updates with the version the task
//! last saw and with stale ones, touches, deletes, rotates inside a group,
//! owner listing and deletion, and sweeps. Each group has its own owner name
//! and rotates stay inside a group, so a group is exactly one partition of
//! the checker (see [`linearizability`]): the search stays small and fast
//! while owner-index operations are still checked against every key they can
//! see.
//!
//! The keys of a group are minted ([`mint_id`](session_core::mint_id))
//! into the shard of the group's owner, so on a store that shards every
//! write of the workload is one a sharding store accepts and every rotate
//! stays within one shard, where it must be atomic whatever
//! [`StoreFactory::atomic_cross_shard_rotate`] says (a rotate across shards
//! has its own rule).
//!
//! # Time
//!
//! Every task reads `now` from one shared [`ManualClock`] just before each
//! operation; task 0 also advances it by 30 minutes now and then, racing the
//! others, so concurrent operations carry different `now`s and records expire
//! mid-round. The clock is anchored at the real current time and every expiry
//! is a multiple of 30 minutes after a `now` of the round (0 meaning "born
//! expired"), so server-side TTLs never fire during a round.
//!
//! A sweep may remove any record expired by its caller's clock. Were that
//! clock ahead of a concurrent caller's, the removal of a record that caller
//! still sees live would be observable, which the contract allows and the
//! model does not express. So sweeps pass a *low-water mark*: no later than
//! the `now` any other task has published for its current operation (each
//! task publishes its `now` before issuing the operation). Every operation
//! that can be linearized after the sweep therefore has a `now` at least the
//! sweep's, and for it a swept record was already expired. Other operations
//! get no such allowance: a backend that physically removes a record on an
//! ordinary operation because *its* caller's clock says it expired, while a
//! concurrent caller may still see it live, fails this rule.
//!
//! Rounds: [`ROUNDS_ENV`] (default [`DEFAULT_ROUNDS`]); the operation
//! choices of a failing round can be replayed with [`SEED_ENV`] (the
//! interleaving, of course, cannot).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use session_core::{Bytes, Clock, ManualClock, Overwrite, Record, SessionStore, StoreKey, Timestamp, Update};

use crate::checker::history::{History, Recorder};
use crate::checker::linearizability;
use crate::checker::model::{Call, ErrorKind, Op, Outcome};
use crate::harness::{Ctx, StoreFactory, fresh_key, key_for};

/// Environment variable: how many rounds the concurrent rule runs.
pub const ROUNDS_ENV: &str = "SESSIONS_LINEARIZABILITY_ROUNDS";

/// Environment variable: the seed of the operation choices of round 0
/// (round `r` uses seed + `r`); random by default, printed on failure.
pub const SEED_ENV: &str = "SESSIONS_LINEARIZABILITY_SEED";

/// Rounds per backend unless [`ROUNDS_ENV`] says otherwise: small enough that
/// a networked backend's concurrent rules take seconds, not minutes.
pub const DEFAULT_ROUNDS: u64 = 5;

/// The unit of clock advances and expiries in the workload.
const HALF_HOUR: Duration = Duration::from_secs(30 * 60);

/// The shape of one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Concurrent tasks.
    pub tasks: usize,
    /// Operations per task.
    pub ops_per_task: usize,
    /// Independent groups of keys, each with its own owner name.
    pub groups: usize,
    /// Keys per group, all in the shard of the group's owner (rotates stay
    /// inside a group).
    pub keys_per_group: usize,
    /// Task 0 advances the clock by 30 minutes before about one operation in
    /// this many.
    pub advance_every: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            tasks: 8,
            ops_per_task: 200,
            groups: 3,
            keys_per_group: 3,
            advance_every: 25,
        }
    }
}

/// How many rounds to run: [`ROUNDS_ENV`] or [`DEFAULT_ROUNDS`].
pub fn rounds() -> u64 {
    std::env::var(ROUNDS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS)
}

/// The seed of round 0: [`SEED_ENV`], or one drawn from the OS.
pub fn seed() -> u64 {
    std::env::var(SEED_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let bytes = fresh_key();
            let mut first = [0u8; 8];
            first.copy_from_slice(&bytes.as_bytes()[..8]);
            u64::from_le_bytes(first)
        })
}

/// SplitMix64: a tiny deterministic generator, so a seed replays a round's
/// operation choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn index(&mut self, n: usize) -> usize {
        // n is a small count of keys or groups: it fits in u64 and back.
        self.below(n as u64) as usize
    }
}

/// What the tasks of one round share.
struct Round<S: ?Sized> {
    store: Arc<S>,
    recorder: Recorder,
    clock: ManualClock,
    /// `low_water[t]`: the `now` task `t` published for its current
    /// operation (milliseconds); see the module docs.
    low_water: Vec<AtomicI64>,
    keys: Vec<StoreKey>,
    owners: Vec<String>,
    workload: Workload,
}

/// Runs one round of `workload` against `store` and returns its history.
/// The operation choices follow `seed`; the interleaving is the runtime's.
pub async fn record_round<S: SessionStore + ?Sized>(store: Arc<S>, workload: &Workload, seed: u64) -> History {
    let clock = ManualClock::starting_now();
    let start = clock.now().as_millis();
    let owners: Vec<String> = (0..workload.groups).map(|g| format!("owner-{g}")).collect();
    let keys = owners
        .iter()
        .flat_map(|owner| (0..workload.keys_per_group).map(|_| key_for(&*store, Some(owner))))
        .collect();
    let round = Arc::new(Round {
        store,
        recorder: Recorder::new(),
        clock,
        low_water: (0..workload.tasks).map(|_| AtomicI64::new(start)).collect(),
        keys,
        owners,
        workload: workload.clone(),
    });
    let handles: Vec<_> = (0..workload.tasks)
        .map(|t| {
            let round = Arc::clone(&round);
            let seed = seed ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
            tokio::spawn(async move { run_task(&round, t, seed).await })
        })
        .collect();
    for h in handles {
        if let Err(e) = h.await {
            panic!("a workload task panicked: {e}");
        }
    }
    match Arc::try_unwrap(round) {
        Ok(round) => round.recorder.finish(),
        Err(_) => panic!("every workload task has finished, so the round has one owner"),
    }
}

async fn run_task<S: SessionStore + ?Sized>(round: &Round<S>, task: usize, seed: u64) {
    let mut rng = Rng(seed);
    // The version this task last saw for each key, for its next update.
    let mut seen: HashMap<StoreKey, u64> = HashMap::new();
    let w = &round.workload;
    for i in 0..w.ops_per_task {
        if task == 0 && rng.below(w.advance_every) == 0 {
            round.clock.advance(HALF_HOUR);
        }
        if rng.below(4) == 0 {
            // Shake the interleaving: let another task run first.
            tokio::task::yield_now().await;
        }
        let now = round.clock.now();
        round.low_water[task].store(now.as_millis(), Ordering::SeqCst);
        let call = choose(round, task, i, now, &mut rng, &seen);
        let op = call.op.clone();
        let outcome = round.recorder.record(&*round.store, task, call).await;
        learn(&mut seen, &op, &outcome);
    }
}

/// Picks the next operation of `task`.
fn choose<S: ?Sized>(
    round: &Round<S>,
    task: usize,
    i: usize,
    now: Timestamp,
    rng: &mut Rng,
    seen: &HashMap<StoreKey, u64>,
) -> Call {
    let w = &round.workload;
    let group = rng.index(w.groups);
    let mut key = || round.keys[group * w.keys_per_group + rng.index(w.keys_per_group)];
    let (k, other) = (key(), key());
    let owner = if rng.below(2) == 0 {
        Some(round.owners[group].clone())
    } else {
        None
    };
    // 0 to 3 hours: 0 is born expired.
    let expires_at = now + HALF_HOUR * u32::try_from(rng.below(7)).unwrap_or(0);
    // Unique data, so a load tells exactly which write it sees.
    let data = Bytes::from(format!("t{task}.{i}"));
    let op = match rng.below(100) {
        0..14 => Op::Create(Record {
            key: k,
            version: 1,
            data,
            created_at: now,
            expires_at,
            owner,
        }),
        14..26 | 95..100 => Op::Load(k),
        26..44 => {
            let last = seen.get(&k).copied().unwrap_or(1);
            let expected_version = match rng.below(4) {
                0 => last + 1,
                1 => last.saturating_sub(1).max(1),
                _ => last,
            };
            Op::Update(
                k,
                Update {
                    expected_version,
                    data,
                    expires_at,
                    owner,
                },
            )
        }
        44..50 => Op::Overwrite(
            k,
            Overwrite {
                data,
                expires_at,
                owner,
            },
        ),
        50..60 => Op::Touch(k, expires_at),
        60..66 => Op::Delete(k),
        // A third of the rotates also set the owner (a login).
        66..76 => Op::Rotate(k, other, owner.filter(|_| rng.below(3) == 0)),
        76..80 => Op::WasRotated(k),
        80..88 => Op::ListByOwner(round.owners[group].clone()),
        88..91 => Op::DeleteByOwner(round.owners[group].clone()),
        _ => {
            let low_water = (0..w.tasks)
                .filter(|&t| t != task)
                .map(|t| round.low_water[t].load(Ordering::SeqCst))
                .min()
                .unwrap_or(now.as_millis());
            return Call {
                op: Op::DeleteExpired(rng.index(4)),
                now: now.min(Timestamp::from_millis(low_water)),
            };
        }
    };
    Call { op, now }
}

/// Remembers the versions an outcome reveals.
fn learn(seen: &mut HashMap<StoreKey, u64>, op: &Op, outcome: &Outcome) {
    match (op, outcome) {
        (Op::Create(r), Outcome::Done) => {
            seen.insert(r.key, 1);
        }
        (Op::Rotate(_, new, _), Outcome::Moved(_)) => {
            seen.insert(*new, 1);
        }
        (Op::Load(k), Outcome::Loaded(Some(r))) => {
            seen.insert(*k, r.version);
        }
        (Op::Update(k, _) | Op::Overwrite(k, _), Outcome::Version(v) | Outcome::Failed(ErrorKind::Conflict(v))) => {
            seen.insert(*k, *v);
        }
        _ => {}
    }
}

/// Totals over the rounds of one run, printed as one line.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Rounds checked.
    pub rounds: u64,
    /// Operations checked.
    pub ops: usize,
    /// Partitions searched.
    pub partitions: usize,
    /// The largest partition, in operations.
    pub largest_partition: usize,
    /// States the searches explored.
    pub states_explored: usize,
    /// Operations that overlapped another in time.
    pub overlapping: usize,
    /// Time spent checking (not recording).
    pub checked_in: Duration,
}

impl Summary {
    /// Adds one round's report.
    pub fn add(&mut self, report: &linearizability::Report, took: Duration) {
        self.rounds += 1;
        self.ops += report.ops;
        self.partitions += report.partitions;
        self.largest_partition = self.largest_partition.max(report.largest_partition);
        self.states_explored += report.states_explored;
        self.overlapping += report.overlapping;
        self.checked_in += took;
    }
}

/// Every operation is linearizable (see "Atomicity and round trips" in the
/// docs of [`SessionStore`]): the histories of
/// [`rounds`] rounds of the concurrent workload are each checked against the
/// model. Prints a one-line summary (operations, partitions, checker time).
pub async fn concurrent_histories_are_linearizable<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let workload = Workload::default();
    let (rounds, seed) = (rounds(), seed());
    let name = ctx.factory.name();
    let mut summary = Summary::default();
    for round in 0..rounds {
        let seed = seed.wrapping_add(round);
        let store = Arc::new(ctx.fresh_store().await);
        let history = record_round(Arc::clone(&store), &workload, seed).await;
        if let Ok(store) = Arc::try_unwrap(store) {
            ctx.dispose(store).await;
        }
        let started = Instant::now();
        match linearizability::check(&history) {
            Ok(report) => summary.add(&report, started.elapsed()),
            Err(e) => panic!(
                "{name}: round {round} of {rounds} is not linearizable ({SEED_ENV}={seed} replays its operation choices):\n{e}"
            ),
        }
    }
    eprintln!(
        "linearizability({name}): {} rounds, {} ops ({} overlapping another), {} partitions (largest {} ops, {} states explored), checked in {} ms",
        summary.rounds,
        summary.ops,
        summary.overlapping,
        summary.partitions,
        summary.largest_partition,
        summary.states_explored,
        summary.checked_in.as_millis()
    );
}
