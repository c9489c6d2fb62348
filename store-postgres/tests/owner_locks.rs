//! `delete_by_owner` ("log out everywhere") without a table lock: it never
//! waits for maintenance or for unrelated writers, it holds back no other
//! owner's writes, and it still misses no session that a concurrent write
//! makes the owner's, because every such write takes the owner's advisory
//! lock before it touches a row.

mod support;

use std::sync::Arc;
use std::time::Duration;

use session_core::{Error, Overwrite, SessionStore, Timestamp, Update};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _};
use store_postgres::PostgresStore;

/// A bound for operations that must not wait: far above their normal few
/// milliseconds, far below a test's patience.
const NO_WAIT: Duration = Duration::from_secs(5);

async fn must_not_wait<T>(what: &str, op: impl Future<Output = Result<T, Error>>) -> T {
    match tokio::time::timeout(NO_WAIT, op).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what} failed: {e}"),
        Err(_) => panic!("{what} waited for more than {NO_WAIT:?}"),
    }
}

/// A fresh store with a long statement timeout (the tests wait on
/// conditions, never on it), its connections' application name, and a
/// connection to watch them in `pg_stat_activity`.
async fn store_and_watcher() -> (PostgresStore, String, sqlx::PgConnection) {
    let store = support::fresh_store(|b| b.statement_timeout(Duration::from_secs(20))).await;
    let application = support::application_name(&store);
    let watcher = support::raw_connection().await.expect("raw connection");
    (store, application, watcher)
}

/// Two sessions of the victim's in the order `delete_by_owner` takes them:
/// it locks an owner's rows in key order, so it reaches the first one
/// before it touches the second.
fn two_of_the_victims_in_key_order(now: Timestamp) -> (session_core::Record, session_core::Record) {
    let (mut first, mut second) = (
        support::record(now, Some("victim")),
        support::record(now, Some("victim")),
    );
    if second.key < first.key {
        std::mem::swap(&mut first.key, &mut second.key);
    }
    (first, second)
}

fn update_to(r: &session_core::Record, expected_version: u64, owner: Option<&str>) -> Update {
    Update {
        expected_version,
        data: r.data.clone(),
        expires_at: r.expires_at,
        owner: owner.map(str::to_owned),
    }
}

/// The tester's scenario: a maintenance transaction holds SHARE UPDATE
/// EXCLUSIVE (what VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY and
/// autovacuum take) and has written a row, and stays open. With a table
/// lock, `delete_by_owner` queued behind it until its statement timeout
/// (the session stayed live) and every later write of every user queued
/// behind `delete_by_owner`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_owner_ends_the_sessions_while_maintenance_holds_the_table() {
    if !support::server_available().await {
        return;
    }
    let timeout = Duration::from_secs(2);
    let store = support::fresh_store(|b| b.statement_timeout(timeout)).await;
    let now = Timestamp::now();
    let mut victims = Vec::new();
    for _ in 0..3 {
        let r = support::record(now, Some("victim"));
        store.create(r.clone(), now).await.expect("create");
        victims.push(r.key);
    }
    let bystander = support::record(now, Some("bystander"));
    store.create(bystander.clone(), now).await.expect("create");

    let mut maintenance = support::raw_connection().await.expect("raw connection");
    let mut tx = maintenance.begin().await.expect("begin");
    tx.execute(AssertSqlSafe(format!(
        "LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE",
        store.table()
    )))
    .await
    .expect("take SHARE UPDATE EXCLUSIVE");
    let unrelated = support::record(now, None);
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {} (key, version, data, created_at, expires_at) VALUES ($1, 1, '\\x00', $2, $3)",
        store.table()
    )))
    .bind(unrelated.key.as_bytes().as_slice())
    .bind(now.as_millis())
    .bind(unrelated.expires_at.as_millis())
    .execute(&mut *tx)
    .await
    .expect("an open writing transaction");

    let deleting = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_by_owner("victim", now).await })
    };
    // Other users' writes go on meanwhile, each within the statement timeout.
    for version in 1..=5 {
        let anonymous = support::record(now, None);
        must_not_wait("an anonymous create", store.create(anonymous, now)).await;
        let u = update_to(&bystander, version, Some("bystander"));
        must_not_wait("another owner's update", store.update(&bystander.key, u, now)).await;
    }
    let ended = deleting.await.expect("the delete_by_owner task");
    assert_eq!(
        ended.expect("delete_by_owner must finish while maintenance holds SHARE UPDATE EXCLUSIVE"),
        3
    );
    for key in &victims {
        assert!(
            store.load(key, now).await.expect("load").is_none(),
            "a session survived"
        );
    }
    assert!(store.load(&bystander.key, now).await.expect("load").is_some());
    tx.rollback().await.expect("end the maintenance transaction");
    store.drop_table().await.expect("drop");
}

/// While `delete_by_owner("victim")` waits for a write of the victim's that
/// is still in flight, every other owner's writes, anonymous writes and
/// reads go on; a new write of the victim's waits for it. When the
/// in-flight write commits, `delete_by_owner` ends its session too: its
/// snapshot comes after the lock, so it misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_by_owner_waiting_for_its_owners_writer_holds_no_one_else_back() {
    if !support::server_available().await {
        return;
    }
    let (store, application, mut watcher) = store_and_watcher().await;
    let now = Timestamp::now();
    let victims = support::record(now, Some("victim"));
    store.create(victims.clone(), now).await.expect("create");
    let other = support::record(now, Some("other"));
    store.create(other.clone(), now).await.expect("create");
    let anonymous = support::record(now, None);
    store.create(anonymous.clone(), now).await.expect("create");

    // Another instance of the application creates a session for the victim
    // with the store's own statement, and has not committed yet.
    let in_flight = support::record(now, Some("victim"));
    let mut writer = support::raw_connection().await.expect("raw connection");
    let mut tx = writer.begin().await.expect("begin");
    sqlx::query(AssertSqlSafe(support::statement(&store, "create")))
        .bind(in_flight.key.as_bytes().as_slice())
        .bind(in_flight.data.as_ref())
        .bind(in_flight.created_at.as_millis())
        .bind(in_flight.expires_at.as_millis())
        .bind("victim")
        .execute(&mut *tx)
        .await
        .expect("the in-flight create");

    let deleting = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_by_owner("victim", now).await })
    };
    support::wait_until_waiting(&mut watcher, &application, "advisory", 1).await;

    // Everyone else goes on.
    must_not_wait(
        "another owner's create",
        store.create(support::record(now, Some("other")), now),
    )
    .await;
    must_not_wait("an anonymous create", store.create(support::record(now, None), now)).await;
    let u = update_to(&other, 1, Some("other"));
    must_not_wait("another owner's update", store.update(&other.key, u, now)).await;
    let w = Overwrite {
        data: anonymous.data.clone(),
        expires_at: anonymous.expires_at,
        owner: None,
    };
    must_not_wait("an anonymous overwrite", store.overwrite(&anonymous.key, w, now)).await;
    let login = conformance::fresh_key();
    must_not_wait(
        "another owner's login",
        store.rotate(&anonymous.key, &login, Some("other"), now),
    )
    .await;
    must_not_wait(
        "a touch of the victim's session",
        store.touch(&victims.key, victims.expires_at, now),
    )
    .await;
    must_not_wait("a load of the victim's session", store.load(&victims.key, now)).await;
    must_not_wait("listing the victim's sessions", store.list_by_owner("victim", now)).await;
    assert!(
        !deleting.is_finished(),
        "delete_by_owner did not wait for the in-flight create"
    );

    // A new login of the victim's waits behind delete_by_owner.
    let late = support::record(now, Some("victim"));
    let late_create = {
        let (store, late) = (store.clone(), late.clone());
        tokio::spawn(async move { store.create(late, now).await })
    };
    support::wait_until_waiting(&mut watcher, &application, "advisory", 2).await;

    tx.commit().await.expect("commit the in-flight create");
    let ended = deleting.await.expect("task").expect("delete_by_owner");
    assert_eq!(ended, 2, "the victim's session and the one created in flight");
    assert!(store.load(&victims.key, now).await.expect("load").is_none());
    assert!(
        store.load(&in_flight.key, now).await.expect("load").is_none(),
        "the session committed before delete_by_owner's snapshot survived it"
    );
    late_create.await.expect("task").expect("the late create");
    assert!(
        store.load(&late.key, now).await.expect("load").is_some(),
        "a create that waited for delete_by_owner comes after it"
    );
    assert_eq!(store.list_by_owner("other", now).await.expect("list").len(), 3);
    store.drop_table().await.expect("drop");
}

/// The race the advisory lock closes. `delete_by_owner("victim")` has
/// taken its snapshot and waits for the row lock of the first of the
/// victim's sessions, `held` (another instance's write is in flight on it).
/// Meanwhile a write makes another session the victim's (a create, an
/// update, an overwrite, a login rotate), and after it a `touch` of the
/// victim's second session, `touched`, succeeds. `delete_by_owner` then
/// ends `touched`, so it comes after that touch, which comes after the
/// write: the write came before `delete_by_owner`, whose snapshot does not
/// show its session, yet must end it. So every such write must wait for
/// `delete_by_owner` instead: each is seen waiting on the owner's advisory
/// lock before the touch, and comes after `delete_by_owner`. (Removing the
/// lock from any one of the four statements fails this test: that write
/// finishes at once, and its session survives a `delete_by_owner` that
/// came after it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_that_makes_a_session_the_owners_waits_for_delete_by_owner() {
    if !support::server_available().await {
        return;
    }
    let (store, application, mut watcher) = store_and_watcher().await;
    let store = Arc::new(store);
    let now = Timestamp::now();
    let (held, touched) = two_of_the_victims_in_key_order(now);
    let (to_update, to_overwrite, to_rotate) = (
        support::record(now, None),
        support::record(now, Some("other")),
        support::record(now, None),
    );
    for r in [&held, &touched, &to_update, &to_overwrite, &to_rotate] {
        store.create(r.clone(), now).await.expect("create");
    }

    let in_flight = support::InFlightWrite::start(&store, &held.key).await;
    let deleting = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.delete_by_owner("victim", now).await })
    };
    support::wait_until_waiting(&mut watcher, &application, "transactionid", 1).await;

    let created = support::record(now, Some("victim"));
    let login = conformance::fresh_key();
    type Joiner = tokio::task::JoinHandle<Result<(), Error>>;
    let joiners: Vec<(&str, session_core::StoreKey, Joiner)> = vec![
        ("create", created.key, {
            let (store, created) = (Arc::clone(&store), created.clone());
            tokio::spawn(async move { store.create(created, now).await })
        }),
        ("update", to_update.key, {
            let (store, r) = (Arc::clone(&store), to_update.clone());
            tokio::spawn(async move {
                store
                    .update(&r.key, update_to(&r, 1, Some("victim")), now)
                    .await
                    .map(drop)
            })
        }),
        ("overwrite", to_overwrite.key, {
            let (store, r) = (Arc::clone(&store), to_overwrite.clone());
            let w = Overwrite {
                data: r.data.clone(),
                expires_at: r.expires_at,
                owner: Some("victim".into()),
            };
            tokio::spawn(async move { store.overwrite(&r.key, w, now).await.map(drop) })
        }),
        ("rotate setting the owner", login, {
            let (store, r) = (Arc::clone(&store), to_rotate.clone());
            tokio::spawn(async move { store.rotate(&r.key, &login, Some("victim"), now).await.map(drop) })
        }),
    ];
    // Each joiner either waits on the owner's lock or has already finished
    // (which is the bug).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
        )
        .bind(&application)
        .fetch_one(&mut watcher)
        .await
        .expect("read pg_stat_activity");
        let finished = joiners.iter().filter(|(_, _, j)| j.is_finished()).count();
        if usize::try_from(waiting).unwrap_or(0) + finished >= joiners.len() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the joiners never settled");
        tokio::task::yield_now().await;
    }
    let early: Vec<&str> = joiners
        .iter()
        .filter(|(_, _, j)| j.is_finished())
        .map(|(what, _, _)| *what)
        .collect();
    // After them, and before delete_by_owner gets to it.
    assert!(
        must_not_wait("the touch", store.touch(&touched.key, touched.expires_at, now)).await,
        "delete_by_owner had not ended the touched session yet"
    );

    in_flight.commit().await;
    let ended = deleting.await.expect("task").expect("delete_by_owner");
    assert!(store.load(&touched.key, now).await.expect("load").is_none());
    let mut survivors = Vec::new();
    for (what, key, joiner) in joiners {
        joiner
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("{what} failed: {e}"));
        if store.load(&key, now).await.expect("load").is_some() {
            survivors.push(what);
        }
    }
    for what in &early {
        assert!(
            !survivors.contains(what),
            "the {what} that made a session the owner's finished before a touch that delete_by_owner \
             came after, and its session survived delete_by_owner"
        );
    }
    assert!(
        early.is_empty(),
        "these writes did not wait for delete_by_owner: {early:?}"
    );
    assert_eq!(ended, 2, "delete_by_owner ended the held and the touched session");
    assert_eq!(survivors.len(), 4, "the writes that waited came after delete_by_owner");
    assert!(store.load(&held.key, now).await.expect("load").is_none());
    store.drop_table().await.expect("drop");
}

/// A session of the owner rotated to a new key (keeping its owner, so with
/// no lock of the owner's) while `delete_by_owner` runs: `delete_by_owner`'s
/// snapshot shows it under the old key only, and by the time the delete
/// reaches it the rotate has committed. The rotate moved the session by
/// updating its row's key, so the delete follows the row to its new key and
/// ends it (a rotate that deleted the old row and inserted a new one would
/// let it escape). The rotation mark, which belongs to no owner, stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_rotated_while_delete_by_owner_runs_is_followed_to_its_new_key() {
    if !support::server_available().await {
        return;
    }
    let (store, application, mut watcher) = store_and_watcher().await;
    let now = Timestamp::now();
    let (held, rotated) = two_of_the_victims_in_key_order(now);
    for r in [&held, &rotated] {
        store.create(r.clone(), now).await.expect("create");
    }
    let in_flight = support::InFlightWrite::start(&store, &held.key).await;
    let deleting = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_by_owner("victim", now).await })
    };
    support::wait_until_waiting(&mut watcher, &application, "transactionid", 1).await;

    let new_key = conformance::fresh_key();
    let moved = must_not_wait(
        "a rotate keeping the owner",
        store.rotate(&rotated.key, &new_key, None, now),
    )
    .await;
    assert_eq!(moved.owner.as_deref(), Some("victim"));
    in_flight.commit().await;

    assert_eq!(deleting.await.expect("task").expect("delete_by_owner"), 2);
    assert!(
        store.load(&new_key, now).await.expect("load").is_none(),
        "the session rotated during delete_by_owner escaped it"
    );
    assert!(store.was_rotated(&rotated.key, now).await.expect("was_rotated"));
    store.drop_table().await.expect("drop");
}

/// Writes that make no session the owner's take no lock of the owner's:
/// touches, anonymous writes, a rotate that keeps the owner (the session
/// stays in its row's update chain, which `delete_by_owner` follows) or
/// gives the session to someone else, an update that takes it away, a
/// delete. Row locks order them with `delete_by_owner`, so they go on while
/// the owner's lock is held exclusively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_make_no_session_the_owners_take_no_owner_lock() {
    let Some(store) = support::fresh_store_or_skip(|b| b.statement_timeout(Duration::from_secs(20))).await else {
        return;
    };
    let now = Timestamp::now();
    let owned = support::record(now, Some("victim"));
    store.create(owned.clone(), now).await.expect("create");
    let anonymous = support::record(now, None);
    store.create(anonymous.clone(), now).await.expect("create");

    // Hold the victim's lock exclusively, as a delete_by_owner would.
    let mut holder = support::raw_connection().await.expect("raw connection");
    let mut tx = holder.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
        .bind("victim")
        .bind(store.owner_lock_seed_for_tests())
        .execute(&mut *tx)
        .await
        .expect("take the owner's lock");

    must_not_wait("a touch", store.touch(&owned.key, owned.expires_at, now)).await;
    must_not_wait(
        "an anonymous update",
        store.update(&anonymous.key, update_to(&anonymous, 1, None), now),
    )
    .await;
    let renamed = conformance::fresh_key();
    must_not_wait(
        "a rotate keeping the owner",
        store.rotate(&owned.key, &renamed, None, now),
    )
    .await;
    let away = conformance::fresh_key();
    must_not_wait(
        "a rotate to another owner",
        store.rotate(&renamed, &away, Some("other"), now),
    )
    .await;
    must_not_wait(
        "an update away from the owner",
        store.update(&away, update_to(&owned, 1, None), now),
    )
    .await;
    must_not_wait("a delete", store.delete(&away, now)).await;
    tx.rollback().await.expect("release");
    store.drop_table().await.expect("drop");
}

/// A rotate onto a key already in the table keeps the session's owner and
/// moves the session out of its row, so it takes the lock of the owner the
/// session has. It learns that owner from its snapshot before it locks any
/// row; when the owner changes between the snapshot and the row lock, it
/// has taken the wrong lock, so it must not move the session then, but ask
/// again and take the new owner's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotate_onto_a_taken_key_takes_the_lock_of_the_owner_the_session_has_when_it_moves() {
    if !support::server_available().await {
        return;
    }
    let (store, application, mut watcher) = store_and_watcher().await;
    let now = Timestamp::now();
    let mut expired = support::record(now, None);
    expired.expires_at = now;
    let source = support::record(now, Some("ann"));
    for r in [&expired, &source] {
        store.create(r.clone(), now).await.expect("create");
    }
    let hold = |owner: &'static str| {
        let seed = store.owner_lock_seed_for_tests();
        async move {
            let mut conn = support::raw_connection().await.expect("raw connection");
            sqlx::raw_sql(AssertSqlSafe(format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('{owner}', {seed}))"
            )))
            .execute(&mut conn)
            .await
            .expect("hold the owner's lock");
            conn
        }
    };

    let mut ann = hold("ann").await;
    let rotating = {
        let (store, from, to) = (store.clone(), source.key, expired.key);
        tokio::spawn(async move { store.rotate(&from, &to, None, now).await })
    };
    support::wait_until_waiting(&mut watcher, &application, "advisory", 1).await;
    // The session changes hands before the rotate has locked its row.
    let u = update_to(&source, 1, Some("bob"));
    assert_eq!(
        must_not_wait("the owner change", store.update(&source.key, u, now)).await,
        2
    );
    let mut bob = hold("bob").await;
    ann.execute("ROLLBACK").await.expect("release ann's lock");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        // Waiting for bob's lock in particular (pg_locks splits the key
        // in two halves), not still for ann's.
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS a USING (pid) \
             WHERE a.application_name = $1 AND l.locktype = 'advisory' AND NOT l.granted \
             AND l.objsubid = 1 AND (l.classid::int8 << 32 | l.objid::int8) = hashtextextended('bob', $2)",
        )
        .bind(&application)
        .bind(store.owner_lock_seed_for_tests())
        .fetch_one(&mut watcher)
        .await
        .expect("read pg_locks");
        assert!(
            !rotating.is_finished(),
            "the rotate moved bob's session holding only ann's lock"
        );
        if waiting == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotate never waited for bob's lock"
        );
        tokio::task::yield_now().await;
    }
    bob.execute("ROLLBACK").await.expect("release bob's lock");
    let moved = rotating.await.expect("task").expect("rotate");
    assert_eq!(
        (moved.key, moved.version, moved.owner.as_deref()),
        (expired.key, 1, Some("bob"))
    );
    assert_eq!(store.list_by_owner("bob", now).await.expect("list").len(), 1);
    store.drop_table().await.expect("drop");
}
