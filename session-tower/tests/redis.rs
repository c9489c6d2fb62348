//! The HTTP kit against the Redis at `REDIS_URL` (default the local one),
//! each test under its own key prefix, deleted when the test is done.

use conformance::{StoreFactory, Unavailable};
use session_core::async_trait;
use store_redis::RedisStore;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

struct Redis;

#[async_trait]
impl StoreFactory for Redis {
    type Store = RedisStore;

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn make(&self) -> Result<RedisStore, Unavailable> {
        let url = redis_url();
        RedisStore::builder(url.as_str())
            .prefix(format!("session-tower-test:{}:", conformance::fresh_key().short()))
            .connect()
            .await
            .map_err(|e| Unavailable(format!("Redis at {url}: {e}")))
    }

    fn expires_by_itself(&self) -> bool {
        true
    }

    async fn dispose(&self, store: RedisStore) {
        let client = redis::Client::open(redis_url()).expect("the Redis URL was usable a moment ago");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to clean up");
        let pattern = format!("{}*", store.prefix());
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .expect("KEYS on the test server");
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.expect("DEL");
        }
    }
}

session_tower::http_suite!(Redis);
