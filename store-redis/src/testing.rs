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
        corrupt_with(&mut connection().await, store, key).await;
    }

    fn expires_by_itself(&self) -> bool {
        true
    }

    async fn dispose(&self, store: RedisStore) {
        delete_prefix(store.prefix()).await;
    }
}

/// Damages `key`'s record: an unknown format byte, so it can no longer be
/// read.
async fn corrupt_with(conn: &mut impl redis::aio::ConnectionLike, store: &RedisStore, key: &StoreKey) {
    let _: () = redis::cmd("SETRANGE")
        .arg(store.session_key(key))
        .arg(0)
        .arg("X")
        .query_async(conn)
        .await
        .expect("SETRANGE on the test server");
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
    scan_delete(&mut connection().await, prefix).await;
}

/// SCAN + DEL of every key under `prefix` on one node.
async fn scan_delete(conn: &mut impl redis::aio::ConnectionLike, prefix: &str) {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await
            .expect("SCAN works on the test server");
        for key in keys {
            let _: () = redis::cmd("DEL")
                .arg(key)
                .query_async(conn)
                .await
                .expect("DEL works on the test server");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}

/// The seed nodes of the test cluster: `REDIS_CLUSTER_NODES`
/// (comma-separated URLs) if set, else a local 3-master, 3-replica cluster
/// started on first use for this test process and removed when it exits
/// ([`redis_harness::LocalCluster::shared`]). The error says why there is
/// none (no `redis-server`, or a cluster that did not come up).
pub fn cluster_nodes() -> Result<Vec<String>, String> {
    if let Ok(nodes) = std::env::var("REDIS_CLUSTER_NODES") {
        let nodes: Vec<String> = nodes
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if !nodes.is_empty() {
            return Ok(nodes);
        }
    }
    // Starting it blocks for a few seconds, once per process.
    let shared = || redis_harness::LocalCluster::shared().map(|c| c.seeds());
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(shared)
        }
        _ => shared(),
    }
}

/// Stores on a Redis Cluster, each under a key prefix no other test uses,
/// its keys deleted (on every master) when the test is done. No cluster is
/// [`Unavailable`].
///
/// ```no_run
/// use conformance::StoreFactory;
/// use store_redis::testing::RedisClusterFactory;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let factory = RedisClusterFactory::new(vec!["redis://127.0.0.1:7000".to_owned()]);
/// let store = factory.make().await.expect("a cluster at 7000");
/// assert!(store.is_cluster());
/// factory.dispose(store).await;
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct RedisClusterFactory {
    nodes: Vec<String>,
    // Why there are no nodes, for the skip line.
    unavailable: Option<String>,
}

impl RedisClusterFactory {
    /// A factory for the cluster reached through `nodes`.
    pub fn new(nodes: Vec<String>) -> Self {
        Self {
            nodes,
            unavailable: None,
        }
    }

    /// A factory for the test cluster of [`cluster_nodes`]; if there is
    /// none, every [`make`](StoreFactory::make) is [`Unavailable`] with the
    /// reason.
    pub fn local() -> Self {
        match cluster_nodes() {
            Ok(nodes) => Self::new(nodes),
            Err(why) => Self {
                nodes: Vec::new(),
                unavailable: Some(format!("no local Redis Cluster: {why}")),
            },
        }
    }

    /// The seed nodes.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
}

#[async_trait]
impl StoreFactory for RedisClusterFactory {
    type Store = RedisStore;

    fn name(&self) -> &'static str {
        "redis-cluster"
    }

    async fn make(&self) -> Result<RedisStore, Unavailable> {
        if self.nodes.is_empty() {
            return Err(Unavailable(
                self.unavailable
                    .clone()
                    .unwrap_or_else(|| "no Redis Cluster nodes given".to_owned()),
            ));
        }
        RedisStore::cluster_builder(self.nodes.clone())
            .prefix(format!("test:{}:", conformance::fresh_key().short()))
            .connect()
            .await
            .map_err(|e| Unavailable(format!("Redis Cluster at {:?}: {e}", self.nodes)))
    }

    async fn corrupt(&self, store: &RedisStore, key: &StoreKey) {
        corrupt_with(&mut cluster_connection(&self.nodes).await, store, key).await;
    }

    fn expires_by_itself(&self) -> bool {
        true
    }

    async fn dispose(&self, store: RedisStore) {
        delete_prefix_on_cluster(&self.nodes, store.prefix()).await;
    }

    /// The one difference a cluster declares: a rotate into another shard
    /// is seal, then publish (see the crate docs).
    fn atomic_cross_shard_rotate(&self) -> bool {
        false
    }
}

async fn cluster_connection(nodes: &[String]) -> redis::cluster_async::ClusterConnection {
    redis::cluster::ClusterClient::new(nodes.to_vec())
        .expect("the test nodes were usable a moment ago")
        .get_async_connection()
        .await
        .expect("the cluster the store just reached is reachable")
}

/// Deletes every key under `prefix` on every master of the cluster behind
/// `nodes` (SCAN on each node, DEL where the node is a master).
pub async fn delete_prefix_on_cluster(nodes: &[String], prefix: &str) {
    let mut conn = cluster_connection(nodes).await;
    // Every node's own keys: SCAN it directly; only masters hold keys to delete.
    let topology: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER NODES works");
    for line in topology.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 3 || !fields[2].contains("master") || fields[2].contains("fail") {
            continue;
        }
        let addr = fields[1].split('@').next().unwrap_or_default();
        let Ok(client) = redis::Client::open(format!("redis://{addr}")) else {
            continue;
        };
        let Ok(mut node) = client.get_multiplexed_async_connection().await else {
            continue;
        };
        scan_delete(&mut node, prefix).await;
    }
}
