//! Server failures: a killed or frozen Redis gives `Error::Backend` within
//! the configured timeouts (no panic, no hang), whose message names the
//! operation (and, for a timeout, the configured durations) but never a key,
//! and the same store works again once the server is back, without being
//! rebuilt.

mod support;

use std::time::{Duration, Instant};

use session_core::{Bytes, Error, Overwrite, Record, SessionStore, StoreKey, Timestamp, Update};
use store_redis::RedisStore;
use support::PrivateServer;

use conformance::fixtures::HOUR;
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(300);
const RETRIES: usize = 1;

/// The longest an operation may take while the server is down: a response
/// timeout, or every connection attempt plus the backoff (at most 500 ms per
/// pause), plus scheduling slack for a loaded 2-core machine.
fn failure_bound() -> Duration {
    let attempts = u32::try_from(RETRIES + 1).expect("few retries");
    RESPONSE_TIMEOUT.max(CONNECTION_TIMEOUT * attempts + Duration::from_millis(500) * (attempts - 1))
        + Duration::from_secs(2)
}

async fn store_on(server: &PrivateServer) -> RedisStore {
    RedisStore::builder(server.url())
        .response_timeout(RESPONSE_TIMEOUT)
        .connection_timeout(CONNECTION_TIMEOUT)
        .reconnect_retries(RETRIES)
        .connect()
        .await
        .expect("the private server is up")
}

fn record(key: StoreKey, now: Timestamp) -> Record {
    Record {
        key,
        version: 1,
        data: Bytes::from_static(b"\x01data"),
        created_at: now,
        expires_at: now + HOUR,
        owner: Some("owner".into()),
    }
}

/// Runs every kind of operation once, on `key` and on a fresh key, each
/// timed. `owner` is the one `delete_by_owner` is asked to end.
async fn every_operation(
    store: &RedisStore,
    key: StoreKey,
    owner: &str,
    now: Timestamp,
) -> Vec<(&'static str, Result<(), Error>, Duration)> {
    let fresh = conformance::fresh_key();
    let update = Update {
        expected_version: 1,
        data: Bytes::new(),
        expires_at: now + HOUR,
        owner: None,
    };
    let write = Overwrite {
        data: Bytes::new(),
        expires_at: now + HOUR,
        owner: None,
    };
    vec![
        timed("load", store.load(&key, now)).await,
        timed("create", store.create(record(fresh, now), now)).await,
        timed("update", store.update(&fresh, update, now)).await,
        timed("overwrite", store.overwrite(&fresh, write, now)).await,
        timed("touch", store.touch(&key, now + HOUR, now)).await,
        timed("rotate", store.rotate(&fresh, &key, Some(owner), now)).await,
        timed("was_rotated", store.was_rotated(&key, now)).await,
        timed("delete", store.delete(&fresh, now)).await,
        timed("list_by_owner", store.list_by_owner(owner, now)).await,
        timed("delete_by_owner", store.delete_by_owner(owner, now)).await,
    ]
}

/// A transient backend error whose message names the operation in
/// backticks, holds neither key, and holds `also`.
fn assert_named_transient(name: &str, result: &Result<(), Error>, keys: &[StoreKey], also: &str) {
    let Err(Error::Backend(e)) = result else {
        panic!("{name} with the server gone gave {result:?}, not Error::Backend");
    };
    assert!(e.is_retryable(), "{name}: a lost or frozen server is transient: {e}");
    let message = e.to_string();
    assert!(
        message.contains(&format!("store-redis: `{name}`")),
        "the error of {name} does not name it: {message}"
    );
    assert!(message.contains(also), "the error of {name} lacks {also:?}: {message}");
    for key in keys {
        assert!(
            !message.contains(&key.to_hex()) && !message.contains(&key.short()),
            "the error of {name} names a key: {message}"
        );
    }
}

/// Runs every kind of operation once and checks each fails with a transient
/// backend error naming it, within the bound.
async fn every_operation_fails_fast(store: &RedisStore, key: StoreKey, now: Timestamp) {
    for (name, result, took) in every_operation(store, key, "owner", now).await {
        assert_named_transient(name, &result, &[key], "");
        assert!(
            took <= failure_bound(),
            "{name} took {took:?}, over {:?}",
            failure_bound()
        );
    }
}

async fn timed<T>(
    name: &'static str,
    op: impl Future<Output = Result<T, Error>>,
) -> (&'static str, Result<(), Error>, Duration) {
    let start = Instant::now();
    let result = op.await.map(drop);
    (name, result, start.elapsed())
}

/// Retries `load` until the store answers, for at most `within`: the first
/// operation after the server returns may still meet the connection that
/// failed, the manager then reconnects.
async fn wait_until_store_answers(store: &RedisStore, key: &StoreKey, now: Timestamp, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match store.load(key, now).await {
            Ok(_) => return,
            Err(Error::Backend(e)) if Instant::now() < deadline => {
                assert!(e.is_retryable(), "{e}");
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("the store did not recover within {within:?}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_gives_backend_errors_and_the_store_recovers_after_restart() {
    let Some(mut server) = PrivateServer::start() else {
        return;
    };
    let store = store_on(&server).await;
    let now = Timestamp::now();

    // A workload, with concurrent tasks on the shared connection.
    let keys: Vec<StoreKey> = (0..64).map(|_| conformance::fresh_key()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for key in keys.clone() {
        let store = store.clone();
        tasks.spawn(async move {
            store.create(record(key, now), now).await?;
            store.touch(&key, now + HOUR * 2, now).await?;
            store.load(&key, now).await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        assert!(joined.expect("no task panics").expect("the server is up").is_some());
    }
    assert_eq!(store.list_by_owner("owner", now).await.expect("list").len(), keys.len());

    server.kill();

    // Many operations in flight at once while the server is gone: each one
    // fails, none panics or hangs.
    let mut tasks = tokio::task::JoinSet::new();
    for key in keys.clone() {
        let store = store.clone();
        tasks.spawn(async move {
            let start = Instant::now();
            (store.load(&key, now).await, start.elapsed())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (result, took) = joined.expect("no task panics");
        assert!(matches!(result, Err(Error::Backend(_))), "{result:?}");
        assert!(took <= failure_bound(), "a load took {took:?}");
    }
    every_operation_fails_fast(&store, keys[0], now).await;

    // Same port, same store value: it reconnects by itself.
    server.restart();
    wait_until_store_answers(&store, &keys[0], now, Duration::from_secs(10)).await;

    // The server ran without persistence: the sessions are gone, and none
    // comes back half-alive.
    for key in &keys {
        assert_eq!(store.load(key, now).await.expect("server is back"), None);
    }
    assert!(store.list_by_owner("owner", now).await.expect("list").is_empty());

    // The scripts were lost with the server and reload themselves.
    let key = conformance::fresh_key();
    store.create(record(key, now), now).await.expect("create after restart");
    assert_eq!(store.load(&key, now).await.expect("load").map(|r| r.version), Some(1));
    assert!(store.touch(&key, now + HOUR * 2, now).await.expect("touch"));
    assert_eq!(store.delete_by_owner("owner", now).await.expect("delete_by_owner"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_times_out_within_the_response_timeout() {
    let Some(server) = PrivateServer::start() else { return };
    let store = store_on(&server).await;
    let now = Timestamp::now();
    let key = conformance::fresh_key();
    store.create(record(key, now), now).await.expect("create");

    // SIGSTOP: the socket stays open but nothing answers, the case that
    // only a response timeout catches. The server runs the queued commands
    // once it continues, so none of them may change `key`'s session: the
    // writes go to a fresh key, rotate from that key onto the live `key`
    // fails, and delete_by_owner ends an owner without sessions.
    server.signal("STOP");
    let ops = every_operation(&store, key, "nobody", now).await;
    server.signal("CONT");

    for (name, result, took) in &ops {
        assert_named_transient(
            name,
            result,
            &[key],
            "got no reply within the response timeout of 300 ms",
        );
        assert!(
            *took >= RESPONSE_TIMEOUT,
            "{name} failed after {took:?}, before the timeout"
        );
        assert!(
            *took <= RESPONSE_TIMEOUT + Duration::from_secs(2),
            "{name} took {took:?}"
        );
    }

    // The server answers again: so does the store.
    wait_until_store_answers(&store, &key, now, Duration::from_secs(10)).await;
    assert!(store.load(&key, now).await.expect("load").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_connect_says_which_step_failed() {
    let Some(mut server) = PrivateServer::start() else {
        return;
    };
    let url = server.url();
    server.kill();
    let result = RedisStore::builder(url)
        .connection_timeout(CONNECTION_TIMEOUT)
        .reconnect_retries(0)
        .connect()
        .await;
    match result {
        Err(Error::Backend(e)) => {
            assert!(e.is_retryable(), "an unreachable server is transient: {e}");
            assert!(e.to_string().contains("store-redis: `connect`"), "{e}");
        }
        other => panic!("connecting to nothing gave {other:?}"),
    }
}
