//! The HTTP kit against the Redis at `REDIS_URL` (default the local one),
//! each test under its own key prefix, deleted when the test is done.

session_tower::http_suite!(store_redis::testing::RedisFactory);
