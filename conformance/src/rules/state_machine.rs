//! Model-based test: random sequences of every operation, with clock
//! advances, run on the store and on [`Model`]; every outcome must agree.
//!
//! Operations name keys, owners and data by small indexes, so a failing case
//! shrinks (proptest drops and simplifies steps) to a short, readable
//! sequence such as `[Create { key: 0, ttl_hours: 1, owner: None }, Advance
//! { seconds: 3600 }, Touch { key: 0, ttl_hours: 2 }]`.
//!
//! Any key may pass to any owner here (updates, overwrites and rotates
//! setting an owner), so on a store that shards the two owners are drawn
//! into one shard and the keys are minted into it: every write is then one
//! a sharding store accepts, and every rotate stays within the shard.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use session_core::{Bytes, Overwrite, Record, StoreKey, Timestamp, Update};

use crate::checker::model::{Call, Model, Op, execute};
use crate::harness::{Ctx, HOUR, StoreFactory, key_for, owner_beside};

/// Cases per backend, unless the environment variable
/// `SESSIONS_PROPTEST_CASES` says otherwise.
pub const DEFAULT_CASES: u32 = 256;

const KEYS: usize = 4;
/// The owners' names, or (for the second) the first of `bob-1`, `bob-2`...
/// in the first one's shard on a store that shards.
const OWNERS: [&str; 2] = ["alice", "bob"];
const DATA: [&[u8]; 3] = [b"", b"\x01\x00", b"\x01\x01\x01a\x01\x07"];

/// One step of a generated sequence.
#[derive(Debug, Clone)]
pub enum Step {
    /// Create with a fresh record expiring `ttl_hours` from now (0: born
    /// expired).
    Create {
        /// Key index.
        key: usize,
        /// Expiry, in hours from now.
        ttl_hours: u8,
        /// Owner index, if any.
        owner: Option<usize>,
    },
    /// Load.
    Load {
        /// Key index.
        key: usize,
    },
    /// Update expecting the model's current version (`stale: false`) or a
    /// wrong one.
    Update {
        /// Key index.
        key: usize,
        /// Whether to expect a wrong version.
        stale: bool,
        /// Data index.
        data: usize,
        /// New expiry, in hours from now.
        ttl_hours: u8,
        /// New owner index, if any.
        owner: Option<usize>,
    },
    /// Blind overwrite.
    Overwrite {
        /// Key index.
        key: usize,
        /// Data index.
        data: usize,
        /// New expiry, in hours from now.
        ttl_hours: u8,
        /// New owner index, if any.
        owner: Option<usize>,
    },
    /// Touch to `ttl_hours` from now.
    Touch {
        /// Key index.
        key: usize,
        /// Expiry, in hours from now.
        ttl_hours: u8,
    },
    /// Rotate `from` onto `to`, setting the owner if given.
    Rotate {
        /// Old key index.
        from: usize,
        /// New key index.
        to: usize,
        /// Owner index to set, if any.
        owner: Option<usize>,
    },
    /// Ask whether a key holds a rotation mark.
    WasRotated {
        /// Key index.
        key: usize,
    },
    /// Delete.
    Delete {
        /// Key index.
        key: usize,
    },
    /// List an owner's sessions.
    ListByOwner {
        /// Owner index.
        owner: usize,
    },
    /// Delete an owner's sessions.
    DeleteByOwner {
        /// Owner index.
        owner: usize,
    },
    /// Sweep.
    DeleteExpired {
        /// The limit.
        limit: usize,
    },
    /// Move the clock forward.
    Advance {
        /// Seconds: 30 and 60 reach the end of a rotation mark, multiples
        /// of 30 minutes the expiries exactly.
        seconds: u32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0..KEYS;
    let owner = proptest::option::of(0..OWNERS.len());
    let ttl = 0u8..4;
    prop_oneof![
        3 => (key.clone(), ttl.clone(), owner.clone()).prop_map(|(key, ttl_hours, owner)| Step::Create { key, ttl_hours, owner }),
        2 => key.clone().prop_map(|key| Step::Load { key }),
        3 => (key.clone(), any::<bool>(), 0..DATA.len(), ttl.clone(), owner.clone()).prop_map(|(key, stale, data, ttl_hours, owner)| Step::Update { key, stale, data, ttl_hours, owner }),
        1 => (key.clone(), 0..DATA.len(), ttl.clone(), owner.clone()).prop_map(|(key, data, ttl_hours, owner)| Step::Overwrite { key, data, ttl_hours, owner }),
        2 => (key.clone(), ttl).prop_map(|(key, ttl_hours)| Step::Touch { key, ttl_hours }),
        2 => (key.clone(), key.clone(), owner).prop_map(|(from, to, owner)| Step::Rotate { from, to, owner }),
        1 => key.clone().prop_map(|key| Step::WasRotated { key }),
        1 => key.prop_map(|key| Step::Delete { key }),
        1 => (0..OWNERS.len()).prop_map(|owner| Step::ListByOwner { owner }),
        1 => (0..OWNERS.len()).prop_map(|owner| Step::DeleteByOwner { owner }),
        1 => (0usize..4).prop_map(|limit| Step::DeleteExpired { limit }),
        2 => prop_oneof![Just(0u32), Just(30), Just(60), Just(1800), Just(3600), Just(5400), Just(7200)].prop_map(|seconds| Step::Advance { seconds }),
    ]
}

/// Turns a step into a concrete call, given the model (for the current
/// version) and the case's keys; `None` for a clock advance.
fn call(step: &Step, model: &Model, keys: &[StoreKey; KEYS], owners: &[String; 2], now: Timestamp) -> Option<Call> {
    let owner = |o: Option<usize>| o.map(|i| owners[i].clone());
    let at = |h: u8| now + u32::from(h) * HOUR;
    let op = match *step {
        Step::Create {
            key,
            ttl_hours,
            owner: o,
        } => Op::Create(Record {
            key: keys[key],
            version: 1,
            data: Bytes::from_static(DATA[1]),
            created_at: now,
            expires_at: at(ttl_hours),
            owner: owner(o),
        }),
        Step::Load { key } => Op::Load(keys[key]),
        Step::Update {
            key,
            stale,
            data,
            ttl_hours,
            owner: o,
        } => {
            let current = model.live(&keys[key], now).map_or(1, |r| r.version);
            Op::Update(
                keys[key],
                Update {
                    expected_version: if stale { current + 1 } else { current },
                    data: Bytes::from_static(DATA[data]),
                    expires_at: at(ttl_hours),
                    owner: owner(o),
                },
            )
        }
        Step::Overwrite {
            key,
            data,
            ttl_hours,
            owner: o,
        } => Op::Overwrite(
            keys[key],
            Overwrite {
                data: Bytes::from_static(DATA[data]),
                expires_at: at(ttl_hours),
                owner: owner(o),
            },
        ),
        Step::Touch { key, ttl_hours } => Op::Touch(keys[key], at(ttl_hours)),
        Step::Rotate { from, to, owner: o } => Op::Rotate(keys[from], keys[to], owner(o)),
        Step::WasRotated { key } => Op::WasRotated(keys[key]),
        Step::Delete { key } => Op::Delete(keys[key]),
        Step::ListByOwner { owner } => Op::ListByOwner(owners[owner].clone()),
        Step::DeleteByOwner { owner } => Op::DeleteByOwner(owners[owner].clone()),
        Step::DeleteExpired { limit } => Op::DeleteExpired(limit),
        Step::Advance { .. } => return None,
    };
    Some(Call { op, now })
}

async fn run_case<F: StoreFactory>(ctx: &Ctx<F>, steps: &[Step]) -> Result<(), TestCaseError> {
    let store = ctx.fresh_store().await;
    let owners = [OWNERS[0].to_owned(), owner_beside(&store, OWNERS[0], OWNERS[1])];
    let keys: [StoreKey; KEYS] = std::array::from_fn(|_| key_for(&store, Some(&owners[0])));
    let mut model = Model::new();
    let mut now = ctx.now();
    let mut log = String::new();
    let mut failure = None;
    for (i, step) in steps.iter().enumerate() {
        if let Step::Advance { seconds } = step {
            now = now + Duration::from_secs(u64::from(*seconds));
            let _ = writeln!(log, "  {i:>3}: {step:?}");
            continue;
        }
        let Some(call) = call(step, &model, &keys, &owners, now) else {
            continue;
        };
        let expected = model.apply(&call);
        let actual = execute(&store, &call).await;
        let _ = writeln!(log, "  {i:>3}: {step:?} -> {}", short(&actual));
        if !Model::accepts(&call.op, &expected, &actual) {
            failure = Some(format!(
                "step {i} ({step:?}): the store returned {actual:?}\n  but the contract says {expected:?}"
            ));
            break;
        }
    }
    ctx.dispose(store).await;
    match failure {
        None => Ok(()),
        Some(f) => Err(TestCaseError::fail(format!(
            "{}: {f}\nsequence (keys and owners by index):\n{log}",
            ctx.factory.name()
        ))),
    }
}

fn short(o: &crate::checker::model::Outcome) -> String {
    use crate::checker::model::Outcome::*;
    match o {
        Loaded(Some(r)) => format!("Loaded(v{} owner={:?})", r.version, r.owner),
        Moved(r) => format!("Moved(v{} owner={:?})", r.version, r.owner),
        other => format!("{other:?}"),
    }
}

/// How many cases to run: `SESSIONS_PROPTEST_CASES` or [`DEFAULT_CASES`].
pub fn cases() -> u32 {
    std::env::var("SESSIONS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// The state-machine rule: random sequences of up to 40 steps, every outcome
/// compared with the model.
pub async fn the_store_behaves_like_the_model_of_the_contract<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(RunnerConfig {
            cases: cases(),
            failure_persistence: None,
            ..RunnerConfig::default()
        });
        runner
            .run(&proptest::collection::vec(step(), 1..40), |steps| {
                handle.block_on(run_case(&ctx, &steps))
            })
            .map_err(|e| e.to_string())
    })
    .await
    .expect("the proptest runner does not panic");
    if let Err(e) = result {
        panic!("the store diverged from the model of the contract:\n{e}");
    }
}
