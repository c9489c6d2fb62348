//! The whole conformance suite against the Redis at `REDIS_URL` (default the
//! local one); see `store_redis::testing::RedisFactory`.

conformance::suite!(store_redis::testing::RedisFactory);
