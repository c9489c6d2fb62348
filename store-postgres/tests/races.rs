//! Races on one key that only PostgreSQL's READ COMMITTED rules can make,
//! set up step by step: another connection runs one of the store's own
//! statements in a transaction it keeps open, the store's operation is
//! seen waiting on the row lock (`pg_stat_activity`), then the other
//! transaction commits.

mod support;

use std::time::Duration;

use conformance::fixtures::HOUR;
use session_core::{Error, ROTATION_MARK_TTL, SessionStore, Timestamp, Update};
use sqlx::{AssertSqlSafe, Connection as _, Row as _};

/// `delete(k)` racing `rotate(k -> n)`: delete's snapshot shows the live
/// session, and by the time its DELETE reaches the row the rotate has
/// committed: the session moved to `n` (its row's newest version, which
/// the DELETE, testing `key = k`, leaves alone) and a rotation mark was
/// inserted under `k`, a row the snapshot cannot see. The delete comes
/// after the rotate, so it must remove that mark (and report no live
/// session): the store asks again with a fresh snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_a_rotate_from_its_key_removes_the_mark() {
    let Some(store) = support::fresh_store_or_skip(|b| b.statement_timeout(Duration::from_secs(20))).await else {
        return;
    };
    let application = support::application_name(&store);
    let mut watcher = support::raw_connection().await.expect("raw connection");
    let now = Timestamp::now();
    let r = support::record(now, Some("wes"));
    store.create(r.clone(), now).await.expect("create");

    // Another instance rotates the session with the store's own statement
    // and has not committed yet.
    let new_key = conformance::fresh_key();
    let mut other = support::raw_connection().await.expect("raw connection");
    let mut tx = other.begin().await.expect("begin");
    let moved = sqlx::query(AssertSqlSafe(support::statement(&store, "rotate")))
        .bind(r.key.as_bytes().as_slice())
        .bind(new_key.as_bytes().as_slice())
        .bind(None::<&str>)
        .bind(now.as_millis())
        .bind((now + ROTATION_MARK_TTL).as_millis())
        .fetch_one(&mut *tx)
        .await
        .expect("the in-flight rotate");
    assert!(moved.get::<bool, _>("was_moved"), "the rotate moved the session");

    let deleting = {
        let (store, key) = (store.clone(), r.key);
        tokio::spawn(async move { store.delete(&key, now).await })
    };
    support::wait_until_waiting(&mut watcher, &application, "transactionid", 1).await;
    tx.commit().await.expect("commit the rotate");

    let deleted = deleting.await.expect("task").expect("delete");
    assert!(!deleted, "a rotation mark is not a live session");
    assert!(
        !store.was_rotated(&r.key, now).await.expect("was_rotated"),
        "the delete came after the rotate and must have removed its mark"
    );
    let moved = store
        .load(&new_key, now)
        .await
        .expect("load")
        .expect("the moved session");
    assert_eq!(moved.data, r.data);
    store.drop_table().await.expect("drop");
}

/// `touch(k)` by a caller whose clock is behind, racing `rotate(e -> k)`
/// by one whose clock says `k` has expired: the rotate replaces `k`'s
/// record, which is still live for the touch. The touch's snapshot shows
/// the old record, live, and by the time it reaches the row the rotate has
/// committed. `k` never lacked a live session for the touch's clock (the
/// old one, then the moved one), so the touch must not answer `false`: it
/// comes after the rotate and renews the moved session, because the rotate
/// moves the session into `k`'s row, whose update chain the touch follows.
/// (A rotate that deleted `k`'s row and gave the session's row the key `k`
/// made the touch find its row deleted and answer `false`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_racing_a_rotate_onto_its_key_renews_the_replacement() {
    let Some(store) = support::fresh_store_or_skip(|b| b.statement_timeout(Duration::from_secs(20))).await else {
        return;
    };
    let application = support::application_name(&store);
    let mut watcher = support::raw_connection().await.expect("raw connection");
    let now = Timestamp::now();
    let later = now + HOUR * 2;
    let replaced = support::record(now, None); // expires at now + 1 h
    let mut source = support::record(now, Some("xia"));
    source.expires_at = now + HOUR * 3;
    for r in [&replaced, &source] {
        store.create(r.clone(), now).await.expect("create");
    }

    // Another instance rotates `source` onto `replaced` at `later` (when
    // `replaced` has expired), with the store's own statement for a new key
    // already in the table, and has not committed yet.
    let mut other = support::raw_connection().await.expect("raw connection");
    let mut tx = other.begin().await.expect("begin");
    let rotated = sqlx::query(AssertSqlSafe(support::statement(
        &store,
        "rotate (new key in the table)",
    )))
    .bind(source.key.as_bytes().as_slice())
    .bind(replaced.key.as_bytes().as_slice())
    .bind(None::<&str>)
    .bind(later.as_millis())
    .bind((later + ROTATION_MARK_TTL).as_millis())
    .fetch_one(&mut *tx)
    .await
    .expect("the in-flight rotate");
    assert!(rotated.get::<bool, _>("was_moved"), "the rotate moved the session");

    let renewed_until = source.expires_at + HOUR;
    let touching = {
        let (store, key) = (store.clone(), replaced.key);
        tokio::spawn(async move { store.touch(&key, renewed_until, now).await })
    };
    support::wait_until_waiting(&mut watcher, &application, "transactionid", 1).await;
    tx.commit().await.expect("commit the rotate");

    let touched = touching.await.expect("task");
    assert!(
        matches!(touched, Ok(true)),
        "the touch comes after the rotate and renews the moved session, got {touched:?}"
    );
    let stored = store.load(&replaced.key, now).await.expect("load").expect("live");
    assert_eq!(
        (
            stored.version,
            &stored.data[..],
            stored.expires_at,
            stored.owner.as_deref()
        ),
        (1, &source.data[..], renewed_until, Some("xia"))
    );
    assert!(store.was_rotated(&source.key, later).await.expect("was_rotated"));
    store.drop_table().await.expect("drop");
}

/// `rotate_locked` (the rotate onto a key already in the table) finds the
/// two rows through its snapshot, locks their newest versions, and writes
/// the mark through the snapshot again. When a rotate from the new key to
/// the old one commits in between, the row it locks under the old key is
/// the session rotated there, which its snapshot showed under the new key:
/// moving it would copy the session (the mark would find no old row to
/// turn into the mark). It must notice and apply nothing (the store then
/// asks again); a session is never in two places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotate_onto_a_key_whose_session_moves_meanwhile_copies_nothing() {
    let Some(store) = support::fresh_store_or_skip(|b| b.statement_timeout(Duration::from_secs(20))).await else {
        return;
    };
    let mut watcher = support::raw_connection().await.expect("raw connection");
    let now = Timestamp::now();
    let session = support::record(now, None);
    store.create(session.clone(), now).await.expect("create");
    let elsewhere = conformance::fresh_key();

    // Hold zed's owner lock, so that the statement below takes its snapshot
    // (`session` under its key, nothing under `elsewhere`) and then waits.
    let mut holder = support::raw_connection().await.expect("raw connection");
    let mut held = holder.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('zed', $1))")
        .bind(store.owner_lock_seed_for_tests())
        .execute(&mut *held)
        .await
        .expect("hold zed's lock");
    let sql = support::statement(&store, "rotate (new key in the table)");
    let mut runner = support::raw_connection().await.expect("raw connection");
    let runner_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut runner)
        .await
        .expect("pid");
    let (from, to) = (elsewhere, session.key);
    let rotating = tokio::spawn(async move {
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(from.as_bytes().as_slice())
            .bind(to.as_bytes().as_slice())
            .bind(Some("zed"))
            .bind(now.as_millis())
            .bind((now + ROTATION_MARK_TTL).as_millis())
            .fetch_one(&mut runner)
            .await
            .expect("the rotate statement");
        (row.get::<bool, _>("unchanged"), row.get::<bool, _>("was_moved"))
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'advisory'")
                .bind(runner_pid)
                .fetch_one(&mut watcher)
                .await
                .expect("pg_stat_activity");
        if waiting == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the statement never waited");
        tokio::task::yield_now().await;
    }
    // Meanwhile the session is rotated the other way, to `elsewhere`.
    let moved = store.rotate(&session.key, &elsewhere, None, now).await.expect("rotate");
    held.rollback().await.expect("release zed's lock");

    let (unchanged, was_moved) = rotating.await.expect("task");
    let at_elsewhere = store.load(&elsewhere, now).await.expect("load");
    let at_session = store.load(&session.key, now).await.expect("load");
    assert!(
        !(at_elsewhere.is_some() && at_session.is_some()),
        "the session was copied: it is live under both keys"
    );
    assert!(
        !unchanged && !was_moved,
        "the statement must notice the move and apply nothing"
    );
    assert_eq!(at_elsewhere, Some(moved), "the other rotate's result stands");
    assert!(store.was_rotated(&session.key, now).await.expect("was_rotated"));
    store.drop_table().await.expect("drop");
}

/// The lean `update` reads `current` from its snapshot. When the row changes
/// after that snapshot, the snapshot still shows the expected version while
/// the write, re-checked on the newest row, does nothing: the store must
/// then report the version it really lost to, never the expected one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_loses_after_its_snapshot_reports_the_version_it_lost_to() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    let now = Timestamp::now();
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");

    // Another client bumps the version in a transaction it keeps open, so
    // the store's update takes its snapshot before that commit and then
    // waits on the row lock.
    let mut other = support::raw_connection().await.expect("raw connection");
    let mut tx = other.begin().await.expect("begin");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET version = version + 1 WHERE key = $1",
        store.table()
    )))
    .bind(r.key.as_bytes().as_slice())
    .execute(&mut *tx)
    .await
    .expect("bump the version");

    let racing = {
        let (store, key) = (store.clone(), r.key);
        let u = Update {
            expected_version: 1,
            data: r.data.clone(),
            expires_at: r.expires_at,
            owner: None,
        };
        tokio::spawn(async move { store.update(&key, u, now).await })
    };
    // Wait until the update is blocked on the row lock (a condition, not an
    // assumed duration), then commit the other write.
    let mut watcher = support::raw_connection().await.expect("raw connection");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock' \
             AND position($1 in query) > 0",
        )
        // The table part of `schema.table`: statements quote each part.
        .bind(store.table().rsplit('.').next().unwrap_or_default().to_owned())
        .fetch_one(&mut watcher)
        .await
        .expect("read pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            !racing.is_finished(),
            "the update finished without waiting on the row lock"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the update never reached the row lock"
        );
        tokio::task::yield_now().await;
    }
    assert!(!racing.is_finished(), "the update waits on the row lock");
    tx.commit().await.expect("commit the other write");

    let result = racing.await.expect("the update task");
    assert!(
        matches!(result, Err(Error::Conflict { current: 2 })),
        "expected Conflict {{ current: 2 }}, got {result:?}"
    );
    let stored = store.load(&r.key, now).await.expect("load").expect("live");
    assert_eq!(stored.version, 2, "the losing update wrote nothing");
    store.drop_table().await.expect("drop");
}
