//! What a crash in the middle of an operation can leave, deterministically.
//!
//! sled recovers a prefix of its log, and an operation's sled writes are
//! logged in the order it makes them. So a store stopped after the first *k*
//! writes of an operation (`stop_writing_after_for_tests`), flushed and
//! reopened, holds exactly what a crash after those *k* writes can leave.
//! Each test walks every *k* from 0 until the operation completes and checks,
//! after reopening, what the crate docs promise: every record and mark is
//! indexed (`verify_indexes`), each record is whole (old or new, never a
//! mix), only the documented trace is visible (an interrupted `rotate` may
//! leave the session under both keys), and the sweep and the owner
//! operations reclaim everything left behind. The number of writes of the
//! complete operation is checked against the counts in the crate docs.
//!
//! The SIGKILL test (`crash.rs`) checks acknowledged writes against a real
//! kill; its kills almost never land between two writes of one operation,
//! whose writes reach the disk together at its flush. This test covers that.

mod support;

use std::future::Future;
use std::time::Duration;

use conformance::fixtures::{self, HOUR};
use conformance::fresh_key;
use session_core::{Bytes, Error, ROTATION_MARK_TTL, Record, SessionStore, Timestamp};
use store_sled::SledStore;
use support::{builder, listed, stored, temporary_store};

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
/// Later than every expiry these tests write.
const FAR: Timestamp = Timestamp::from_millis(1_800_000_000_000);
/// Every owner these tests use, for the final clean-up.
const OWNERS: [&str; 3] = ["ann", "bob", "cat"];

/// For k = 0, 1, ...: a fresh store, `setup`, then `op` with only k sled
/// writes allowed; flush, reopen, check the indexes, run `check` (told
/// whether `op` completed), and check that the sweep and the owner
/// operations leave nothing behind. Stops once `op` completes and returns
/// how many writes it took.
async fn every_prefix<T, Setup, SetupFut, Op, OpFut, Check, CheckFut>(setup: Setup, op: Op, check: Check) -> u64
where
    T: Clone,
    Setup: Fn(SledStore) -> SetupFut,
    SetupFut: Future<Output = T>,
    Op: Fn(SledStore, T) -> OpFut,
    OpFut: Future<Output = Result<(), Error>>,
    Check: Fn(SledStore, T, bool) -> CheckFut,
    CheckFut: Future<Output = ()>,
{
    for writes in 0..100 {
        let (_dir, store) = temporary_store();
        let path = store.path().to_owned();
        let made = setup(store.clone()).await;
        store.stop_writing_after_for_tests(writes);
        let result = op(store.clone(), made.clone()).await;
        let done = match result {
            Ok(()) => true,
            Err(Error::Backend(_)) => false,
            Err(e) => panic!("after {writes} writes: unexpected {e:?}"),
        };
        store.flush().await.expect("flush");
        drop(store);

        let store = builder(&path).open().expect("reopen");
        store
            .verify_indexes()
            .unwrap_or_else(|e| panic!("after {writes} writes: a record or mark its indexes miss: {e}"));
        check(store.clone(), made, done).await;
        store.delete_expired(FAR, usize::MAX).await.expect("sweep");
        for owner in OWNERS {
            assert_eq!(store.delete_by_owner(owner, FAR).await.ok(), Some(0));
        }
        assert!(store.is_empty(), "after {writes} writes: {} values left", store.len());
        assert_eq!(
            store.leftover_index_entries().ok(),
            Some(0),
            "after {writes} writes: entries left"
        );
        if done {
            return writes;
        }
    }
    panic!("the operation never completed");
}

#[tokio::test]
async fn an_interrupted_rotate_with_set_owner_loses_nothing_and_leaves_at_most_a_copy() {
    let writes = every_prefix(
        |store| async move {
            let old = stored(&store, Some("ann"), NOW, HOUR).await;
            // The new key holds an expired session of another owner, which
            // the rotation replaces (and whose owner entry it removes).
            let stale = stored(&store, Some("cat"), NOW - 2 * HOUR, HOUR).await;
            (old, stale.key)
        },
        |store, (old, new_key)| async move { store.rotate(&old.key, &new_key, Some("bob"), NOW).await.map(drop) },
        |store, (old, new_key), done| async move {
            let moved = Record {
                key: new_key,
                owner: Some("bob".into()),
                ..old.clone()
            };
            let at_old = store.load(&old.key, NOW).await.expect("load");
            let at_new = store.load(&new_key, NOW).await.expect("load");
            let marked = store.was_rotated(&old.key, NOW).await.expect("was_rotated");
            match (&at_old, &at_new, marked) {
                // Not yet written, or the documented trace (a copy under
                // the new key), or done.
                (Some(o), None, false) | (Some(o), Some(_), false) => {
                    assert!(!done);
                    assert_eq!(o, &old, "the old session is whole");
                }
                (None, Some(_), true) => {}
                other => panic!("the session was lost or half moved: {other:?}"),
            }
            if let Some(n) = &at_new {
                assert_eq!(n, &moved, "the moved record is whole");
            }
            // Stopped after the mark, before the old owner's entry went:
            // rotated already, with a leftover entry.
            assert!(!done || at_old.is_none(), "a completed rotation left the old session");
            let old_listed = at_old.is_some().then_some(old.key);
            assert_eq!(listed(&store, "ann", NOW).await, Vec::from_iter(old_listed));
            assert_eq!(listed(&store, "bob", NOW).await, Vec::from_iter(at_new.map(|r| r.key)));
            assert_eq!(listed(&store, "cat", NOW).await, []);
            if done {
                // The mark ends after ROTATION_MARK_TTL and the sweep then
                // removes it, uncounted.
                let end = NOW + ROTATION_MARK_TTL;
                assert_eq!(store.delete_expired(end, 10).await.ok(), Some(0));
                assert!(!store.was_rotated(&old.key, NOW).await.expect("was_rotated"));
                assert_eq!(store.len(), 1);
            }
        },
    )
    .await;
    // The crate docs: up to five inserts and two removals.
    assert_eq!(writes, 7);
}

#[tokio::test]
async fn an_interrupted_update_that_changes_the_owner_and_shortens_the_expiry_is_old_or_new() {
    let writes = every_prefix(
        |store| async move { stored(&store, Some("ann"), NOW, 2 * HOUR).await },
        |store, r| async move {
            let update = fixtures::update(1, b"new", NOW + HOUR, Some("bob"));
            store.update(&r.key, update, NOW).await.map(drop)
        },
        |store, r, done| async move {
            let found = store.load(&r.key, NOW).await.expect("load").expect("still live");
            let new = Record {
                version: 2,
                data: Bytes::from_static(b"new"),
                expires_at: NOW + HOUR,
                owner: Some("bob".into()),
                ..r.clone()
            };
            assert!(found == r || found == new, "a record mixing old and new: {found:?}");
            // Stopped after the record was written, it is new already.
            assert!(!done || found == new);
            let (ann, bob) = if found == new {
                (vec![], vec![r.key])
            } else {
                (vec![r.key], vec![])
            };
            assert_eq!(listed(&store, "ann", NOW).await, ann);
            assert_eq!(listed(&store, "bob", NOW).await, bob);
        },
    )
    .await;
    // One insert, one for the earlier expiry, an insert and a removal for the owner.
    assert_eq!(writes, 4);
}

#[tokio::test]
async fn an_interrupted_create_over_an_expired_session_of_another_owner_is_old_or_new() {
    let writes = every_prefix(
        |store| async move {
            let stale = stored(&store, Some("cat"), NOW - 2 * HOUR, HOUR).await;
            Record {
                created_at: NOW,
                expires_at: NOW + HOUR,
                owner: Some("ann".into()),
                ..stale
            }
        },
        |store, fresh| async move { store.create(fresh, NOW).await },
        |store, fresh, done| async move {
            let found = store.load(&fresh.key, NOW).await.expect("load");
            assert!(found.is_none() || found.as_ref() == Some(&fresh), "{found:?}");
            assert!(!done || found.is_some());
            assert_eq!(listed(&store, "ann", NOW).await, Vec::from_iter(found.map(|r| r.key)));
            assert_eq!(listed(&store, "cat", NOW).await, []);
        },
    )
    .await;
    // Up to three inserts, and the removal of the other owner's entry.
    assert_eq!(writes, 4);
}

#[tokio::test]
async fn an_interrupted_delete_or_delete_by_owner_leaves_whole_sessions() {
    let writes = every_prefix(
        |store| async move { stored(&store, Some("ann"), NOW, HOUR).await },
        |store, r| async move { store.delete(&r.key, NOW).await.map(drop) },
        |store, r, done| async move {
            let found = store.load(&r.key, NOW).await.expect("load");
            assert!(found.is_none() || found.as_ref() == Some(&r), "{found:?}");
            assert!(!done || found.is_none());
            assert_eq!(listed(&store, "ann", NOW).await, Vec::from_iter(found.map(|r| r.key)));
        },
    )
    .await;
    // The record and its owner entry.
    assert_eq!(writes, 2);

    let writes = every_prefix(
        |store| async move {
            let mut sessions = Vec::new();
            for _ in 0..3 {
                sessions.push(stored(&store, Some("ann"), NOW, HOUR).await);
            }
            sessions
        },
        |store, _| async move { store.delete_by_owner("ann", NOW).await.map(drop) },
        |store, sessions, done| async move {
            let mut live = Vec::new();
            for r in &sessions {
                if let Some(found) = store.load(&r.key, NOW).await.expect("load") {
                    assert_eq!(&found, r, "a session is whole");
                    live.push(r.key);
                }
            }
            live.sort();
            assert!(!done || live.is_empty());
            assert_eq!(listed(&store, "ann", NOW).await, live);
        },
    )
    .await;
    assert_eq!(writes, 6);
}

#[tokio::test]
async fn an_interrupted_sweep_keeps_live_sessions_and_marks_in_force_indexed() {
    let t0 = NOW - 2 * HOUR;
    every_prefix(
        |store| async move {
            // Expired by NOW.
            let expired = stored(&store, Some("ann"), t0, HOUR).await;
            // Renewed past NOW: its entry stays at its first expiry, and the
            // sweep files it again.
            let renewed = stored(&store, Some("bob"), t0, HOUR).await;
            // Rotated at t0: its mark ended long before NOW.
            let rotated = stored(&store, None, t0, 3 * HOUR).await;
            assert!(store.touch(&renewed.key, NOW + HOUR, t0).await.expect("touch"));
            let moved = fresh_key();
            store.rotate(&rotated.key, &moved, None, t0).await.expect("rotate");
            (expired, renewed, rotated.key, moved)
        },
        |store, _| async move { store.delete_expired(NOW, 100).await.map(drop) },
        |store, (expired, renewed, rotated, moved), done| async move {
            // What the sweep must never remove.
            let kept = store.load(&renewed.key, NOW).await.expect("load").expect("live");
            assert_eq!(kept.expires_at, NOW + HOUR);
            assert!(store.load(&moved, NOW).await.expect("load").is_some());
            assert_eq!(listed(&store, "bob", NOW).await, vec![renewed.key]);
            // What it removes, at once or not yet (seen by a caller whose
            // clock is behind).
            let early = t0 + Duration::from_secs(1);
            let expired_left = store.load(&expired.key, early).await.expect("load").is_some();
            let mark_left = store.was_rotated(&rotated, early).await.expect("was_rotated");
            if done {
                assert!(!expired_left && !mark_left, "the sweep completed");
            }
        },
    )
    .await;
}
