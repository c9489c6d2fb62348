//! The whole conformance suite against the Redis at `REDIS_URL` (default the
//! local one). Each test gets its own key prefix, so tests run in parallel on
//! one server; a test's keys are deleted when it is done.

mod support;

use conformance::{StoreFactory, Unavailable};
use redis::AsyncCommands;
use session_core::{StoreKey, async_trait};
use store_redis::RedisStore;

struct Redis;

#[async_trait]
impl StoreFactory for Redis {
    type Store = RedisStore;

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn make(&self) -> Result<RedisStore, Unavailable> {
        let url = support::redis_url();
        RedisStore::builder(url.as_str())
            .prefix(support::unique_prefix())
            .connect()
            .await
            .map_err(|e| Unavailable(format!("Redis at {url}: {e}")))
    }

    async fn corrupt(&self, store: &RedisStore, key: &StoreKey) {
        let mut conn = support::raw_connection(&support::redis_url()).await;
        // An unknown format byte: the record can no longer be read.
        let _: () = conn
            .setrange(store.session_key(key), 0, "X")
            .await
            .expect("SETRANGE on the test server");
    }

    fn expires_by_itself(&self) -> bool {
        true
    }

    async fn dispose(&self, store: RedisStore) {
        support::delete_prefix(&support::redis_url(), store.prefix()).await;
    }
}

conformance::suite!(Redis);
