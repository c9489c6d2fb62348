//! Race tests named after the lesson each keeps (the atomicity rules of
//! [`SessionStore`] and of [`SessionManager`]'s saves and rotations): two
//! or more tasks released together by a barrier on a multi-thread runtime,
//! many times over, and the outcome must be one the contract allows in
//! *every* interleaving. They complement the linearizability rule
//! ([`concurrent`](crate::rules::concurrent)) with exact, readable assertions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use session_core::{Bytes, Config, Error, Record, SessionManager, SessionStore, StoreKey, Timestamp, Update};
use tokio::sync::Barrier;

use super::{must_load, owned};
use crate::harness::{Ctx, HOUR, StoreFactory};

/// How many times each race is run.
pub const RACES: usize = 50;

fn update(expected_version: u64, data: &'static [u8], expires_at: Timestamp) -> Update {
    Update {
        expected_version,
        data: Bytes::from_static(data),
        expires_at,
        owner: None,
    }
}

/// Runs `a` and `b` at once: each on its own task, released by one barrier.
async fn race<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: Future<Output = RA> + Send + 'static,
    B: Future<Output = RB> + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let (ba, bb) = (Arc::clone(&barrier), barrier);
    let ta = tokio::spawn(async move {
        ba.wait().await;
        a.await
    });
    let tb = tokio::spawn(async move {
        bb.wait().await;
        b.await
    });
    match (ta.await, tb.await) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        (Err(e), _) | (_, Err(e)) => panic!("a racing task panicked: {e}"),
    }
}

async fn create_live<F: StoreFactory>(ctx: &Ctx<F>) -> StoreKey {
    let r = ctx.record(2 * HOUR);
    if let Err(e) = ctx.store.create(r.clone(), ctx.now()).await {
        panic!("create of a fresh key failed: {e}");
    }
    r.key
}

/// Asserts that `key` stays absent for every operation: nothing resurrected it.
async fn assert_gone<S: SessionStore + ?Sized>(store: &S, key: &StoreKey, now: Timestamp, lesson: &str) {
    assert!(
        matches!(store.load(key, now).await, Ok(None)),
        "{lesson}: the session is back after the race"
    );
    assert!(
        matches!(store.touch(key, now + 3 * HOUR, now).await, Ok(false)),
        "{lesson}: touch found the session after the race"
    );
    assert!(
        matches!(
            store.update(key, update(1, b"z", now + HOUR), now).await,
            Err(Error::NotFound)
        ),
        "{lesson}: update found the session after the race"
    );
}

/// An `update` racing a `delete` either lands first (and is then deleted) or
/// finds nothing; the record never outlives the delete.
pub async fn an_update_racing_a_delete_never_resurrects<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let lesson = "an update racing a delete never resurrects";
    for _ in 0..RACES {
        let key = create_live(&ctx).await;
        let now = ctx.now();
        let (s1, s2) = (Arc::clone(&ctx.store), Arc::clone(&ctx.store));
        let (updated, deleted) = race(
            async move { s1.update(&key, update(1, b"racing", now + 3 * HOUR), now).await },
            async move { s2.delete(&key, now).await },
        )
        .await;
        assert!(
            matches!(updated, Ok(2) | Err(Error::NotFound)),
            "{lesson}: update gave {updated:?}"
        );
        assert!(
            matches!(deleted, Ok(true)),
            "{lesson}: the record was live in either order, delete gave {deleted:?}"
        );
        assert_gone(&*ctx.store, &key, now, lesson).await;
    }
}

/// A `touch` racing a `delete` either renews first (and is then deleted) or
/// returns `false`; it never brings the record back.
pub async fn a_touch_racing_a_delete_never_resurrects<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let lesson = "a touch racing a delete never resurrects";
    for _ in 0..RACES {
        let key = create_live(&ctx).await;
        let now = ctx.now();
        let (s1, s2) = (Arc::clone(&ctx.store), Arc::clone(&ctx.store));
        let (touched, deleted) = race(async move { s1.touch(&key, now + 5 * HOUR, now).await }, async move {
            s2.delete(&key, now).await
        })
        .await;
        assert!(touched.is_ok(), "{lesson}: touch gave {touched:?}");
        assert!(
            matches!(deleted, Ok(true)),
            "{lesson}: the record was live in either order, delete gave {deleted:?}"
        );
        assert_gone(&*ctx.store, &key, now, lesson).await;
    }
}

/// Two writers that both loaded version 1: exactly one update succeeds
/// (version 2, its data stored), the other gets `Conflict { current: 2 }`.
pub async fn two_updates_of_the_same_version_exactly_one_wins<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    for _ in 0..RACES {
        let key = create_live(&ctx).await;
        let now = ctx.now();
        let (s1, s2) = (Arc::clone(&ctx.store), Arc::clone(&ctx.store));
        let (a, b) = race(
            async move { s1.update(&key, update(1, b"first", now + 3 * HOUR), now).await },
            async move { s2.update(&key, update(1, b"second", now + 3 * HOUR), now).await },
        )
        .await;
        let winner: &[u8] = match (&a, &b) {
            (Ok(2), Err(Error::Conflict { current: 2 })) => b"first",
            (Err(Error::Conflict { current: 2 }), Ok(2)) => b"second",
            _ => panic!(
                "two updates of version 1: expected exactly one Ok(2) and one Conflict {{ current: 2 }}, got {a:?} and {b:?}"
            ),
        };
        match ctx.store.load(&key, now).await {
            Ok(Some(r)) => assert_eq!(
                (r.version, &r.data[..]),
                (2, winner),
                "the winner's write is the one stored"
            ),
            other => panic!("the record must still be live, got {other:?}"),
        }
    }
}

/// `rotate` racing an `update` of the old key: either the update lands
/// first and the new session carries its data, or it fails with `NotFound`
/// and the new session carries the old data. The old key is gone either way.
///
/// The new key is any key, so on a store that shards the rotate is mostly
/// across shards; a two-step one (see
/// [`StoreFactory::atomic_cross_shard_rotate`]) gets no allowance here: the
/// update lands before the seal, or finds the old key sealed.
pub async fn rotate_racing_update_lands_in_the_new_session_or_fails_with_not_found<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    for _ in 0..RACES {
        let old = create_live(&ctx).await;
        let new = ctx.key();
        let now = ctx.now();
        let (s1, s2) = (Arc::clone(&ctx.store), Arc::clone(&ctx.store));
        let (updated, rotated) = race(
            async move { s1.update(&old, update(1, b"racing", now + 3 * HOUR), now).await },
            async move { s2.rotate(&old, &new, None, now).await },
        )
        .await;
        let moved = match rotated {
            Ok(moved) => moved,
            Err(e) => panic!("the old session was live in either order, rotate gave {e:?}"),
        };
        let expected: &[u8] = match updated {
            Ok(2) => b"racing",
            Err(Error::NotFound) => b"\x01\x00",
            other => panic!("an update racing a rotate must land or give NotFound, got {other:?}"),
        };
        match ctx.store.load(&new, now).await {
            Ok(Some(r)) => {
                assert_eq!(
                    (r.version, &r.data[..]),
                    (1, expected),
                    "the new session holds the data of whichever came first"
                );
                assert_eq!(moved, r, "rotate handed back another record than it stored");
            }
            other => panic!("the rotated session must be live, got {other:?}"),
        }
        assert_gone(&*ctx.store, &old, now, "rotate racing update").await;
    }
}

/// Tasks incrementing one counter through the manager.
const COUNTER_TASKS: u64 = 32;
/// Increments per task.
const INCREMENTS_PER_TASK: u64 = 4;

/// `SessionManager::update_with` from 32 tasks, each incrementing one
/// counter 4 times: no increment is lost, and every save is one version.
///
/// `max_update_attempts` is the total number of increments (128): an attempt
/// fails with `Conflict` only if the version moved since its load, that is,
/// if another increment landed in between, and those are 127, so no task
/// can run out of attempts however the scheduler treats it.
pub async fn update_with_from_32_tasks_loses_no_increment<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let total = COUNTER_TASKS * INCREMENTS_PER_TASK;
    let config = Config {
        idle_timeout: 2 * HOUR,
        absolute_timeout: 5 * HOUR,
        renewal_threshold: HOUR,
        max_update_attempts: u32::try_from(total).expect("128 fits in u32"),
        ..Config::default()
    };
    let manager = SessionManager::with_clock(Arc::clone(&ctx.store), config, ctx.clock.clone()).expect("valid config");
    let session = manager.create(None).await.expect("create");
    let barrier = Arc::new(Barrier::new(COUNTER_TASKS as usize));
    let handles: Vec<_> = (0..COUNTER_TASKS)
        .map(|_| {
            let (manager, id, barrier) = (manager.clone(), session.id().clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..INCREMENTS_PER_TASK {
                    let result = manager
                        .update_with(&id, |data| {
                            let n = data.get::<u64>("n")?.unwrap_or(0);
                            data.insert("n", &(n + 1))
                        })
                        .await;
                    if let Err(e) = result {
                        panic!("update_with gave up: {e}");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        if let Err(e) = h.await {
            panic!("an incrementing task failed: {e}");
        }
    }
    let done = manager.load(session.id()).await.expect("load").expect("live");
    assert_eq!(
        done.data().get::<u64>("n").expect("decode"),
        Some(total),
        "an increment was lost"
    );
    assert_eq!(done.version(), 1 + total, "every increment is exactly one version");
}

/// A login (`SessionManager::rotate_to_owner`) racing another request's
/// increment of the same session: whichever lands first, no write is lost.
/// Either the increment lands before the rotation, and the rotated session
/// (and the login request's copy) carries it, or it finds the old id gone
/// and fails with `NotFound`; the login request's own later change is kept
/// in both cases.
pub async fn a_login_racing_an_increment_loses_neither_write<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let config = Config {
        idle_timeout: 2 * HOUR,
        absolute_timeout: 5 * HOUR,
        renewal_threshold: HOUR,
        ..Config::default()
    };
    let manager = SessionManager::with_clock(Arc::clone(&ctx.store), config, ctx.clock.clone()).expect("valid config");
    for _ in 0..RACES {
        let session = manager.create(None).await.expect("create");
        let mut login_copy = manager.load(session.id()).await.expect("load").expect("live");
        let (m1, m2, id) = (manager.clone(), manager.clone(), session.id().clone());
        let (incremented, logged_in) = race(
            async move {
                m1.update_with(&id, |d| {
                    let n = d.get::<u64>("n")?.unwrap_or(0);
                    d.insert("n", &(n + 1))
                })
                .await
            },
            async move {
                let result = m2.rotate_to_owner(&mut login_copy, "yara").await;
                (result, login_copy)
            },
        )
        .await;
        let (result, mut login_copy) = logged_in;
        if let Err(e) = result {
            panic!("the login must succeed in either order, got {e}");
        }
        let counter_landed = match incremented {
            Ok(()) => true,
            Err(Error::NotFound) => false,
            Err(e) => panic!("an increment racing a login must land or give NotFound, got {e}"),
        };
        login_copy.data_mut().insert("logged_in", &true).expect("encode");
        manager
            .save(&mut login_copy)
            .await
            .expect("the login request saves its own change");
        let stored = manager.load(login_copy.id()).await.expect("load").expect("live");
        let n = stored.data().get::<u64>("n").expect("decode");
        assert_eq!(
            n,
            counter_landed.then_some(1),
            "the increment was lost, or appeared from nowhere"
        );
        assert_eq!(stored.data().get::<bool>("logged_in").expect("decode"), Some(true));
        assert_eq!(stored.owner(), Some("yara"));
    }
}

/// Loads of the old and the new key racing one rotate, as readers see them.
#[derive(Default)]
struct Sightings {
    /// Some load of the new key has returned it live.
    new_live: AtomicBool,
    /// Some load of the old key has returned it absent.
    old_gone: AtomicBool,
}

/// What a reader of [`a_rotate_across_shards_never_shows_two_live_copies`]
/// does: loads both keys, in its own order, until the rotate has returned
/// and once more; returns the first thing it saw that the contract forbids.
async fn read_both<S: SessionStore + ?Sized>(
    store: &S,
    (old, new): (&Record, &Record),
    new_first: bool,
    atomic: bool,
    now: Timestamp,
    seen: &Sightings,
    rotated: &AtomicBool,
) -> Result<(), String> {
    loop {
        // Read before the loads: whatever it says happened before them.
        let last = rotated.load(Ordering::SeqCst);
        for load_new in [new_first, !new_first] {
            let key = if load_new { &new.key } else { &old.key };
            // Read before the load is issued: a sighting it reports ended
            // before this load began.
            let (new_was_live, old_was_gone) = (
                seen.new_live.load(Ordering::SeqCst),
                seen.old_gone.load(Ordering::SeqCst),
            );
            let loaded = match store.load(key, now).await {
                Ok(loaded) => loaded,
                Err(e) => return Err(format!("a load racing the rotate failed: {e}")),
            };
            match (load_new, loaded) {
                (false, Some(r)) if new_was_live => {
                    return Err(format!(
                        "two live copies: the old key was live ({r:?}) after a reader had seen the new key live"
                    ));
                }
                (false, Some(r)) if r != *old => return Err(format!("the old key held {r:?}, not {old:?}")),
                (false, Some(_)) => {}
                (false, None) => seen.old_gone.store(true, Ordering::SeqCst),
                (true, Some(r)) if r != *new => {
                    return Err(format!("the new key held {r:?}, not the moved record {new:?}"));
                }
                (true, Some(_)) => seen.new_live.store(true, Ordering::SeqCst),
                (true, None) if atomic && old_was_gone => {
                    return Err(
                        "neither key live: the new key was missing after a reader had seen the old key gone; \
                         a store that rotates across shards in two steps declares it with \
                         StoreFactory::atomic_cross_shard_rotate = false"
                            .to_owned(),
                    );
                }
                (true, None) => {}
            }
        }
        if last {
            return Ok(());
        }
        tokio::task::yield_now().await;
    }
}

/// A rotate that moves a session between shards (a login into an owner
/// whose sessions are in another shard), racing loads of both keys, never
/// shows two live copies: once a reader has seen the new key live, no load
/// issued later finds the old key live. When it returns, exactly the new key
/// is live, with the data, `created_at` and `expires_at` of the old record,
/// version 1 and the new owner, and the old key holds a rotation mark.
///
/// With [`StoreFactory::atomic_cross_shard_rotate`] (the default) the rotate
/// is also one step: once a reader has seen the old key gone, no load
/// issued later finds the new key missing. A store that declares `false`
/// may show neither key live between its two steps (seal the old key, then
/// publish the new one), and only that. On a store that does not shard the
/// two owners share the one shard there is, and the rule checks an ordinary
/// atomic rotate.
pub async fn a_rotate_across_shards_never_shows_two_live_copies<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    const READERS: usize = 2;
    let atomic = ctx.factory.atomic_cross_shard_rotate();
    let from = "ann";
    let to = ctx.owner_apart(from, "ben").unwrap_or_else(|| "ben".to_owned());
    for i in 0..RACES {
        let now = ctx.now();
        let old = Record {
            data: Bytes::from(format!("moved {i}")),
            ..ctx.owned_record(2 * HOUR, from)
        };
        if let Err(e) = ctx.store.create(old.clone(), now).await {
            panic!("create of a fresh key failed: {e}");
        }
        let new = Record {
            key: ctx.key_for(Some(&to)),
            owner: Some(to.clone()),
            ..old.clone()
        };
        let (seen, rotated) = (Arc::new(Sightings::default()), Arc::new(AtomicBool::new(false)));
        let barrier = Arc::new(Barrier::new(READERS + 1));
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (store, seen, rotated, barrier) = (
                    Arc::clone(&ctx.store),
                    Arc::clone(&seen),
                    Arc::clone(&rotated),
                    Arc::clone(&barrier),
                );
                let (old, new) = (old.clone(), new.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    read_both(&*store, (&old, &new), r % 2 == 1, atomic, now, &seen, &rotated).await
                })
            })
            .collect();
        barrier.wait().await;
        let moved = ctx.store.rotate(&old.key, &new.key, Some(&to), now).await;
        rotated.store(true, Ordering::SeqCst);
        for reader in readers {
            match reader.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("a rotate across shards (atomic_cross_shard_rotate = {atomic}): {e}"),
                Err(e) => panic!("a reader panicked: {e}"),
            }
        }
        match moved {
            Ok(moved) => assert_eq!(moved, new, "rotate handed back another record than the moved one"),
            Err(e) => panic!("rotate of a live session onto a fresh key failed: {e}"),
        }
        assert_eq!(must_load(&*ctx.store, &new.key, now).await, new);
        assert_eq!(
            ctx.store.load(&old.key, now).await.ok(),
            Some(None),
            "the old key is live"
        );
        assert_eq!(ctx.store.was_rotated(&old.key, now).await.ok(), Some(true));
        assert_eq!(owned(&*ctx.store, from, now).await, Vec::<StoreKey>::new());
        assert_eq!(owned(&*ctx.store, &to, now).await, vec![new.key]);
        assert_eq!(ctx.store.delete(&new.key, now).await.ok(), Some(true));
    }
}
