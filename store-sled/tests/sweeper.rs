//! The background sweeper removes what is expired by its clock, leaves live
//! sessions alone, and ends with the store.

mod support;

use std::sync::Arc;
use std::time::Duration;

use conformance::fixtures::{self, HOUR};
use conformance::fresh_key;
use session_core::{Clock, ManualClock, ROTATION_MARK_TTL, Record, SessionStore, Timestamp};
use store_sled::SledStore;
use support::{builder, listed, stored, temporary_store};

/// Polls `done` until it holds; fails after 20 s. Waiting for a condition,
/// not sleeping for an assumed duration.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_removes_expired_sessions_by_its_clock_and_keeps_live_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::starting_now());
    let now = clock.now();
    let store = builder(&dir.path().join("db"))
        .sweeper(Duration::from_millis(10), 3)
        .sweeper_clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .open()
        .expect("open");
    let sweeper = store.sweeper_task_for_tests().expect("a sweeper was asked for");
    for _ in 0..10 {
        stored(&store, Some("dora"), now, HOUR).await;
    }
    let mut long = Vec::new();
    for _ in 0..4 {
        long.push(stored(&store, Some("dora"), now, 3 * HOUR).await);
    }
    // Nothing is expired yet by the sweeper's clock: a few sweeps pass and
    // every record stays.
    let before = store.len();
    assert_eq!(before, 14);
    assert!(!sweeper.is_finished(), "the sweeper runs as long as the store");
    clock.advance(2 * HOUR);
    eventually("the sweeper removed the 10 expired records", || store.len() == 4).await;
    for r in &long {
        assert_eq!(store.load(&r.key, clock.now()).await.expect("load").as_ref(), Some(r));
    }
    assert_eq!(listed(&store, "dora", clock.now()).await.len(), 4);
    assert_eq!(store.verify_indexes().expect("consistent"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_stops_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let store = builder(&path)
        .sweeper(Duration::from_secs(3600), 100)
        .open()
        .expect("open");
    let sweeper = store.sweeper_task_for_tests().expect("a sweeper was asked for");
    assert!(!sweeper.is_finished(), "the sweeper task runs");
    drop(store);
    // The task ends at once, without waiting for its hour-long period...
    eventually("the sweeper task ended", || sweeper.is_finished()).await;
    // ...and it held nothing open: the directory reopens.
    SledStore::open(&path).expect("reopen after the sweeper stopped");
}

#[tokio::test]
async fn delete_expired_walks_in_expiry_order_and_counts_only_what_it_removed() {
    let (_dir, store) = temporary_store();
    // Timestamps around zero and negative ones sort correctly too.
    let base = Timestamp::from_millis(-5_000);
    let mut records = Vec::new();
    for i in 0..10u64 {
        let r = fixtures::record(fresh_key(), base, Duration::from_millis(1_000 * (10 - i)));
        store
            .create(r.clone(), Timestamp::from_millis(-10_000))
            .await
            .expect("create");
        records.push(r);
    }
    records.sort_by_key(|r| r.expires_at);
    // At t = 0 the five with expires_at <= 0 are expired; remove them two by two,
    // soonest first.
    let at = Timestamp::EPOCH;
    assert_eq!(store.delete_expired(at, 2).await.expect("sweep"), 2);
    for r in &records[..2] {
        assert!(
            store
                .load(&r.key, Timestamp::from_millis(-10_000))
                .await
                .expect("load")
                .is_none()
        );
    }
    assert!(
        store
            .load(&records[2].key, Timestamp::from_millis(-10_000))
            .await
            .expect("load")
            .is_some()
    );
    assert_eq!(store.delete_expired(at, 100).await.expect("sweep"), 3);
    assert_eq!(store.delete_expired(at, 100).await.expect("sweep"), 0);
    assert_eq!(store.len(), 5);
    assert_eq!(store.verify_indexes().expect("consistent"), 5);
}

#[tokio::test]
async fn a_renewed_session_is_refiled_by_the_sweep_not_removed() {
    let (_dir, store) = temporary_store();
    let now = Timestamp::from_millis(1_000_000);
    let renewed = stored(&store, Some("dora"), now, HOUR).await;
    stored(&store, Some("dora"), now, HOUR).await;
    // A renewal writes only the record: its index entry stays at the first
    // expiry, which is allowed (never later than the expiry).
    assert!(store.touch(&renewed.key, now + 3 * HOUR, now).await.expect("touch"));
    assert_eq!(store.verify_indexes().expect("consistent"), 2);
    assert_eq!(store.leftover_index_entries().expect("scan"), 0);

    // At the first expiry the sweep removes only the session left alone, and
    // files the renewed one again under its new expiry.
    let later = now + 2 * HOUR;
    assert_eq!(store.delete_expired(later, 100).await.expect("sweep"), 1);
    let kept = store
        .load(&renewed.key, later)
        .await
        .expect("load")
        .expect("still live");
    assert_eq!((kept.version, kept.expires_at), (1, now + 3 * HOUR));
    assert_eq!(store.verify_indexes().expect("consistent"), 1);
    assert_eq!(store.leftover_index_entries().expect("scan"), 0);
    assert_eq!(store.delete_expired(later, 100).await.expect("nothing more"), 0);
    assert_eq!(listed(&store, "dora", later).await, [renewed.key]);

    // At its own expiry it goes too.
    assert_eq!(store.delete_expired(now + 3 * HOUR, 100).await.expect("sweep"), 1);
    assert!(store.is_empty());
    assert_eq!(store.leftover_index_entries().expect("scan"), 0);
    assert_eq!(listed(&store, "dora", later).await, []);
}

#[tokio::test]
async fn a_deleted_sessions_expiry_entry_is_dropped_by_the_sweep_at_its_time() {
    let (_dir, store) = temporary_store();
    let now = Timestamp::from_millis(5_000_000);
    let gone = stored(&store, Some("dora"), now, HOUR).await;
    assert!(store.delete(&gone.key, now).await.expect("delete"));
    // The delete removed the record and its owner entry; the expiry entry
    // waits for the sweep.
    assert_eq!(store.leftover_index_entries().expect("scan"), 1);
    assert_eq!(listed(&store, "dora", now).await, []);
    assert_eq!(store.delete_expired(now + HOUR / 2, 10).await.expect("too early"), 0);
    assert_eq!(store.leftover_index_entries().expect("scan"), 1);
    assert_eq!(
        store.delete_expired(now + HOUR, 10).await.expect("sweep"),
        0,
        "nothing live was removed"
    );
    assert_eq!(store.leftover_index_entries().expect("scan"), 0);
}

#[tokio::test]
async fn a_rotation_mark_is_filed_under_its_end_and_swept_then_uncounted() {
    let (_dir, store) = temporary_store();
    let now = Timestamp::from_millis(9_000_000);
    let ms = Duration::from_millis(1);
    let r = stored(&store, Some("dora"), now, HOUR).await;
    let new_key = fresh_key();
    let moved = store.rotate(&r.key, &new_key, Some("erin"), now).await.expect("rotate");
    assert_eq!(moved.owner.as_deref(), Some("erin"));
    // The moved record and the mark; only the record counts as a session.
    // The old session's expiry entry is left for the sweep, its owner entry
    // went with it.
    assert_eq!(store.len(), 2);
    assert_eq!(store.verify_indexes().expect("consistent"), 1);
    assert_eq!(store.leftover_index_entries().expect("scan"), 1);
    assert_eq!(listed(&store, "dora", now).await, []);
    assert_eq!(listed(&store, "erin", now).await.len(), 1);

    // Still in force a millisecond before its end: the sweep keeps it.
    let end = now + ROTATION_MARK_TTL;
    assert_eq!(store.delete_expired(end - ms, 10).await.expect("sweep"), 0);
    assert!(store.was_rotated(&r.key, end - ms).await.expect("was_rotated"));
    assert_eq!(store.len(), 2);
    // At its end the sweep removes it, and does not count it.
    assert_eq!(store.delete_expired(end, 10).await.expect("sweep"), 0);
    assert_eq!(store.len(), 1, "the mark is gone");
    assert!(!store.was_rotated(&r.key, now).await.expect("was_rotated"));
    assert_eq!(store.verify_indexes().expect("consistent"), 1);
    // At the old expiry the old entry goes, and the moved session with it.
    assert_eq!(store.delete_expired(now + HOUR, 10).await.expect("sweep"), 1);
    assert!(store.is_empty());
    assert_eq!(store.leftover_index_entries().expect("scan"), 0);
}

#[tokio::test]
async fn a_deleted_or_replaced_mark_leaves_only_an_entry_for_the_sweep() {
    let (_dir, store) = temporary_store();
    let now = Timestamp::from_millis(12_000_000);
    let deleted = stored(&store, Some("dora"), now, HOUR).await;
    let replaced = stored(&store, Some("dora"), now, HOUR).await;
    for r in [&deleted, &replaced] {
        store.rotate(&r.key, &fresh_key(), None, now).await.expect("rotate");
    }
    assert!(
        !store.delete(&deleted.key, now).await.expect("delete"),
        "a mark is not live"
    );
    let again = Record {
        expires_at: now + 2 * HOUR,
        ..replaced.clone()
    };
    store.create(again.clone(), now).await.expect("create over a mark");
    assert!(!store.was_rotated(&deleted.key, now).await.expect("was_rotated"));
    assert!(!store.was_rotated(&replaced.key, now).await.expect("was_rotated"));
    // Two moved records and the new one; no mark is left.
    assert_eq!(store.len(), 3);
    assert_eq!(store.verify_indexes().expect("consistent"), 3);
    // The marks' entries (at their end) and the rotated sessions' (at the
    // hour) are leftovers until the sweep reaches them.
    assert_eq!(store.leftover_index_entries().expect("scan"), 4);
    assert_eq!(
        store.delete_expired(now + ROTATION_MARK_TTL, 10).await.expect("sweep"),
        0
    );
    assert_eq!(store.leftover_index_entries().expect("scan"), 2);
    assert_eq!(store.len(), 3, "nothing live was removed");
    assert_eq!(
        store.load(&replaced.key, now).await.expect("load").as_ref(),
        Some(&again)
    );
}
