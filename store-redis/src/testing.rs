//! The test factory of this backend (feature `test-hooks`): what the
//! conformance suite, the HTTP kit and any other suite over
//! [`conformance::StoreFactory`] run against. Not for applications.

use conformance::{StoreFactory, Unavailable};
use session_core::{StoreKey, async_trait};

use crate::RedisStore;

/// The Redis the tests use: `REDIS_URL`, or the local server.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Stores on the Redis at [`redis_url`], each under a key prefix no other
/// test uses (so tests run in parallel on one server), its keys deleted
/// when the test is done. A server that cannot be reached is
/// [`Unavailable`]: the suite skips, or fails under
/// `SESSIONS_REQUIRE_SERVICES=1`.
///
/// ```no_run
/// use conformance::StoreFactory;
/// use store_redis::testing::RedisFactory;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let factory = RedisFactory;
/// let store = factory.make().await.expect("a Redis at REDIS_URL");
/// assert!(store.prefix().starts_with("test:"));
/// factory.dispose(store).await;
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisFactory;

#[async_trait]
impl StoreFactory for RedisFactory {
    type Store = RedisStore;

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn make(&self) -> Result<RedisStore, Unavailable> {
        let url = redis_url();
        RedisStore::builder(url.as_str())
            .prefix(format!("test:{}:", conformance::fresh_key().short()))
            .connect()
            .await
            .map_err(|e| Unavailable(format!("Redis at {url}: {e}")))
    }

    async fn corrupt(&self, store: &RedisStore, key: &StoreKey) {
        // An unknown format byte: the record can no longer be read.
        let mut conn = connection().await;
        let _: () = redis::cmd("SETRANGE")
            .arg(store.session_key(key))
            .arg(0)
            .arg("X")
            .query_async(&mut conn)
            .await
            .expect("SETRANGE on the test server");
    }

    fn expires_by_itself(&self) -> bool {
        true
    }

    async fn dispose(&self, store: RedisStore) {
        delete_prefix(store.prefix()).await;
    }
}

/// A plain connection to the test server, outside any store.
async fn connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("the test URL was usable a moment ago")
        .get_multiplexed_async_connection()
        .await
        .expect("the server the store just reached is reachable")
}

/// Deletes every key under `prefix` on the test server (SCAN, never KEYS,
/// so a large shared server is not blocked).
pub async fn delete_prefix(prefix: &str) {
    let mut conn = connection().await;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(500)
            .query_async(&mut conn)
            .await
            .expect("SCAN works on the test server");
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("DEL works on the test server");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}
