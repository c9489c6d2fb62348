//! Races on one key that only PostgreSQL's READ COMMITTED rules can make,
//! set up step by step: another connection runs one of the store's own
//! statements in a transaction it keeps open, the store's operation is
//! seen waiting on the row lock (`pg_stat_activity`), then the other
//! transaction commits.

mod support;

use std::time::Duration;

use session_core::{ROTATION_MARK_TTL, SessionStore, Timestamp};
use sqlx::{AssertSqlSafe, Connection as _};

/// `delete(k)` racing `rotate(k -> n)`: delete's snapshot shows the live
/// session, and by the time its DELETE reaches the row the rotate has
/// committed: the session moved to `n` (its row's newest version, which
/// the DELETE, testing `key = k`, leaves alone) and a rotation mark was
/// inserted under `k`, a row the snapshot cannot see. The delete comes
/// after the rotate, so it must remove that mark (and report no live
/// session): the store asks again with a fresh snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_a_rotate_from_its_key_removes_the_mark() {
    if !support::server_or_skip("a_delete_racing_a_rotate_from_its_key_removes_the_mark").await {
        return;
    }
    let store = support::fresh_store(|b| b.statement_timeout(Duration::from_secs(20))).await;
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
        .bind(None::<i64>)
        .fetch_optional(&mut *tx)
        .await
        .expect("the in-flight rotate");
    assert!(moved.is_some(), "the rotate moved the session");

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
