//! Sessions on a Redis Cluster through the manager: an anonymous visit, a
//! login into the user's shard, "your devices", and "log out everywhere".
//! The cluster is the one at `REDIS_CLUSTER_NODES` (comma-separated seed
//! URLs; default `redis://127.0.0.1:7000`):
//!
//! ```text
//! REDIS_CLUSTER_NODES=redis://127.0.0.1:7000 cargo run -p store-redis --example cluster
//! ```
//!
//! The manager mints every id into the right shard, so nothing here is
//! specific to a cluster but the builder.

use std::sync::Arc;

use session_core::{Config, Error, SessionManager, SessionStore};
use store_redis::RedisStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let nodes = std::env::var("REDIS_CLUSTER_NODES").unwrap_or_else(|_| "redis://127.0.0.1:7000".to_owned());
    let store = RedisStore::cluster_builder(nodes.split(','))
        .prefix("example:cluster:")
        .connect()
        .await?;
    let manager = SessionManager::new(Arc::new(store), Config::default())?;

    // A visitor's session lands in any shard.
    let mut visit = manager.create(None).await?;
    visit.data_mut().insert("cart", &vec!["tea".to_owned()])?;
    manager.save(&mut visit).await?;
    println!(
        "anonymous session in shard {:?}",
        manager.store().shard_of_key(&visit.key())
    );

    // Login: a new id in the user's shard, the cart carried over. Across
    // shards this is seal, publish, retire (see the crate docs).
    manager.rotate_to_owner(&mut visit, "user-42").await?;
    println!(
        "logged in: shard {:?}, the user's shard {:?}, cart {:?}",
        manager.store().shard_of_key(&visit.key()),
        manager.store().shard_of_owner("user-42"),
        visit.data().get::<Vec<String>>("cart")?
    );

    // A second device of the same user, then the devices page and a logout
    // everywhere: each one atomic operation in the user's slot.
    let _phone = manager.create(Some("user-42".to_owned())).await?;
    println!("devices: {}", manager.list_by_owner("user-42").await?.len());
    println!("logged out everywhere: {}", manager.destroy_by_owner("user-42").await?);
    Ok(())
}
