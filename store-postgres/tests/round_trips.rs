//! Proof that every operation costs one round trip to the server.
//!
//! The store talks to PostgreSQL through a small TCP proxy that counts the
//! server's ReadyForQuery messages. In the PostgreSQL protocol every
//! exchange the client waits for ends with exactly one ReadyForQuery: an
//! extended-protocol statement (Bind/Execute/Sync), a simple query, and a
//! ping (a bare Sync, which is all sqlx's ping is) alike. So the count is the
//! number of round trips, pings included, whatever the client library does.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use conformance::fixtures::HOUR;
use session_core::{Error, Overwrite, SessionStore, Timestamp, Update};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Counts ReadyForQuery ('Z') messages from the server to the client.
struct Proxy {
    addr: SocketAddr,
    ready_for_query: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let ready_for_query = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&ready_for_query);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.expect("connect to PostgreSQL");
                tokio::spawn(relay(client, server, Arc::clone(&counter)));
            }
        });
        Proxy { addr, ready_for_query }
    }

    fn count(&self) -> u64 {
        self.ready_for_query.load(Ordering::SeqCst)
    }
}

async fn relay(client: TcpStream, server: TcpStream, ready_for_query: Arc<AtomicU64>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    });
    // Server to client: every message is a type byte and a 4-byte length
    // (the client asks for no TLS, so there is no one-byte SSL answer).
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match server_read.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while pending.len() >= 5 {
            let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
            if pending.len() < 1 + len {
                break;
            }
            if pending[0] == b'Z' {
                // Counted before the client can see it, so a client that got
                // its answer always finds the count up to date.
                ready_for_query.fetch_add(1, Ordering::SeqCst);
            }
            pending.drain(..1 + len);
        }
        if client_write.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
}

fn through(proxy: &Proxy) -> PgConnectOptions {
    let options: PgConnectOptions = support::database_url().parse().expect("a valid DATABASE_URL");
    options
        .host(&proxy.addr.ip().to_string())
        .port(proxy.addr.port())
        .ssl_mode(PgSslMode::Disable)
}

fn upstream() -> String {
    let options: PgConnectOptions = support::database_url().parse().expect("a valid DATABASE_URL");
    format!("{}:{}", options.get_host(), options.get_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_one_round_trip() {
    if !support::server_available().await {
        return;
    }
    let proxy = Proxy::start(upstream()).await;
    let table = support::unique_table("t");
    let store = store_postgres::PostgresStore::builder()
        .connect_options(through(&proxy))
        .schema("store_postgres_tests")
        .table(&table)
        .max_connections(2)
        .migrate_on_connect(true)
        .connect()
        .await
        .expect("a store through the proxy");

    // Each operation once, so that its statement is prepared on the
    // connection (the first use of a statement on a connection costs one
    // more round trip: Parse/Describe), then each operation measured.
    let mut rounds = Vec::new();
    for round in 0..3 {
        let now = Timestamp::now();
        let r = support::record(now, Some("owner"));
        let other = conformance::fresh_key();
        let mut counts = Vec::new();
        let mut measure = |name: &'static str, before: u64| counts.push((name, proxy.count() - before));

        let b = proxy.count();
        store.create(r.clone(), now).await.expect("create");
        measure("create", b);
        let b = proxy.count();
        store.load(&r.key, now).await.expect("load").expect("live");
        measure("load", b);
        let b = proxy.count();
        let u = Update {
            expected_version: 1,
            data: r.data.clone(),
            expires_at: r.expires_at,
            owner: r.owner.clone(),
        };
        store.update(&r.key, u.clone(), now).await.expect("update");
        measure("update", b);
        let b = proxy.count();
        assert!(store.update(&r.key, u, now).await.is_err(), "a stale update conflicts");
        measure("update (conflict)", b);
        let b = proxy.count();
        store.touch(&r.key, r.expires_at + HOUR, now).await.expect("touch");
        measure("touch", b);
        let b = proxy.count();
        let w = Overwrite {
            data: r.data.clone(),
            expires_at: r.expires_at,
            owner: r.owner.clone(),
        };
        assert_eq!(store.overwrite(&r.key, w.clone(), now).await.expect("overwrite"), 3);
        measure("overwrite", b);
        let b = proxy.count();
        let moved = store.rotate(&r.key, &other, None, now).await.expect("rotate");
        measure("rotate", b);
        assert_eq!(moved.owner.as_deref(), Some("owner"));
        let b = proxy.count();
        let taken = support::record(now, None);
        store.create(taken.clone(), now).await.expect("create");
        measure("create (another)", b);
        let b = proxy.count();
        assert!(
            matches!(
                store.rotate(&other, &taken.key, None, now).await,
                Err(Error::AlreadyExists)
            ),
            "a rotate onto a live key"
        );
        measure("rotate (onto a live key)", b);
        let b = proxy.count();
        assert!(store.was_rotated(&r.key, now).await.expect("was_rotated"));
        measure("was_rotated", b);
        let b = proxy.count();
        assert!(
            matches!(store.overwrite(&r.key, w, now).await, Err(Error::NotFound)),
            "a rotation mark is not a session"
        );
        measure("overwrite (not live)", b);
        let b = proxy.count();
        assert!(!store.delete(&r.key, now).await.expect("delete of the mark"));
        measure("delete (a mark)", b);
        let login = conformance::fresh_key();
        let b = proxy.count();
        let moved = store
            .rotate(&other, &login, Some("owner"), now)
            .await
            .expect("rotate setting the owner");
        measure("rotate (setting the owner)", b);
        assert_eq!(moved.key, login);
        let other = login;
        let b = proxy.count();
        store.list_by_owner("owner", now).await.expect("list_by_owner");
        measure("list_by_owner", b);
        let b = proxy.count();
        assert!(store.delete(&other, now).await.expect("delete"));
        measure("delete", b);
        let b = proxy.count();
        store.delete_by_owner("owner", now).await.expect("delete_by_owner");
        measure("delete_by_owner", b);
        let b = proxy.count();
        assert!(
            !store
                .was_rotated(&conformance::fresh_key(), now)
                .await
                .expect("was_rotated")
        );
        measure("was_rotated (no mark)", b);
        let b = proxy.count();
        store.delete_expired(now, 1000).await.expect("delete_expired");
        measure("delete_expired", b);
        eprintln!("round {round}: round trips per operation: {counts:?}");
        rounds.push(counts);
    }
    for counts in &rounds[1..] {
        for (op, n) in counts {
            assert_eq!(*n, 1, "`{op}` cost {n} round trips once its statement was prepared");
        }
    }
    store.drop_table().await.expect("drop");
}

/// The same counter sees what sqlx's default pool costs: a ping when a
/// connection is handed out and one when it is given back, around each
/// query. This is why the store has its own pool, and it shows that the
/// counter above would catch such pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_sees_the_pings_of_a_default_sqlx_pool() {
    if !support::server_available().await {
        return;
    }
    let proxy = Proxy::start(upstream()).await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(through(&proxy))
        .await
        .expect("a default sqlx pool through the proxy");
    let _: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await.expect("warm up");
    let queries = 20;
    let before = proxy.count();
    for _ in 0..queries {
        let _: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await.expect("select");
    }
    // Closing waits until the connection is back in the pool, so every
    // release ping has been answered.
    pool.close().await;
    let round_trips = proxy.count() - before;
    eprintln!("sqlx's default pool: {round_trips} round trips for {queries} queries");
    assert!(
        round_trips >= 2 * queries,
        "expected pings around each query, counted {round_trips}"
    );
}
