//! Faults: the server kills the store's connections in the middle of a
//! workload. Operations in flight fail with a transient `Error::Backend`
//! (never a panic, never a wrong answer), and the same store serves again
//! without being rebuilt.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use session_core::{Error, SessionStore, Timestamp, Update};
use tokio::sync::Semaphore;

const TASKS: usize = 4;

/// Ops every task still runs after the kill, so each dead connection is used.
const OPS_AFTER_KILL: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_backends_fail_in_flight_operations_and_the_store_recovers() {
    if !support::server_or_skip("terminated_backends_fail_in_flight_operations_and_the_store_recovers").await {
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
    assert!(store.touch(&key, r.expires_at + conformance::HOUR, now).await?);
    assert!(store.delete(&key, now).await?);
    Ok(())
}
