//! Race tests named after the lesson each keeps (the atomicity rules of
//! [`SessionStore`] and of [`SessionManager`]'s saves and rotations): two
//! or more tasks released together by a barrier on a multi-thread runtime,
//! many times over, and the outcome must be one the contract allows in
//! *every* interleaving. They complement the linearizability rule
//! ([`concurrent`](crate::rules::concurrent)) with exact, readable assertions.

use std::sync::Arc;

use session_core::{Bytes, Config, Error, SessionManager, SessionStore, StoreKey, Timestamp, Update};
use tokio::sync::Barrier;

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
