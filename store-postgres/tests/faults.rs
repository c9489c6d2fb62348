//! Faults: the server kills the store's connections in the middle of a
//! workload (operations in flight fail with a transient `Error::Backend`,
//! never a panic or a wrong answer, and the same store serves again without
//! being rebuilt); a statement stuck on a lock fails with a clear
//! statement-timeout error, an administrator's cancel with another; a
//! server error gives its SQLSTATE.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use conformance::fixtures::HOUR;
use session_core::{Error, SessionStore, Timestamp, Update};
use tokio::sync::Semaphore;

const TASKS: usize = 4;

/// Ops every task still runs after the kill, so each dead connection is used.
const OPS_AFTER_KILL: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_backends_fail_in_flight_operations_and_the_store_recovers() {
    if !support::server_available().await {
        return;
    }
    let store = Arc::new(support::fresh_store(|b| b.max_connections(TASKS as u32)).await);
    // The store's connections report its table name as application_name.
    let application = store
        .table()
        .split_once('.')
        .map(|(_, t)| t.to_owned())
        .expect("schema.table");

    let progress = Arc::new(Semaphore::new(0)); // one permit per finished op
    let killed = Arc::new(AtomicBool::new(false));
    let after_kill = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, progress, killed, after_kill) = (
                Arc::clone(&store),
                Arc::clone(&progress),
                Arc::clone(&killed),
                Arc::clone(&after_kill),
            );
            tokio::spawn(async move {
                let mut errors = Vec::new();
                loop {
                    let was_killed = killed.load(Ordering::SeqCst);
                    if let Err(e) = one_session_lifecycle(&*store).await {
                        errors.push(e);
                    }
                    progress.add_permits(1);
                    if was_killed && after_kill.fetch_add(1, Ordering::SeqCst) >= OPS_AFTER_KILL * TASKS as u64 {
                        return errors;
                    }
                }
            })
        })
        .collect();

    // Kill once the workload is well under way.
    progress
        .acquire_many(200)
        .await
        .expect("the semaphore stays open")
        .forget();
    let mut admin = support::raw_connection().await.expect("a separate connection");
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(&application)
        .fetch_one(&mut admin)
        .await
        .expect("count the store's backends");
    // The two-argument form waits (up to 5 s) until each backend has exited.
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&application)
    .fetch_one(&mut admin)
    .await
    .expect("terminate the store's backends");
    killed.store(true, Ordering::SeqCst);
    assert!(terminated >= 1, "the store had no backend to terminate");

    let mut failures = 0;
    for task in tasks {
        for e in task.await.expect("a store operation panicked") {
            assert!(matches!(e, Error::Backend(_)), "a killed connection gave {e:?}");
            assert!(e.is_retryable(), "a killed connection is a transient failure: {e}");
            failures += 1;
        }
    }
    assert!(
        failures >= 1,
        "terminating {terminated} backends made no operation fail"
    );

    // The same store, not rebuilt, serves every operation again.
    for _ in 0..20 {
        one_session_lifecycle(&*store)
            .await
            .expect("the store serves again after the kill");
    }
    let reconnected: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(&application)
        .fetch_one(&mut admin)
        .await
        .expect("count the new backends");
    assert!(reconnected >= 1);
    eprintln!(
        "{open} backends open, {terminated} terminated (the store closed the others itself after the first failure); {failures} operations failed; {reconnected} new connections serve"
    );
    store.drop_table().await.expect("drop");
}

/// create, load, update, touch, delete of a fresh session; stops at the
/// first error (the session's state is then unknown).
async fn one_session_lifecycle(store: &impl SessionStore) -> Result<(), Error> {
    let now = Timestamp::now();
    let r = support::record(now, Some("worker"));
    let key = r.key;
    store.create(r.clone(), now).await?;
    let loaded = store.load(&key, now).await?;
    assert_eq!(
        loaded.as_ref().map(|l| l.version),
        Some(1),
        "a created session is live at version 1"
    );
    let u = Update {
        expected_version: 1,
        data: r.data.clone(),
        expires_at: r.expires_at,
        owner: r.owner.clone(),
    };
    assert_eq!(store.update(&key, u, now).await?, 2);
    assert!(store.touch(&key, r.expires_at + HOUR, now).await?);
    assert!(store.delete(&key, now).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_on_a_lock_fails_with_a_clear_timeout_error() {
    if !support::server_available().await {
        return;
    }
    let timeout = Duration::from_millis(300);
    let store = support::fresh_store(|b| b.statement_timeout(timeout)).await;
    let now = Timestamp::now();
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");

    // Another client holds the row's lock in an open transaction.
    let in_flight = support::InFlightWrite::start(&store, &r.key).await;

    let started = std::time::Instant::now();
    let err = store
        .touch(&r.key, now + HOUR * 2, now)
        .await
        .expect_err("the touch waits on the lock until the statement timeout");
    let waited = started.elapsed();
    assert!(waited >= timeout, "failed after {waited:?}, before the timeout");
    assert!(err.is_retryable(), "a timeout may succeed when retried");
    let source = support::postgres_error(&err).expect("a PostgresError source");
    assert!(source.is_statement_timeout(), "{source}");
    let message = err.to_string();
    assert!(
        message.contains("`touch`") && message.contains("statement timeout of 300 ms"),
        "{message}"
    );
    // Reads do not wait for row locks.
    assert!(store.load(&r.key, now).await.expect("load").is_some());

    in_flight.rollback().await;
    assert!(
        store
            .touch(&r.key, now + HOUR * 2, now)
            .await
            .expect("touch after the lock")
    );
    store.drop_table().await.expect("drop");
}

/// PostgreSQL reports a statement canceled by `pg_cancel_backend` with the
/// same SQLSTATE (57014) as one canceled by the statement timeout: the
/// store must not call an administrator's cancel, milliseconds into a 30 s
/// timeout, a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrators_cancel_is_not_reported_as_a_statement_timeout() {
    let Some(store) = support::fresh_store_or_skip(|b| b.statement_timeout(Duration::from_secs(30))).await else {
        return;
    };
    let application = support::application_name(&store);
    let now = Timestamp::now();
    let r = support::record(now, None);
    store.create(r.clone(), now).await.expect("create");

    let in_flight = support::InFlightWrite::start(&store, &r.key).await;
    let touching = {
        let (store, key) = (store.clone(), r.key);
        tokio::spawn(async move { store.touch(&key, now + HOUR * 2, now).await })
    };
    let mut admin = support::raw_connection().await.expect("raw connection");
    support::wait_until_waiting(&mut admin, &application, "transactionid", 1).await;
    let canceled: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND wait_event = 'transactionid'",
    )
    .bind(&application)
    .fetch_one(&mut admin)
    .await
    .expect("cancel the store's statement");
    assert_eq!(canceled, 1);

    let err = touching.await.expect("task").expect_err("the canceled touch fails");
    assert!(err.is_retryable(), "a canceled statement may succeed when retried");
    let source = support::postgres_error(&err).expect("a PostgresError source");
    assert!(!source.is_statement_timeout(), "reported as a timeout: {err}");
    assert!(source.is_canceled(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("`touch`")
            && message.contains("was canceled (by an administrator, pg_cancel_backend, or a shutdown)")
            && !message.contains("timeout"),
        "{message}"
    );
    in_flight.rollback().await;
    assert!(store.touch(&r.key, now + HOUR * 2, now).await.expect("touch"));
    store.drop_table().await.expect("drop");
}

/// A server error names the problem and its SQLSTATE, never "at line N",
/// which sqlx appends from the protocol's field for the line of
/// PostgreSQL's C source that raised it.
#[tokio::test]
async fn server_errors_give_the_sqlstate_not_a_line_of_postgresqls_source() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    store.drop_table().await.expect("drop");
    let err = store
        .load(&conformance::fresh_key(), Timestamp::now())
        .await
        .expect_err("the table is gone");
    let message = err.to_string();
    assert!(
        message.contains("does not exist (SQLSTATE 42P01)") && !message.contains(" at line "),
        "{message}"
    );
}
