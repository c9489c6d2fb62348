//! The whole conformance suite against a real Redis Cluster: the one at
//! `REDIS_CLUSTER_NODES`, or a local one this test binary starts (see
//! `store_redis::testing::cluster_nodes`).

conformance::suite!(store_redis::testing::RedisClusterFactory::local());
