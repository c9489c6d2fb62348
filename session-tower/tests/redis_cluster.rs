//! The HTTP kit against a real Redis Cluster: the one at
//! `REDIS_CLUSTER_NODES`, or a local 3-master, 3-replica cluster this test
//! binary starts and removes (`store_redis::testing::cluster_nodes`). Logins
//! here rotate sessions into their owner's shard, across slots.

session_tower::http_suite!(store_redis::testing::RedisClusterFactory::local());
