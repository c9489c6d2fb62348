//! What the store-redis tests share: finding the shared Redis, unique key
//! prefixes, skipping loudly, and private `redis-server` processes.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use store_redis::{RedisStore, RedisStoreBuilder};

/// The shared server of the test run.
pub fn redis_url() -> String {
    store_redis::testing::redis_url()
}

/// A prefix no other test uses, so tests run in parallel on one server.
pub fn unique_prefix() -> String {
    format!("test:{}:", conformance::fresh_key().short())
}

/// Skips the calling test with a message the harness does not capture, or
/// fails it when `SESSIONS_REQUIRE_SERVICES=1`. Returns so the caller can
/// `return`.
pub fn unavailable(what: &str) {
    conformance::fixtures::skip_or_fail("redis", &what);
}

/// A store on the shared server under a fresh prefix, or `None` (after a
/// loud skip) when the server is unreachable.
pub async fn shared_store() -> Option<RedisStore> {
    shared_store_with(|b| b).await
}

/// Like [`shared_store`], with extra builder settings.
pub async fn shared_store_with(configure: impl FnOnce(RedisStoreBuilder) -> RedisStoreBuilder) -> Option<RedisStore> {
    let builder = RedisStore::builder(redis_url()).prefix(unique_prefix());
    match configure(builder).connect().await {
        Ok(store) => Some(store),
        Err(e) => {
            unavailable(&format!("Redis at {} is unreachable ({e})", redis_url()));
            None
        }
    }
}

/// A plain connection to the server at `url`, for reading and damaging what
/// a store wrote.
pub async fn raw_connection(url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(url).expect("the test URL is well formed");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("the server the store just reached is reachable")
}

/// The absolute server TTL of `key` in Unix milliseconds (`PEXPIRETIME`):
/// -1 without a TTL, -2 for no key.
pub async fn expiry(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(conn)
        .await
        .expect("PEXPIRETIME works on the test server")
}

/// Deletes every key under `prefix` on the shared server (SCAN + DEL).
pub async fn delete_prefix(prefix: &str) {
    store_redis::testing::delete_prefix(prefix).await;
}

/// A `redis-server` of our own on a free loopback port, without persistence.
/// Killed when dropped.
pub struct PrivateServer {
    port: u16,
    child: Option<Child>,
}

impl PrivateServer {
    /// Starts one, or returns `None` (after a loud skip) when there is no
    /// `redis-server` binary.
    pub fn start() -> Option<Self> {
        let port = free_port();
        let mut server = Self { port, child: None };
        match server.spawn() {
            Ok(()) => Some(server),
            Err(e) => {
                unavailable(&format!("cannot start a private redis-server ({e})"));
                None
            }
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("the server is running")
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().expect("redis-server started once, so it starts again");
    }

    /// Sends a signal (`"STOP"`, `"CONT"`) to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill(1) exists");
        assert!(status.success(), "kill -{signal} failed");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &std::env::temp_dir().to_string_lossy(),
            ])
            .args(["--dbfilename", &format!("store-redis-test-{}.rdb", self.port)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        // A bounded wait for the server to accept connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = redis::Client::open(self.url())
                .and_then(|client| client.get_connection())
                .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn));
            if up.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("redis-server on port {} did not come up in 10 s", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    // The port is free when the listener closes; redis-server takes it right
    // after. A clash with another process in between makes spawn time out.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface has a free port")
}
